#include "daemon/attachment/files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kontor {

AttachmentDirs::AttachmentDirs(std::string data_dir)
    : root_(absl::StrCat(data_dir, "/attachments")) {}

std::string AttachmentDirs::Upload(const std::string& attachment_id) const {
  return absl::StrCat(root_, "/out/", attachment_id);
}

std::string AttachmentDirs::IncomingMessage(
    const std::string& origin, const std::string& message_id) const {
  return absl::StrCat(root_, "/in/", origin, "/", message_id);
}

std::string AttachmentDirs::StagedRoot() const {
  return absl::StrCat(root_, "/staged");
}

std::string AttachmentDirs::StagedMessage(const std::string& origin,
                                          const std::string& message_id) const {
  return absl::StrCat(root_, "/staged/", origin, "/", message_id);
}

std::string AttachmentDirs::Staged(const std::string& origin,
                                   const std::string& message_id,
                                   uint32_t attachment) const {
  return absl::StrCat(StagedMessage(origin, message_id), "/", attachment);
}

std::string AttachmentDirs::RelayMessage(const std::string& origin,
                                         const std::string& message_id) const {
  return absl::StrCat(root_, "/relay/", origin, "/", message_id);
}

std::string AttachmentDirs::Relay(const std::string& origin,
                                  const std::string& message_id,
                                  uint32_t attachment) const {
  return absl::StrCat(RelayMessage(origin, message_id), "/", attachment);
}

std::string AttachmentDirs::Incoming(const std::string& origin,
                                     const std::string& message_id,
                                     uint32_t attachment) const {
  return absl::StrCat(IncomingMessage(origin, message_id), "/", attachment);
}

absl::StatusOr<std::vector<std::vector<ChunkInfo>>> ChunkLists(
    const google::protobuf::RepeatedPtrField<v1::AttachmentChunkRef>& refs,
    uint64_t max_total_bytes) {
  std::vector<std::vector<ChunkInfo>> lists;
  uint64_t total = 0;
  for (const v1::AttachmentChunkRef& r : refs) {
    if (r.attachment() >= kMaxAttachments) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", kMaxAttachments, " attachments"));
    }
    if (r.attachment() == lists.size()) lists.emplace_back();
    if (r.attachment() + 1 != lists.size()) {
      return absl::InvalidArgumentError("attachments out of order");
    }
    std::vector<ChunkInfo>& list = lists.back();
    if (r.index() != list.size() || (!list.empty() && list.back().last)) {
      return absl::InvalidArgumentError(
          absl::StrCat("attachment ", r.attachment(), ": chunk ", r.index(),
                       " out of order or after the last"));
    }
    if (r.size() < kChunkTagBytes || r.size() > kMaxChunkFileBytes ||
        r.sha256().size() != 32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attachment ", r.attachment(), ": chunk ", r.index(), " malformed"));
    }
    total += r.size() - kChunkTagBytes;  // plaintext, as the sender counts
    if (total > max_total_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "attachments larger than the limit of ", max_total_bytes, " bytes"));
    }
    list.push_back(ChunkInfo{r.index(), r.size(), r.sha256(), r.last()});
  }
  for (size_t a = 0; a < lists.size(); ++a) {
    if (lists[a].empty() || !lists[a].back().last) {
      return absl::InvalidArgumentError(
          absl::StrCat("attachment ", a, " has no last chunk"));
    }
  }
  return lists;
}

void AddChunkRefs(uint32_t attachment, const std::vector<ChunkInfo>& chunks,
                  v1::Envelope* envelope) {
  for (const ChunkInfo& c : chunks) {
    v1::AttachmentChunkRef* r = envelope->add_chunks();
    r->set_attachment(attachment);
    r->set_index(c.index);
    r->set_size(c.size);
    r->set_sha256(c.sha256);
    r->set_last(c.last);
  }
}

absl::StatusOr<size_t> MissingChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id,
    const std::vector<std::vector<ChunkInfo>>& lists) {
  size_t missing = 0;
  for (uint32_t a = 0; a < lists.size(); ++a) {
    const std::string places[] = {dirs.Incoming(origin, message_id, a),
                                  dirs.Relay(origin, message_id, a),
                                  dirs.Staged(origin, message_id, a)};
    for (const ChunkInfo& c : lists[a]) {
      std::string path;
      struct stat st;
      for (const std::string& dir : places) {
        path = ChunkPath(dir, c.index);
        if (stat(path.c_str(), &st) == 0) break;
        path.clear();
      }
      if (path.empty()) {
        ++missing;
        continue;
      }
      bool good = static_cast<uint64_t>(st.st_size) == c.size;
      if (good) {
        auto sha = Sha256File(path);
        if (!sha.ok()) return sha.status();
        good = *sha == c.sha256;
      }
      if (!good) {
        unlink(path.c_str());
        ++missing;
      }
    }
  }
  return missing;
}

namespace {

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(d);
  return out;
}

