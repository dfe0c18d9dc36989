#include "daemon/common/thread_pool.h"

#include <algorithm>

namespace kontor {

ThreadPool::ThreadPool(size_t threads, size_t max_per_key)
    : max_per_key_(std::max<size_t>(1, max_per_key)) {
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::Schedule(const std::string& key, std::function<void()> work) {
  absl::MutexLock l(&mu_);
  Lane& lane = lanes_[key];
  if (lane.queue.empty()) turn_.push_back(key);
  lane.queue.push_back(std::move(work));
}

bool ThreadPool::Runnable() {
  for (const std::string& key : turn_) {
    if (lanes_[key].running < max_per_key_) return true;
  }
  return false;
}

ThreadPool::Lane* ThreadPool::NextLane(std::string* key) {
  for (auto it = turn_.begin(); it != turn_.end(); ++it) {
    Lane& lane = lanes_[*it];
    if (lane.running >= max_per_key_) continue;
    *key = *it;
    turn_.erase(it);
    return &lane;
  }
  return nullptr;
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> work;
    std::string key;
    {
      absl::MutexLock l(&mu_);
      // The condition only looks (absl may evaluate it more than once, in
      // any thread); the lane is taken after.
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return Runnable() || (stopping_ && turn_.empty());
      };
      mu_.Await(absl::Condition(&ready));
      Lane* lane = NextLane(&key);
      if (lane == nullptr) return;  // stopping, nothing left
      work = std::move(lane->queue.front());
      lane->queue.pop_front();
      ++lane->running;
      if (!lane->queue.empty()) turn_.push_back(key);  // its next turn
    }
    work();
    absl::MutexLock l(&mu_);
    Lane& lane = lanes_[key];
    --lane.running;
    if (lane.queue.empty() && lane.running == 0) lanes_.erase(key);
  }
}

}  // namespace kontor
