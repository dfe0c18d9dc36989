#include "daemon/inbox/staging.h"

#include <sys/stat.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/attachment/chunks.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"

namespace kontor {

ChunkStaging::ChunkStaging(StagingOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock), dirs_(options_.data_dir) {}

absl::Status ChunkStaging::Recover(
    const Held& held,
    const std::function<std::string(const std::string&)>& peer_of) {
  size_t claimed = 0, counted = 0, junk = 0;
  for (const std::string& origin : SubdirNames(dirs_.StagedRoot())) {
    if (!IsValidNodeId(origin)) {
      RemoveTree(absl::StrCat(dirs_.StagedRoot(), "/", origin));  // not ours
      ++junk;
      continue;
    }
    for (const std::string& id :
         SubdirNames(absl::StrCat(dirs_.StagedRoot(), "/", origin))) {
      if (!IsValidNodeId(origin) || !IsValidMessageId(id)) {
        RemoveTree(dirs_.StagedMessage(origin, id));  // not ours
        ++junk;
        continue;
      }
      auto home = held(origin, id);
      if (!home.ok()) return home.status();
      if (home->has_value()) {
        if (auto s = ClaimAllStaged(dirs_, origin, id, **home); !s.ok()) {
          return s;
        }
        ++claimed;
        continue;
      }
      const TreeUsage u = UsageOf(dirs_.StagedMessage(origin, id));
      absl::MutexLock l(&mu_);
      Entry& e = entries_[{origin, id}];
      e.peer = peer_of(origin);
      e.bytes = u.bytes;
      e.newest_ms = u.newest_ms;
      by_peer_[e.peer] += u.bytes;
      ++counted;
    }
  }
  if (claimed + counted + junk > 0) {
    KLOG(Info, "inbox") << "staged attachment chunks at start: " << counted
                        << " message(s) waiting for their envelope, " << claimed
                        << " claimed now, " << junk << " unusable removed";
  }
  return absl::OkStatus();
}

absl::Status ChunkStaging::Put(const std::string& peer,
                               const std::string& origin,
                               const std::string& message_id,
                               uint32_t attachment, uint32_t index,
                               absl::string_view data) {
  const std::string dir = dirs_.Staged(origin, message_id, attachment);
  struct stat st;
  for (const std::string& there :
       {dir, dirs_.Incoming(origin, message_id, attachment),
        dirs_.Relay(origin, message_id, attachment)}) {
    if (stat(ChunkPath(there, index).c_str(), &st) == 0) {
      return absl::OkStatus();  // write once
    }
  }
  if (auto s = CheckFreeSpace(options_.data_dir, data.size(),
                              options_.min_free_bytes);
      !s.ok()) {
    // The details (paths, free space) are for this node's log only.
    KLOG(Error, "inbox") << "chunk from " << peer
                         << " refused: " << s.message();
    return absl::ResourceExhaustedError(
        "recipient cannot store attachment chunks now: disk is full");
  }
  const Key key{origin, message_id};
  {
    // Reserve first, so that concurrent streams cannot pass the quota.
    absl::MutexLock l(&mu_);
    uint64_t& used = by_peer_[peer];
    if (used + data.size() > options_.max_bytes_per_peer) {
      KLOG(Warning, "inbox") << "chunk from " << peer << " refused: " << used
                             << " bytes staged without their envelopes (limit "
                             << options_.max_bytes_per_peer << ")";
      return absl::ResourceExhaustedError(absl::StrCat(
          "peer ", peer, " has ", used,
          " bytes of attachment chunks staged here whose envelopes have not "
          "come (limit ",
          options_.max_bytes_per_peer,
          ", limits.max_staged_bytes_per_peer): send the envelopes first"));
    }
    used += data.size();
    Entry& e = entries_[key];
    e.peer = peer;
    e.bytes += data.size();
    e.newest_ms = clock_->NowUnixMs();
  }
  auto written = WriteChunkFile(dir, index, data);
  if (!written.ok()) {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      it->second.bytes -= std::min<uint64_t>(it->second.bytes, data.size());
      by_peer_[peer] -= std::min<uint64_t>(by_peer_[peer], data.size());
    }
    KLOG(Error, "inbox") << "cannot store a chunk from " << peer << ": "
                         << written.status().message();
    return absl::UnavailableError(absl::StrCat(
        "recipient cannot store the chunk now: ", written.status().message()));
  }
  return absl::OkStatus();
}

void ChunkStaging::Forget(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  uint64_t& used = by_peer_[it->second.peer];
  used -= std::min(used, it->second.bytes);
  entries_.erase(it);
}

absl::Status ChunkStaging::Claim(
    const std::string& origin, const std::string& id,
    const std::vector<std::vector<ChunkInfo>>& lists, ChunkHome home) {
  {
    absl::MutexLock l(&mu_);
    Forget({origin, id});
  }
  return ClaimStaged(dirs_, origin, id, lists, home);
}

void ChunkStaging::Drop(const std::string& origin, const std::string& id) {
  {
    absl::MutexLock l(&mu_);
    Forget({origin, id});
  }
  RemoveTree(dirs_.StagedMessage(origin, id));
}

size_t ChunkStaging::Collect() {
  const int64_t before = clock_->NowUnixMs() - options_.ttl_ms;
  std::vector<Key> stale;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [key, e] : entries_) {
      if (e.newest_ms < before) stale.push_back(key);
    }
  }
  for (const Key& key : stale) {
    KLOG(Info, "inbox") << "removing staged attachment chunks of " << key.second
                        << " from " << key.first
                        << ": their envelope never came";
    Drop(key.first, key.second);
  }
  return stale.size();
}

uint64_t ChunkStaging::staged_bytes(const std::string& peer) const {
  absl::MutexLock l(&mu_);
  auto it = by_peer_.find(peer);
  return it == by_peer_.end() ? 0 : it->second;
}

uint64_t ChunkStaging::staged_total() const {
  absl::MutexLock l(&mu_);
  uint64_t total = 0;
  for (const auto& [peer, bytes] : by_peer_) total += bytes;
  return total;
}

}  // namespace kontor
