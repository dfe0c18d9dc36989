#ifndef KONTOR_DAEMON_ATTACHMENT_CHUNKS_H_
#define KONTOR_DAEMON_ATTACHMENT_CHUNKS_H_

// Encrypted attachment chunks: the on-disk and wire format of attachments.
//
// An attachment is split into chunks of at most `chunk_plain_bytes` of
// plaintext; each chunk is sealed on its own with AES-256-GCM and stored as
// one file `<dir>/<index>.chunk` = ciphertext || 16-byte tag.
//   nonce (12 bytes) = u32be(attachment_index) || u64be(chunk index)
//   AAD   (24 bytes) = "kontor-chunk-v1" || u32be(attachment_index)
//                      || u32be(chunk index) || u8(last ? 1 : 0)
// The last flag in the AAD makes truncation detectable; the index in nonce
// and AAD makes reordering detectable; the attachment index keeps chunks of
// different attachments sealed under the same key apart.
//
// Chunking: a chunk is emitted only once it is known whether more data
// follows, so an attachment of n > 0 bytes has ceil(n / chunk_plain_bytes)
// chunks, all full but the last (which is never empty), and an empty
// attachment has exactly one empty last chunk (a 16-byte file).
//
// Does NOT provide:
//  - nonce management: nonces are derived, not random. A key MUST be used for
//    one attachment set only (e.g. a fresh random key per message); sealing
//    different plaintext under the same (key, attachment_index) reuses GCM
//    nonces and destroys confidentiality and integrity.
//  - sender authenticity: anyone with the key can make valid chunks; the
//    summary (sizes, hashes) must come from a signed envelope.
//  - protection against a concurrent writer of the same directory.

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kontor {

inline constexpr size_t kChunkPlainBytes = 1 << 20;  // 1 MiB plaintext/chunk
inline constexpr size_t kChunkTagBytes = 16;
inline constexpr size_t kChunkKeyBytes = 32;
// No valid chunk file is larger than this; readers refuse larger ones.
inline constexpr size_t kMaxChunkFileBytes = kChunkPlainBytes + kChunkTagBytes;

struct ChunkInfo {
  uint32_t index = 0;
  uint64_t size = 0;   // bytes of the chunk file (ciphertext + 16-byte tag)
  std::string sha256;  // raw 32 bytes, SHA-256 of the chunk file's bytes
  bool last = false;
};

struct AttachmentSummary {
  uint64_t plain_size = 0;
  std::string plain_sha256;       // raw 32 bytes, SHA-256 of the plaintext
  std::vector<ChunkInfo> chunks;  // in index order
};

// Path of chunk `index` in `dir`: dir + "/" + decimal index + ".chunk".
std::string ChunkPath(const std::string& dir, uint32_t index);

// Streams plaintext in and writes encrypted chunk files into `dir`. Holds at
// most one chunk of plaintext (and its ciphertext) in memory. Each chunk file
// is written to a temp file, fsynced and renamed into place, so a chunk file
// under its final name is always complete; Finish() fsyncs the directory.
// Existing chunk files of the same names are replaced.
// Not thread-safe. The key copy is wiped on destruction.
class ChunkEncryptor {
 public:
  // `key`: exactly 32 bytes, else kInvalidArgument. `attachment_index` is
  // bound into every chunk's nonce and AAD. `chunk_plain_bytes` must be in
  // [1, kChunkPlainBytes] (else kInvalidArgument). `dir` is created with mode
  // 0700 if missing; its parent must exist.
  static absl::StatusOr<std::unique_ptr<ChunkEncryptor>> Create(
      std::string dir, std::string key, uint32_t attachment_index,
      size_t chunk_plain_bytes = kChunkPlainBytes);

  ChunkEncryptor(const ChunkEncryptor&) = delete;
  ChunkEncryptor& operator=(const ChunkEncryptor&) = delete;
  ~ChunkEncryptor();

  // Appends `data` (any size); writes every chunk known not to be the last.
  // After an error the encryptor is unusable (every later call fails).
  // kFailedPrecondition after Finish().
  absl::Status Write(absl::string_view data);

  // Writes the final chunk (last=true), fsyncs the directory and returns the
  // summary. kFailedPrecondition if called twice or after a failed Write.
  absl::StatusOr<AttachmentSummary> Finish();

 private:
  ChunkEncryptor(std::string dir, std::string key, uint32_t attachment_index,
                 size_t chunk_plain_bytes);
  absl::Status EmitChunk(absl::string_view plain, bool last);

  const std::string dir_;
  std::string key_;
  const uint32_t attachment_index_;
  const size_t chunk_plain_bytes_;
  std::string pending_;  // plaintext of the chunk not yet written
  std::string sealed_;   // reused output buffer
  std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> cipher_;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> plain_hash_;
  uint64_t plain_size_ = 0;
  std::vector<ChunkInfo> chunks_;
  bool done_ = false;  // finished or failed
  absl::Status failure_;
};

// Decrypts the chunk files listed in `chunks` from `dir`, in order, and hands
// each chunk's plaintext to `sink` only after that chunk's file size, file
// SHA-256 and GCM tag verified. Reads one chunk at a time.
// Fails, in which case the sink may have received the verified plaintext of
// earlier chunks but never any byte of a failing one:
//  - kInvalidArgument: malformed list or arguments (empty list, indices not
//    0,1,2,..., last flag not on exactly the final entry, size outside
//    [16, kMaxChunkFileBytes], sha256 or key or expected sha256 of the wrong
//    length);
//  - kNotFound: a chunk file is missing;
//  - kDataLoss: a file's size or SHA-256 differs from its ChunkInfo, a tag
//    does not verify (tampering, wrong key, wrong attachment_index, reordered
//    or truncated list), or the plaintext exceeds `expected_plain_size`, or at
//    the end the total size or SHA-256 differ from the expected ones;
//  - whatever `sink` returns, unchanged; other I/O errors by errno.
absl::Status DecryptChunks(
    const std::string& dir, const std::vector<ChunkInfo>& chunks,
    absl::string_view key, uint32_t attachment_index,
    uint64_t expected_plain_size, absl::string_view expected_plain_sha256,
    const std::function<absl::Status(absl::string_view)>& sink);

// DecryptChunks into the file `out_path`: writes `out_path + ".part"` (mode
// 0600, replacing a stale one), fsyncs it and renames it to `out_path` only
// when everything verified, then fsyncs the parent directory. On any failure
// the .part file is removed and `out_path` does not exist.
// kAlreadyExists if `out_path` exists (checked before and, atomically, at the
// rename). Not safe to call concurrently for the same `out_path`.
absl::Status DecryptChunksToFile(const std::string& dir,
                                 const std::vector<ChunkInfo>& chunks,
                                 absl::string_view key,
                                 uint32_t attachment_index,
                                 uint64_t expected_plain_size,
                                 absl::string_view expected_plain_sha256,
                                 const std::string& out_path);

// Receiver-side staging of a chunk file received over the network: writes
// `bytes` to ChunkPath(dir, index) atomically (temp file in `dir`, write,
// fsync, rename over any existing file, fsync dir). Creates `dir` and missing
// parents with mode 0700. Returns the raw SHA-256 of `bytes`.
// kInvalidArgument if `bytes` is shorter than a tag or longer than
// kMaxChunkFileBytes. Verifies nothing else: DecryptChunks does.
absl::StatusOr<std::string> WriteChunkFile(const std::string& dir,
                                           uint32_t index,
                                           absl::string_view bytes);

// Reads the whole chunk file ChunkPath(dir, index). kNotFound if missing,
// kDataLoss if larger than kMaxChunkFileBytes.
absl::StatusOr<std::string> ReadChunkFile(const std::string& dir,
                                          uint32_t index);

// Raw SHA-256 of the file at `path`, read with a 64 KiB buffer.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// Removes the chunk files (*.chunk) and temp files this module leaves in
// `dir`, then `dir` itself. OK if `dir` does not exist. Fails (and leaves the
// directory) if it holds anything else.
absl::Status RemoveChunkDir(const std::string& dir);

}  // namespace kontor

#endif  // KONTOR_DAEMON_ATTACHMENT_CHUNKS_H_
