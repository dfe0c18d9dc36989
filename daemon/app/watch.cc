// Watching: what arrived (inbox) or happened to what was sent (delivery
// events) after a cursor, for what the caller may see.

#include "daemon/app/watch.h"

#include "daemon/app/app.h"
#include "daemon/app/internal.h"

namespace kontor {

WatchHub::WatchHub(Store* store) : store_(store), thread_([this] { Run(); }) {}

WatchHub::~WatchHub() {
  stop_.Notify();
  thread_.join();
}

WatchHub::Id WatchHub::Subscribe(std::function<void()> wake) {
  absl::MutexLock l(&mu_);
  const Id id = next_++;
  watchers_[id] = std::move(wake);
  return id;
}

void WatchHub::Unsubscribe(Id id) {
  absl::MutexLock l(&mu_);
  watchers_.erase(id);
}

void WatchHub::Run() {
  uint64_t inbox = store_->MaxInboxSeq();
  auto events = store_->MaxEventSeq();
  uint64_t sent = events.ok() ? *events : 0;
  int quiet = 0;
  while (!stop_.HasBeenNotified()) {
    // Inbox records are announced by the store; delivery events are rarer:
    // looked at every 250 ms.
    store_->WaitInbox(inbox, 250);
    const uint64_t now_inbox = store_->MaxInboxSeq();
    auto now_events = store_->MaxEventSeq();
    const uint64_t now_sent = now_events.ok() ? *now_events : sent;
    const bool news = now_inbox != inbox || now_sent != sent;
    inbox = now_inbox;
    sent = now_sent;
    if (!news && ++quiet < 4) continue;
    quiet = 0;
    absl::MutexLock l(&mu_);  // wakes do not block: held briefly
    for (auto& [id, wake] : watchers_) wake();
  }
}

absl::StatusOr<uint64_t> App::InboxNow() const {
  return o_.store->MaxInboxSeq();
}

absl::StatusOr<uint64_t> App::SentNow() const {
  return o_.store->MaxEventSeq();
}

absl::StatusOr<std::vector<v1::InboxEntry>> App::InboxAfter(
    const Caller& caller, uint64_t* cursor, size_t limit, absl::Duration wait) {
  std::vector<v1::InboxEntry> out;
  limit = std::clamp<size_t>(limit, 1, app_internal::kMaxList);
  bool waited = wait <= absl::ZeroDuration();
  for (;;) {
    auto records = o_.store->ListInbox(false, *cursor, limit);
    if (!records.ok()) return records.status();
    for (const InboxRecord& r : *records) {
      *cursor = r.seq;
      if (!MaySee(caller, MessageView{false, "", r.kind})) continue;
      app_internal::FillEntry(r, &out.emplace_back());
    }
    if (!out.empty()) break;
    if (records->size() == limit) continue;  // all hidden: look further
    if (waited) break;
    o_.store->WaitInbox(*cursor, absl::ToInt64Milliseconds(wait));
    waited = true;
  }
  return out;
}

absl::StatusOr<std::vector<v1::DeliveryEvent>> App::SentAfter(
    const Caller& caller, uint64_t* cursor, size_t limit, absl::Duration wait) {
  std::vector<v1::DeliveryEvent> out;
  limit = std::clamp<size_t>(limit, 1, app_internal::kMaxList);
  const int64_t until =
      o_.clock->MonotonicMs() + absl::ToInt64Milliseconds(wait);
  // Moves only when the answer is whole: an error loses no event.
  uint64_t next = *cursor;
  for (;;) {
    auto events = o_.store->ListEvents(next, limit);
    if (!events.ok()) return events.status();
    for (const DeliveryEvent& ev : *events) {
      next = ev.seq;
      // Only the caller's own messages (an admin's: all).
      if (!RoleIsAdmin(caller.role)) {
        auto own = OwnSent(caller, ev.message_id);
        if (own.status().code() == absl::StatusCode::kNotFound) continue;
        if (!own.ok()) return own.status();
      }
      v1::DeliveryEvent& e = out.emplace_back();
      e.set_seq(ev.seq);
      e.set_message_id(ev.message_id);
      e.set_recipient(ev.peer);
      e.set_state(ev.state);
      e.set_reason(ev.reason);
      e.set_time_unix_ms(ev.time_ms);
    }
    const int64_t left = until - o_.clock->MonotonicMs();
    if (!events->empty() || left <= 0) break;
    // Events are rarer than messages: a short poll is enough.
    absl::Notification never;
    o_.clock->WaitForNotification(never, std::min<int64_t>(250, left));
  }
  *cursor = next;
  return out;
}

}  // namespace kontor
