#include "daemon/common/clock.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace kontor {
namespace {

TEST(FakeClockTest, WallTimeMayJumpMonotonicTimeOnlyMovesForward) {
  FakeClock clock(1000);
  clock.AdvanceMs(500);
  EXPECT_EQ(clock.NowUnixMs(), 1500);
  EXPECT_EQ(clock.MonotonicMs(), 500);
  clock.SetMs(100);  // a wall clock step back
  EXPECT_EQ(clock.NowUnixMs(), 100);
  EXPECT_EQ(clock.MonotonicMs(), 500);
}

// A waiter on fake time is not woken by real time passing, only by the fake
// time passing its deadline.
TEST(FakeClockTest, AwaitTimesOutWhenFakeTimePassesTheDeadline) {
  FakeClock clock(0);
  absl::Mutex mu;
  bool flag = false;
  std::atomic<bool> returned{false};
  bool result = true;
  std::thread waiter([&] {
    absl::MutexLock l(&mu);
    result = clock.AwaitWithTimeout(&mu, absl::Condition(&flag), 60000);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load());  // 50 real ms are not 60 fake seconds
  clock.AdvanceMs(59999);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(returned.load());
  clock.AdvanceMs(1);
  waiter.join();
  EXPECT_FALSE(result);
}

TEST(FakeClockTest, AwaitReturnsWhenTheConditionHolds) {
  FakeClock clock(0);
  absl::Mutex mu;
  bool flag = false;
  bool result = false;
  std::thread waiter([&] {
    absl::MutexLock l(&mu);
    result = clock.AwaitWithTimeout(&mu, absl::Condition(&flag), 60000);
  });
  {
    absl::MutexLock l(&mu);
    flag = true;
  }
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(clock.MonotonicMs(), 0);
}

TEST(FakeClockTest, WaitForNotification) {
  FakeClock clock(0);
  absl::Notification never, soon;
  std::thread advancer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    clock.AdvanceMs(1000);
  });
  EXPECT_FALSE(clock.WaitForNotification(never, 1000));
  advancer.join();
  soon.Notify();
  EXPECT_TRUE(clock.WaitForNotification(soon, 1000000));
}

TEST(RealClockTest, WaitsAndReadsRealTime) {
  const Clock* clock = Clock::Real();
  const int64_t before = clock->MonotonicMs();
  absl::Notification never;
  EXPECT_FALSE(clock->WaitForNotification(never, 5));
  EXPECT_GE(clock->MonotonicMs(), before);
  EXPECT_GT(clock->NowUnixMs(), 1700000000000);  // after 2023
}

}  // namespace
}  // namespace kontor