// Parses a decimal number that is the whole of `s` (no sign, no spaces).
bool ParseIndex(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::vector<std::pair<uint32_t, uint32_t>> PresentChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const std::string& root : {dirs.IncomingMessage(origin, message_id),
                                  dirs.RelayMessage(origin, message_id),
                                  dirs.StagedMessage(origin, message_id)}) {
    for (const std::string& a : ListDir(root)) {
      uint32_t attachment;
      if (!ParseIndex(a, &attachment)) continue;
      for (const std::string& f : ListDir(absl::StrCat(root, "/", a))) {
        const size_t dot = f.find(".chunk");
        uint32_t index;
        if (dot == std::string::npos || dot + 6 != f.size() ||
            !ParseIndex(f.substr(0, dot), &index)) {
          continue;
        }
        out.emplace_back(attachment, index);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

std::string HomeMessage(const AttachmentDirs& dirs, const std::string& origin,
                        const std::string& message_id, ChunkHome home) {
  return home == ChunkHome::kInbox ? dirs.IncomingMessage(origin, message_id)
                                   : dirs.RelayMessage(origin, message_id);
}

}  // namespace

absl::Status ClaimStaged(const AttachmentDirs& dirs, const std::string& origin,
                         const std::string& message_id,
                         const std::vector<std::vector<ChunkInfo>>& lists,
                         ChunkHome home) {
  const ChunkHome other_home =
      home == ChunkHome::kInbox ? ChunkHome::kRelay : ChunkHome::kInbox;
  const std::string to = HomeMessage(dirs, origin, message_id, home);
  const std::string other = HomeMessage(dirs, origin, message_id, other_home);
  const std::string staged = dirs.StagedMessage(origin, message_id);
  for (uint32_t a = 0; a < lists.size(); ++a) {
    const std::string dir = absl::StrCat(to, "/", a);
    if (auto s = MakeDirs(dir); !s.ok()) return s;
    for (const ChunkInfo& c : lists[a]) {
      const std::string target = ChunkPath(dir, c.index);
      struct stat st;
      if (lstat(target.c_str(), &st) == 0) continue;
      const std::string from = ChunkPath(absl::StrCat(staged, "/", a), c.index);
      if (rename(from.c_str(), target.c_str()) == 0) continue;
      const std::string shared =
          ChunkPath(absl::StrCat(other, "/", a), c.index);
      if (link(shared.c_str(), target.c_str()) != 0) {
        return absl::InternalError(
            absl::StrCat("cannot move chunk ", a, "/", c.index, " of ",
                         message_id, " into ", to, ": ", strerror(errno)));
      }
    }
  }
  RemoveTree(staged);  // what the envelope does not list
  return absl::OkStatus();
}

absl::Status ClaimAllStaged(const AttachmentDirs& dirs,
                            const std::string& origin,
                            const std::string& message_id, ChunkHome home) {
  const std::string staged = dirs.StagedMessage(origin, message_id);
  const std::string to = HomeMessage(dirs, origin, message_id, home);
  for (const std::string& a : ListDir(staged)) {
    uint32_t attachment;
    if (!ParseIndex(a, &attachment)) continue;
    const std::string dst = absl::StrCat(to, "/", a);
    if (auto s = MakeDirs(dst); !s.ok()) return s;
    for (const std::string& f : ListDir(absl::StrCat(staged, "/", a))) {
      const std::string target = absl::StrCat(dst, "/", f);
      struct stat st;
      if (lstat(target.c_str(), &st) == 0) continue;
      if (rename(absl::StrCat(staged, "/", a, "/", f).c_str(),
                 target.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("cannot move ", staged, "/", a,
                                                "/", f, ": ", strerror(errno)));
      }
    }
  }
  RemoveTree(staged);
  return absl::OkStatus();
}

TreeUsage UsageOf(const std::string& dir) {
  TreeUsage u;
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return u;
  if (S_ISREG(st.st_mode)) {
    u.bytes = static_cast<uint64_t>(st.st_size);
    u.newest_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 +
                  st.st_mtim.tv_nsec / 1000000;
    return u;
  }
  if (!S_ISDIR(st.st_mode)) return u;
  for (const std::string& name : ListDir(dir)) {
    const TreeUsage sub = UsageOf(absl::StrCat(dir, "/", name));
    u.bytes += sub.bytes;
    u.newest_ms = std::max(u.newest_ms, sub.newest_ms);
  }
  return u;
}

std::vector<std::string> SubdirNames(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& name : ListDir(dir)) {
    struct stat st;
    if (lstat(absl::StrCat(dir, "/", name).c_str(), &st) == 0 &&
        S_ISDIR(st.st_mode)) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs v;
  if (statvfs(path.c_str(), &v) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot ask the file system of ",
                                               path, ": ", strerror(errno)));
  }
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

uint64_t DefaultMinFreeBytes(const std::string& path) {
  constexpr uint64_t kCap = 256ULL << 20;
  struct statvfs v;
  if (statvfs(path.c_str(), &v) != 0) return kCap;
  const uint64_t total = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  return std::min(kCap, total / 50);
}

absl::Status CheckFreeSpace(const std::string& path, uint64_t need,
                            uint64_t floor) {
  auto free = FreeBytes(path);
  if (!free.ok()) return absl::OkStatus();  // the write itself will tell
  if (*free >= floor && *free - floor >= need) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("disk is full: the file system of ", path, " has ",
                   *free >> 10, " KiB free, and this node keeps ", floor >> 10,
                   " KiB free (limits.min_free_bytes)"));
}

absl::Status MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("cannot create ", part, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

void RemoveTree(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    for (const std::string& name : ListDir(dir)) {
      RemoveTree(absl::StrCat(dir, "/", name));
    }
    rmdir(dir.c_str());
  } else {
    unlink(dir.c_str());
  }
}

}  // namespace kontor
