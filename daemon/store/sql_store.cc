// The store over the SQL interface: the one writer (group commit, a savepoint
// per write), content keys and sealing, and NewSqlStore.

#include "daemon/store/sql_store_internal.h"

namespace kontor {

std::string RelayKey(absl::string_view origin, absl::string_view message_id) {
  return absl::StrCat(origin, "/", message_id);
}

namespace sql_store {

SqlStore::SqlStore(std::unique_ptr<sql::Connection> writer,
                   std::unique_ptr<sql::Connection> reader,
                   std::unique_ptr<ContentKeys> keys)
    : writer_(std::move(writer)),
      keys_(std::move(keys)),
      reader_owner_(std::move(reader)),
      reader_(reader_owner_.get()) {
  max_seq_ = QueryMaxSeq();
  thread_ = std::thread([this] { WriterLoop(); });
}

SqlStore::~SqlStore() {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  thread_.join();
  writer_.reset();
  reader_owner_.reset();
}

absl::Status SqlStore::Write(Job job, size_t keys) {
  auto p = std::make_shared<Pending>();
  p->job = std::move(job);
  p->keys = keys;
  std::future<absl::Status> f = p->done.get_future();
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    queue_.push_back(p);
  }
  queue_cv_.notify_one();
  return f.get();
}

void SqlStore::WriterLoop() {
  for (;;) {
    std::deque<std::shared_ptr<Pending>> batch;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    RunBatch(batch);
  }
}

void SqlStore::RunBatch(std::deque<std::shared_ptr<Pending>>& batch) {
  // Keys first, in their own file and transaction, made in advance for
  // many writes (one fsync of the key file per kKeyPoolRefill keys): a
  // crash leaves unused keys, never sealed content without its key.
  size_t needed = 0;
  for (auto& p : batch) needed += p->keys;
  if (key_pool_.size() < needed) {
    std::vector<std::string> ids;
    const size_t make = std::max(needed - key_pool_.size(), kKeyPoolRefill);
    for (size_t i = 0; i < make; ++i) {
      ids.push_back(absl::StrCat("k:", HexEncode(RandomBytes(16))));
    }
    auto made = keys_->Ensure(ids);
    if (!made.ok()) {
      KLOG(Error, "store") << made.status().message();
      for (auto& p : batch) p->done.set_value(made.status());
      return;
    }
    for (std::string& id : ids) {
      std::string key = (*made)[id];
      key_pool_.push_back(ContentKey{std::move(id), std::move(key)});
    }
  }
  absl::Status begin = writer_->BeginWrite();
  if (!begin.ok()) {
    for (auto& p : batch) p->done.set_value(begin);
    return;
  }
  std::vector<absl::Status> results;
  results.reserve(batch.size());
  for (auto& p : batch) {
    absl::Status s = writer_->Savepoint();
    const bool saved = s.ok();
    job_destroys_ = &p->destroys;
    if (s.ok()) s = p->job(writer_.get());
    job_destroys_ = nullptr;
    if (s.ok()) s = writer_->ReleaseSavepoint();
    // A job that failed, or whose savepoint could not be released, leaves
    // nothing behind.
    if (!s.ok() && saved) writer_->RollbackSavepoint();
    if (!s.ok()) p->destroys.clear();
    results.push_back(s);
    if (!writer_->InTransaction()) {
      // The database rolled the whole transaction back (disk full, I/O error,
      // out of memory): nothing of this batch is committed, so every job
      // fails, and none may run outside the transaction.
      absl::Status lost =
          s.ok() ? absl::UnavailableError("store transaction rolled back") : s;
      KLOG(Error, "store") << "transaction lost: " << lost.message();
      writer_->Rollback();  // whatever is left of it (PostgreSQL: aborted)
      for (auto& q : batch) q->done.set_value(lost);
      return;
    }
  }
  absl::Status commit = writer_->Commit();
  if (!commit.ok()) {
    KLOG(Error, "store") << "commit failed: " << commit.message();
    writer_->Rollback();
    for (auto& p : batch) p->done.set_value(commit);
    return;
  }
  commits_.fetch_add(1);
  writes_.fetch_add(batch.size());
  commit_writes_.Observe(static_cast<double>(batch.size()));
  // Content erased in this transaction: now its keys go. If that fails
  // it is tried again after the next commit (and the next Open sweeps
  // every key no row uses).
  std::vector<std::string> destroys = std::move(pending_destroys_);
  pending_destroys_.clear();
  for (auto& p : batch) {
    destroys.insert(destroys.end(), p->destroys.begin(), p->destroys.end());
  }
  DestroyKeys(std::move(destroys));
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->done.set_value(results[i]);
  }
}

