#ifndef KONTOR_DAEMON_INBOX_STAGING_H_
#define KONTOR_DAEMON_INBOX_STAGING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/attachment/files.h"
#include "daemon/common/clock.h"

namespace kontor {

struct StagingOptions {
  std::string data_dir;
  // Bytes of chunks one peer may have staged here (sent ahead of envelopes
  // not accepted yet); a chunk beyond it is refused (kResourceExhausted).
  uint64_t max_bytes_per_peer = 4ULL << 30;
  // Chunks are refused while the data directory's disk has less than this
  // free (kResourceExhausted).
  uint64_t min_free_bytes = 256ULL << 20;
  // Staged chunks whose envelope never came are removed after this long
  // without a new chunk (the sender sends them again if it still needs to:
  // it asks ChunkStatus first).
  int64_t ttl_ms = 24LL * 3600 * 1000;
};

// Attachment chunks a peer sends ahead of their envelope (PutChunks) wait in
// <data_dir>/attachments/staged/ (files.h) until the envelope is accepted or
// taken into custody (Claim: they move to in/), refused for good (Drop), or
// never comes (Collect, after ttl_ms). This bounds what a peer can leave on
// the disk: a quota per peer, a free-space floor, and a collector.
// Thread-safe.
class ChunkStaging {
 public:
  ChunkStaging(StagingOptions options, const Clock* clock);
  ChunkStaging(const ChunkStaging&) = delete;
  ChunkStaging& operator=(const ChunkStaging&) = delete;

  // At start: staged chunks of messages the store already holds
  // (`held(origin, id)` says where: after a crash before Claim) are claimed
  // now; the others are counted against `peer_of(origin)`.
  using Held = std::function<absl::StatusOr<std::optional<ChunkHome>>(
      const std::string& origin, const std::string& id)>;
  absl::Status Recover(
      const Held& held,
      const std::function<std::string(const std::string& origin)>& peer_of);

  // Stores one chunk file sent by the authenticated `peer` (write once: OK
  // if it is there already). kResourceExhausted when the peer's quota or
  // the free-space floor would be passed; kUnavailable if it cannot be
  // written.
  absl::Status Put(const std::string& peer, const std::string& origin,
                   const std::string& message_id, uint32_t attachment,
                   uint32_t index, absl::string_view data);
  // The envelope of (origin, id) is durable here (`home`: accepted, or in
  // custody): the chunks it lists move there, the rest staged for it goes.
  absl::Status Claim(const std::string& origin, const std::string& id,
                     const std::vector<std::vector<ChunkInfo>>& lists,
                     ChunkHome home);
  // The envelope of (origin, id) was refused for good: its chunks go.
  void Drop(const std::string& origin, const std::string& id);
  // Removes what waited longer than ttl_ms; returns how many messages'
  // chunks went.
  size_t Collect();

  uint64_t staged_bytes(const std::string& peer) const;
  uint64_t staged_total() const;

 private:
  struct Entry {
    std::string peer;
    uint64_t bytes = 0;
    int64_t newest_ms = 0;
  };
  using Key = std::pair<std::string, std::string>;  // (origin, message id)

  void Forget(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StagingOptions options_;
  const Clock* const clock_;
  const AttachmentDirs dirs_;
  mutable absl::Mutex mu_;
  std::map<Key, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> by_peer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_INBOX_STAGING_H_
