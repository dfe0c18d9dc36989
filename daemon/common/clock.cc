#include "daemon/common/clock.h"

#include <chrono>

#include "absl/time/time.h"

namespace kontor {
namespace {

class RealClock : public Clock {
 public:
  int64_t NowUnixMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                        int64_t timeout_ms) const override {
    return mu->AwaitWithTimeout(cond, absl::Milliseconds(timeout_ms));
  }
  bool WaitForNotification(const absl::Notification& n,
                           int64_t timeout_ms) const override {
    return n.WaitForNotificationWithTimeout(absl::Milliseconds(timeout_ms));
  }
};

// How often a waiter on fake time looks at it (real time).
constexpr absl::Duration kFakePoll = absl::Milliseconds(2);

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

bool FakeClock::AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                                 int64_t timeout_ms) const {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  for (;;) {
    if (mu->AwaitWithTimeout(cond, kFakePoll)) return true;
    if (MonotonicMs() >= deadline) return cond.Eval();
  }
}

bool FakeClock::WaitForNotification(const absl::Notification& n,
                                    int64_t timeout_ms) const {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  for (;;) {
    if (n.WaitForNotificationWithTimeout(kFakePoll)) return true;
    if (MonotonicMs() >= deadline) return n.HasBeenNotified();
  }
}

}  // namespace kontor
