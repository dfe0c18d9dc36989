#ifndef KONTOR_DAEMON_ATTACHMENT_FILES_H_
#define KONTOR_DAEMON_ATTACHMENT_FILES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/attachment/chunks.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {

// At most this many attachments per message.
inline constexpr uint32_t kMaxAttachments = 64;

// Where attachment chunk files live, under <data_dir>/attachments:
//   out/<attachment id>/<i>.chunk         uploaded here, to send
//   in/<origin>/<message id>/<a>/<i>.chunk  received from a peer (to open,
//                                           or to relay)
class AttachmentDirs {
 public:
  explicit AttachmentDirs(std::string data_dir);
  const std::string& root() const { return root_; }
  std::string Upload(const std::string& attachment_id) const;
  std::string IncomingMessage(const std::string& origin,
                              const std::string& message_id) const;
  std::string Incoming(const std::string& origin, const std::string& message_id,
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
// whole (size and SHA-256 as listed). A file that is there but wrong is
// removed, so that the sender's next ChunkStatus shows it missing.
absl::StatusOr<size_t> MissingChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id,
    const std::vector<std::vector<ChunkInfo>>& lists);

// The (attachment, index) pairs of the chunk files present for
// (origin, message_id), sorted.
std::vector<std::pair<uint32_t, uint32_t>> PresentChunks(
    const AttachmentDirs& dirs, const std::string& origin,
    const std::string& message_id);

// mkdir -p with mode 0700 for what it creates.
absl::Status MakeDirs(const std::string& path);

// Removes a directory tree made of chunk directories (best effort).
void RemoveTree(const std::string& dir);

// A file name safe to create in a directory chosen by the user: the last
// path component, without control characters; "attachment-<n>" if nothing
// usable is left (empty, ".", "..", hidden).
std::string SafeFileName(const std::string& name, uint32_t n);

}  // namespace kontor

#endif  // KONTOR_DAEMON_ATTACHMENT_FILES_H_
