#include "daemon/attachment/files.h"

#include <dirent.h>
#include <sys/stat.h>
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
    const std::string dir = dirs.Incoming(origin, message_id, a);
    for (const ChunkInfo& c : lists[a]) {
      const std::string path = ChunkPath(dir, c.index);
      struct stat st;
      if (stat(path.c_str(), &st) != 0) {
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
  for (const std::string& a :
       ListDir(dirs.IncomingMessage(origin, message_id))) {
    uint32_t attachment;
    if (!ParseIndex(a, &attachment)) continue;
    for (const std::string& f :
         ListDir(dirs.Incoming(origin, message_id, attachment))) {
      const size_t dot = f.find(".chunk");
      uint32_t index;
      if (dot == std::string::npos || dot + 6 != f.size() ||
          !ParseIndex(f.substr(0, dot), &index)) {
        continue;
      }
      out.emplace_back(attachment, index);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
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

std::string SafeFileName(const std::string& name, uint32_t n) {
  std::string base = name.substr(name.find_last_of("/\\") == std::string::npos
                                     ? 0
                                     : name.find_last_of("/\\") + 1);
  std::string out;
  for (unsigned char c : base) {
    if (c >= 0x20 && c != 0x7f) out.push_back(static_cast<char>(c));
  }
  if (out.empty() || out[0] == '.' || out.size() > 200) {
    return absl::StrCat("attachment-", n);
  }
  return out;
}

}  // namespace kontor
