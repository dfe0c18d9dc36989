#ifndef KONTOR_DAEMON_APP_WATCH_H_
#define KONTOR_DAEMON_APP_WATCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "daemon/store/store.h"

namespace kontor {

// Tells watchers (the local API's Watch and WatchSent streams, the
// console's live updates) that something new may be there: one thread for
// all of them, so that a watcher that waits holds no thread of its own.
// A wake is a hint: the watcher reads what is new itself (App::InboxAfter,
// App::SentAfter). Thread-safe.
class WatchHub {
 public:
  explicit WatchHub(Store* store);
  ~WatchHub();  // stops; no wake after it returns
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  using Id = uint64_t;
  // `wake` is called (on the hub's thread; it must not block) whenever the
  // inbox or the delivery events moved, and once at least every second.
  Id Subscribe(std::function<void()> wake);
  void Unsubscribe(Id id);

 private:
  void Run();

  Store* const store_;
  absl::Notification stop_;
  absl::Mutex mu_;
  std::map<Id, std::function<void()>> watchers_ ABSL_GUARDED_BY(mu_);
  Id next_ ABSL_GUARDED_BY(mu_) = 1;
  std::thread thread_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_APP_WATCH_H_
