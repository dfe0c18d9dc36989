#ifndef KONTOR_DAEMON_COMMON_THREAD_POOL_H_
#define KONTOR_DAEMON_COMMON_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace kontor {

// A fixed number of threads running scheduled work in order of arrival:
// for work that blocks (store commits, file writes) on behalf of many
// callers that should not each hold a thread (the federation streams).
// Thread-safe. The destructor runs what is queued, then joins.
class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> work);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_THREAD_POOL_H_