absl::Status SqlStore::AddEvent(sql::Tx* db, const std::string& key,
                                const std::string& peer,
                                absl::string_view state,
                                const std::string& reason, int64_t time_ms) {
  if (key.find('/') != std::string::npos) return absl::OkStatus();
  Stmt e(db,
         "INSERT INTO events(message_id, peer, state, reason, time_ms) "
         "VALUES(?,?,?,?,?)");
  e.Bind(1, key).Bind(2, peer).Bind(3, state).Bind(4, reason);
  e.Bind(5, time_ms);
  return e.Run("event");
}

uint64_t SqlStore::QueryMaxSeq() {
  Stmt s(reader_, "SELECT COALESCE(MAX(seq), 0) FROM inbox WHERE accepted = 1");
  return s.Next() ? static_cast<uint64_t>(s.Int(0)) : 0;
}

absl::StatusOr<SqlStore::ContentKey> SqlStore::TakeKey() {
  if (key_pool_.empty()) {
    return absl::InternalError("no content key left for this write");
  }
  ContentKey k = std::move(key_pool_.front());
  key_pool_.pop_front();
  return k;
}

absl::StatusOr<std::string> SqlStore::Seal(const ContentKey& k,
                                           absl::string_view column,
                                           absl::string_view plaintext) {
  return SealColumn(k.key, k.id, column, plaintext);
}

void SqlStore::DestroyKeys(std::vector<std::string> ids) {
  const auto now = std::chrono::steady_clock::now();
  if (ids.empty() &&
      (!wal_pending_ || now - wal_tried_ < std::chrono::seconds(5))) {
    return;  // nothing to do, or tried a moment ago (a backup runs)
  }
  wal_tried_ = now;
  absl::Status st = ids.empty() ? keys_->Checkpoint() : keys_->Destroy(ids);
  if (st.ok()) {
    wal_pending_ = false;
  } else if (st.code() == absl::StatusCode::kAborted) {
    if (!wal_pending_) KLOG(Warning, "store") << st.message();
    wal_pending_ = true;
  } else {
    KLOG(Error, "store") << "content keys of erased messages not destroyed "
                            "yet (tried again after the next write): "
                         << st.message();
    pending_destroys_ = std::move(ids);
  }
}

absl::StatusOr<std::string> SqlStore::Unseal(const std::string& key_id,
                                             absl::string_view column,
                                             std::string value) {
  if (value.empty()) return value;
  if (!IsSealed(value)) {
    KLOG(Security, "store") << column << " of " << key_id
                            << " is stored unsealed: not written by this "
                               "node (the store file was changed); not shown";
    return std::string();
  }
  auto key = keys_->Get(key_id);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::string();
  return OpenColumn(**key, key_id, column, value);
}

absl::Status SqlStore::UnsealInbox(InboxRecord* r) {
  const std::string id =
      KeyIdOr(r->key_id, InboxKeyId(r->origin, r->message_id));
  for (auto [column, value] :
       {std::pair<const char*, std::string*>{"inner_signed", &r->inner_signed},
        {"payload", &r->payload},
        {"subject", &r->subject}}) {
    auto plain = Unseal(id, column, std::move(*value));
    if (!plain.ok()) return plain.status();
    *value = std::move(*plain);
  }
  return absl::OkStatus();
}

}  // namespace sql_store

std::unique_ptr<Store> NewSqlStore(std::unique_ptr<sql::Connection> writer,
                                   std::unique_ptr<sql::Connection> reader,
                                   std::unique_ptr<ContentKeys> keys,
                                   Metrics* metrics) {
  auto store = std::make_unique<sql_store::SqlStore>(
      std::move(writer), std::move(reader), std::move(keys));
  if (metrics != nullptr) {
    store->commit_writes_ = metrics->GetHistogram(
        "kontor_store_commit_writes",
        "Writes (submissions, receptions, settlements...) per store "
        "transaction: group commit at work",
        {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  }
  return store;
}

}  // namespace kontor
