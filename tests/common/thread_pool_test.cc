// The pool the federation streams share (common/thread_pool.h): keys take
// turns, one key uses at most its share.

#include "daemon/common/thread_pool.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

TEST(ThreadPoolTest, RunsEverythingBeforeItIsGone) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Schedule([&] { ++ran; });
  }
  EXPECT_EQ(ran, 100);
}

// One key with much work cannot keep another waiting: with one slot per
// key, a late key's job runs while the first key's are still queued.
TEST(ThreadPoolTest, AnotherKeyIsNotStuckBehindABusyOne) {
  absl::Notification release;
  absl::Mutex mu;
  std::vector<std::string> order;
  {
    ThreadPool pool(2, /*max_per_key=*/1);
    for (int i = 0; i < 5; ++i) {
      pool.Schedule("busy", [&] {
        release.WaitForNotification();
        absl::MutexLock l(&mu);
        order.push_back("busy");
      });
    }
    absl::Notification other_ran;
    pool.Schedule("other", [&] {
      {
        absl::MutexLock l(&mu);
        order.push_back("other");
      }
      other_ran.Notify();
    });
    // "other" runs although "busy" has four jobs queued and holds a thread.
    other_ran.WaitForNotification();
    release.Notify();
  }
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[0], "other");
}

TEST(ThreadPoolTest, AKeysJobsRunInOrder) {
  std::vector<int> seen;
  {
    ThreadPool pool(4, /*max_per_key=*/1);
    for (int i = 0; i < 50; ++i)
      pool.Schedule("k", [&, i] { seen.push_back(i); });
  }
  ASSERT_EQ(seen.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(seen[i], i);
}

}  // namespace
}  // namespace kontor
