#ifndef KONTOR_DAEMON_ATTACHMENT_FILES_H_
#define KONTOR_DAEMON_ATTACHMENT_FILES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/attachment/chunks.h"
#include "daemon/common/text.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {

// At most this many attachments per message.
inline constexpr uint32_t kMaxAttachments = 64;

// Where attachment chunk files live, under <data_dir>/attachments:
//   out/<attachment id>/<i>.chunk           uploaded here, to send
//   staged/<origin>/<message id>/<a>/<i>.chunk
//                                 sent by a peer ahead of the envelope that
//                                 lists them; nobody has accepted them yet
//   in/<origin>/<message id>/<a>/<i>.chunk  of a message received here (to
//                                 open): moved from staged/ once durable
//   relay/<origin>/<message id>/<a>/<i>.chunk  of a message taken into
//                                 custody (to pass on); apart from in/, so
//                                 that each goes when its own use ends (a
//                                 chunk both need is one file, hard-linked)
class AttachmentDirs {
 public:
  explicit AttachmentDirs(std::string data_dir);
  const std::string& root() const { return root_; }
  std::string Upload(const std::string& attachment_id) const;
  std::string IncomingMessage(const std::string& origin,
                              const std::string& message_id) const;
  std::string Incoming(const std::string& origin, const std::string& message_id,
                       uint32_t attachment) const;
  std::string StagedRoot() const;
  std::string StagedMessage(const std::string& origin,
                            const std::string& message_id) const;
  std::string Staged(const std::string& origin, const std::string& message_id,
                     uint32_t attachment) const;
  std::string RelayMessage(const std::string& origin,
                           const std::string& message_id) const;
  std::string Relay(const std::string& origin, const std::string& message_id,
                    uint32_t attachment) const;

 private:
  std::string root_;
};

// The chunk list of an envelope, per attachment, after checking its shape:
// attachments numbered 0..n-1 (n <= kMaxAttachments), each with chunks
// 0..k-1 of which exactly the final one is last, each 16 bytes to 1 MiB +
// 16, all together at most `max_total_bytes` of plaintext (size - 16 each).
// InvalidArgument otherwise (ResourceExhausted when only the total is too
// large).
absl::StatusOr<std::vector<std::vector<ChunkInfo>>> ChunkLists(
    const google::protobuf::RepeatedPtrField<v1::AttachmentChunkRef>& refs,
    uint64_t max_total_bytes);

// The refs for chunk lists (the inverse of ChunkLists).
void AddChunkRefs(uint32_t attachment, const std::vector<ChunkInfo>& chunks,
                  v1::Envelope* envelope);

// How many of the listed chunks of (origin, message_id) are not in `dirs`
// whole (size and SHA-256 as listed), in in/, relay/ or staged/. A file
// that is there but wrong is removed, so that the sender's next ChunkStatus
// shows it missing.
absl::StatusOr<size_t> MissingChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id,
    const std::vector<std::vector<ChunkInfo>>& lists);

// The (attachment, index) pairs of the chunk files present for
// (origin, message_id), in in/, relay/ or staged/, sorted and unique.
std::vector<std::pair<uint32_t, uint32_t>> PresentChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id);

// Where the chunks of a message whose envelope is durable here go.
enum class ChunkHome { kInbox, kRelay };

// The envelope of (origin, message_id) is durable here (accepted into the
// inbox, or taken into custody to relay): the chunks it lists move into
// `home` (in/ or relay/) from staged/, or are hard-linked from the other
// home; whatever else is staged for it (chunks it does not list) is
// removed. The listed chunks were checked (MissingChunks) before.
absl::Status ClaimStaged(const AttachmentDirs& dirs, const std::string& origin,
                         const std::string& message_id,
                         const std::vector<std::vector<ChunkInfo>>& lists,
                         ChunkHome home);
// After a crash between the envelope's commit and ClaimStaged: whatever is
// staged for it moves into `home`, as it is.
absl::Status ClaimAllStaged(const AttachmentDirs& dirs,
                            const std::string& origin,
                            const std::string& message_id, ChunkHome home);

// Bytes of regular files under `dir` (recursively), and the newest
// modification time among them (Unix ms; 0 if none).
struct TreeUsage {
  uint64_t bytes = 0;
  int64_t newest_ms = 0;
};
TreeUsage UsageOf(const std::string& dir);

// The subdirectory names of `dir` (no "." or ".."); empty if none or no dir.
std::vector<std::string> SubdirNames(const std::string& dir);

// Bytes an unprivileged process may still write on the file system of
// `path` (statvfs f_bavail); kUnavailable if it cannot be asked.
absl::StatusOr<uint64_t> FreeBytes(const std::string& path);
// The free-space floor to keep when none is configured: 2% of the file
// system of `path`, at most 256 MiB.
uint64_t DefaultMinFreeBytes(const std::string& path);
// kResourceExhausted ("disk is full: the file system of PATH ...") if writing
// `need` more bytes would leave less than `floor` free; OK otherwise (also when
// the file system cannot be asked).
absl::Status CheckFreeSpace(const std::string& path, uint64_t need,
                            uint64_t floor);

// mkdir -p with mode 0700 for what it creates.
absl::Status MakeDirs(const std::string& path);

// Removes a directory tree made of chunk directories (best effort).
void RemoveTree(const std::string& dir);

// SafeFileName() is in common/text.h.

}  // namespace kontor

#endif  // KONTOR_DAEMON_ATTACHMENT_FILES_H_
