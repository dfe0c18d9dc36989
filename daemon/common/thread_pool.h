#ifndef KONTOR_DAEMON_COMMON_THREAD_POOL_H_
#define KONTOR_DAEMON_COMMON_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace kontor {

// A fixed number of threads running scheduled work: for work that blocks
// (store commits, file writes) on behalf of many callers that should not
// each hold a thread (the federation streams). Work is scheduled under a
// key (a peer): keys are served in turn, and at most `max_per_key` jobs of
// one key run at once, so one busy key cannot keep the others waiting.
// Within a key, work runs in the order it came. Thread-safe. The
// destructor runs what is queued, then joins.
class ThreadPool {
 public:
  explicit ThreadPool(size_t threads, size_t max_per_key = SIZE_MAX);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> work) { Schedule("", std::move(work)); }
  void Schedule(const std::string& key, std::function<void()> work);

 private:
  struct Lane {
    std::deque<std::function<void()>> queue;
    size_t running = 0;
  };
  void Run();
  // Whether some key's job may run now (no side effects).
  bool Runnable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the next key whose job may run, in turn; nullptr if none.
  Lane* NextLane(std::string* key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_per_key_;
  absl::Mutex mu_;
  std::map<std::string, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> turn_ ABSL_GUARDED_BY(mu_);  // keys with work
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_THREAD_POOL_H_
