#ifndef KONTOR_DAEMON_COMMON_CLOCK_H_
#define KONTOR_DAEMON_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace kontor {

// All time in Kontor is read, and waited on, through a Clock, so that tests
// of backoff, expiry and retention run on FakeClock without sleeping out the
// delays they test. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time: UTC milliseconds since the Unix epoch (may jump).
  virtual int64_t NowUnixMs() const = 0;
  // Milliseconds from an arbitrary start; never goes back. For intervals,
  // deadlines and latencies.
  virtual int64_t MonotonicMs() const = 0;
  // With `mu` held: waits until `cond` holds or `timeout_ms` of this
  // clock's time have passed (holding `mu` again on return); returns
  // whether `cond` holds.
  virtual bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                                int64_t timeout_ms) const = 0;
  // Waits until `n` is notified or `timeout_ms` of this clock's time have
  // passed; returns whether it was notified.
  virtual bool WaitForNotification(const absl::Notification& n,
                                   int64_t timeout_ms) const = 0;

  // The process-wide real clock.
  static Clock* Real();
};

// A clock that only moves when told to. Waiters wake when the condition
// they wait for holds or when the fake time passes their deadline (they
// look every few real milliseconds). Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_unix_ms) : now_ms_(start_unix_ms) {}
  int64_t NowUnixMs() const override {
    absl::MutexLock l(&mu_);
    return now_ms_;
  }
  int64_t MonotonicMs() const override {
    absl::MutexLock l(&mu_);
    return monotonic_ms_;
  }
  bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                        int64_t timeout_ms) const override;
  bool WaitForNotification(const absl::Notification& n,
                           int64_t timeout_ms) const override;
  // Moves both wall and monotonic time forward.
  void AdvanceMs(int64_t ms) {
    absl::MutexLock l(&mu_);
    now_ms_ += ms;
    monotonic_ms_ += ms;
  }
  // Sets the wall time only (a clock step: monotonic time does not move).
  void SetMs(int64_t ms) {
    absl::MutexLock l(&mu_);
    now_ms_ = ms;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t now_ms_ ABSL_GUARDED_BY(mu_);
  int64_t monotonic_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_CLOCK_H_
