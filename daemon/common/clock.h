#ifndef KONTOR_DAEMON_COMMON_CLOCK_H_
#define KONTOR_DAEMON_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"

namespace kontor {

// All time in Kontor is read through a Clock so that tests of backoff, expiry
// and retention can use FakeClock. Wall time is UTC milliseconds since the
// Unix epoch. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowUnixMs() const = 0;

  // The process-wide real clock.
  static Clock* Real();
};

// A clock that only moves when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_unix_ms) : now_ms_(start_unix_ms) {}
  int64_t NowUnixMs() const override {
    absl::MutexLock l(&mu_);
    return now_ms_;
  }
  void AdvanceMs(int64_t ms) {
    absl::MutexLock l(&mu_);
    now_ms_ += ms;
  }
  void SetMs(int64_t ms) {
    absl::MutexLock l(&mu_);
    now_ms_ = ms;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t now_ms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_CLOCK_H_
