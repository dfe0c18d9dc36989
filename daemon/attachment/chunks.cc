#include "daemon/attachment/chunks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/crypto/ossl.h"
#include "daemon/crypto/primitives.h"

namespace kontor {
namespace {

constexpr size_t kNonceBytes = 12;
constexpr char kAadLabel[] = "kontor-chunk-v1";
constexpr size_t kAadLabelBytes = sizeof kAadLabel - 1;
constexpr size_t kAadBytes = kAadLabelBytes + 4 + 4 + 1;
constexpr size_t kSha256Bytes = 32;
constexpr char kTempPrefix[] = ".tmp-";
constexpr char kChunkSuffix[] = ".chunk";

using CipherCtx =
    std::unique_ptr<EVP_CIPHER_CTX,
                    ossl::Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;

// ---------------------------------------------------------------------------
// File helpers. Every error names the operation and the path, plus errno text.

absl::Status ErrnoError(const char* what, const std::string& path) {
  const int error = errno;  // before anything else can change it
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

// Closes on destruction; Close() reports the error of an explicit close.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  absl::Status Close(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    // Linux releases the descriptor even when close fails: never retry.
    if (fd >= 0 && ::close(fd) != 0) return ErrnoError("close", path);
    return absl::OkStatus();
  }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Reads until `n` bytes or end of file; returns the count read.
absl::StatusOr<size_t> ReadUpTo(int fd, char* buf, size_t n,
                                const std::string& path) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

absl::Status FsyncFd(int fd, const std::string& path) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return ErrnoError("fsync", path);
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open directory", dir);
  absl::Status s = FsyncFd(fd.get(), dir);
  if (!s.ok()) return s;
  return fd.Close(dir);
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Creates `dir` with mode 0700 if missing (and, with `parents`, its missing
// ancestors), fsyncing the parent of each directory created. OK if `dir`
// already is a directory.
absl::Status MakeDir(const std::string& dir, bool parents) {
  if (dir.empty()) return absl::InvalidArgumentError("empty directory path");
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("not a directory: ", dir));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT) return ErrnoError("stat", dir);
  if (parents) {
    const std::string parent = ParentDir(dir);
    if (parent != dir) {
      absl::Status s = MakeDir(parent, /*parents=*/true);
      if (!s.ok()) return s;
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoError("mkdir", dir);
    return MakeDir(dir, /*parents=*/false);  // lost a race: check the type
  }
  return FsyncDir(ParentDir(dir));
}

// Writes `bytes` to `final_path` (inside `dir`) through a temp file in `dir`:
// write, fsync, rename. With `sync_dir`, fsyncs `dir` after the rename.
absl::Status WriteFileAtomic(const std::string& dir,
                             const std::string& final_path,
                             absl::string_view bytes, bool sync_dir) {
  std::string tmp = absl::StrCat(dir, "/", kTempPrefix, "XXXXXX");
  // mkostemp: O_CREAT|O_EXCL, mode 0600.
  ScopedFd fd(::mkostemp(&tmp[0], O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("create temp file in", dir);
  absl::Status s = WriteAll(fd.get(), bytes, tmp);
  if (s.ok()) s = FsyncFd(fd.get(), tmp);
  if (s.ok()) s = fd.Close(tmp);
  if (s.ok() && ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    s = ErrnoError("rename to", final_path);
  }
  if (!s.ok()) {
    fd.Close(tmp).IgnoreError();
    ::unlink(tmp.c_str());
    return s;
  }
  return sync_dir ? FsyncDir(dir) : absl::OkStatus();
}

// Reads the file at `path` into `out`, which must be exactly `size` bytes.
// kNotFound if missing, kDataLoss if of another size.
absl::Status ReadExactFile(const std::string& path, uint64_t size,
                           std::string* out) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::DataLossError(absl::StrCat("not a regular file: ", path));
  }
  if (static_cast<uint64_t>(st.st_size) != size) {
    return absl::DataLossError(absl::StrCat(
        "chunk file ", path, " has ", st.st_size, " bytes, expected ", size));
  }
  out->resize(size);
  absl::StatusOr<size_t> got = ReadUpTo(fd.get(), &(*out)[0], size, path);
  if (!got.ok()) return got.status();
  if (*got != size) {
    return absl::DataLossError(
        absl::StrCat("chunk file ", path, " shrank while being read"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// AES-256-GCM sealing of one chunk.

void PutU32(uint32_t v, unsigned char* p) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v);
}

void PutU64(uint64_t v, unsigned char* p) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v);
}

struct ChunkParams {
  unsigned char nonce[kNonceBytes];
  unsigned char aad[kAadBytes];
};

ChunkParams MakeParams(uint32_t attachment_index, uint32_t index, bool last) {
  ChunkParams p;
  PutU32(attachment_index, p.nonce);
  PutU64(index, p.nonce + 4);
  std::copy(kAadLabel, kAadLabel + kAadLabelBytes, p.aad);
  PutU32(attachment_index, p.aad + kAadLabelBytes);
  PutU32(index, p.aad + kAadLabelBytes + 4);
  p.aad[kAadLabelBytes + 8] = last ? 0x01 : 0x00;
  return p;
}

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Initializes `ctx` for one chunk: cipher, key, 12-byte nonce, AAD.
bool InitChunk(EVP_CIPHER_CTX* ctx, bool encrypt, absl::string_view key,
               const ChunkParams& p) {
  const int enc = encrypt ? 1 : 0;
  int len = 0;
  return EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr,
                           enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes,
                             nullptr) == 1 &&
         EVP_CipherInit_ex(ctx, nullptr, nullptr, U8(key), p.nonce, enc) == 1 &&
         EVP_CipherUpdate(ctx, nullptr, &len, p.aad, kAadBytes) == 1;
}

// out = ciphertext || tag.
absl::Status Seal(EVP_CIPHER_CTX* ctx, absl::string_view key,
                  uint32_t attachment_index, uint32_t index, bool last,
                  absl::string_view plain, std::string* out) {
  const ChunkParams p = MakeParams(attachment_index, index, last);
  out->resize(plain.size() + kChunkTagBytes);
  unsigned char* o = reinterpret_cast<unsigned char*>(&(*out)[0]);
  int len = 0, fin = 0;
  if (!InitChunk(ctx, /*encrypt=*/true, key, p) ||
      (!plain.empty() &&
       EVP_EncryptUpdate(ctx, o, &len, U8(plain),
                         static_cast<int>(plain.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, o + len, &fin) != 1 ||
      static_cast<size_t>(len + fin) != plain.size() ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kChunkTagBytes,
                          o + plain.size()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "AES-GCM seal");
  }
  return absl::OkStatus();
}

// Decrypts `sealed` (ciphertext || tag) into `out`; kDataLoss if the tag does
// not verify, in which case `out` is wiped.
absl::Status Open(EVP_CIPHER_CTX* ctx, absl::string_view key,
                  uint32_t attachment_index, uint32_t index, bool last,
                  absl::string_view sealed, const std::string& path,
                  std::string* out) {
  const ChunkParams p = MakeParams(attachment_index, index, last);
  const size_t n = sealed.size() - kChunkTagBytes;
  out->resize(n);
  unsigned char* o = reinterpret_cast<unsigned char*>(&(*out)[0]);
  // EVP wants a mutable tag pointer; copy rather than cast constness away.
  unsigned char tag[kChunkTagBytes];
  std::copy(sealed.end() - kChunkTagBytes, sealed.end(), tag);
  int len = 0, fin = 0;
  if (!InitChunk(ctx, /*encrypt=*/false, key, p) ||
      (n > 0 &&
       EVP_DecryptUpdate(ctx, o, &len, U8(sealed), static_cast<int>(n)) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kChunkTagBytes, tag) !=
          1) {
    OPENSSL_cleanse(o, n);
    return ossl::Error(absl::StatusCode::kInternal, "AES-GCM open");
  }
  if (EVP_DecryptFinal_ex(ctx, o + len, &fin) != 1) {
    ossl::ErrorString();  // clear the queue: the reason is always the same
    OPENSSL_cleanse(o, n);
    return absl::DataLossError(
        absl::StrCat("chunk ", index, " (", path,
                     ") failed authentication: tampered, "
                     "reordered, truncated, or wrong key or attachment index"));
  }
  return absl::OkStatus();
}

absl::Status ValidateChunkList(const std::vector<ChunkInfo>& chunks) {
  if (chunks.empty()) {
    return absl::InvalidArgumentError("chunk list is empty");
  }
  if (chunks.size() - 1 > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("too many chunks");
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ChunkInfo& c = chunks[i];
    if (c.index != i) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk list entry ", i, " has index ", c.index, ", expected ", i));
    }
    if (c.last != (i + 1 == chunks.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk ", i,
                       c.last ? " is marked last but is not the final entry"
                              : " is the final entry but not marked last"));
    }
    if (c.size < kChunkTagBytes || c.size > kMaxChunkFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk ", i, " has impossible size ", c.size));
    }
    if (c.sha256.size() != kSha256Bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk ", i, " sha256 is not 32 bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ChunkPath(const std::string& dir, uint32_t index) {
  return absl::StrCat(dir, "/", index, kChunkSuffix);
}

// ---------------------------------------------------------------------------
// ChunkEncryptor

absl::StatusOr<std::unique_ptr<ChunkEncryptor>> ChunkEncryptor::Create(
    std::string dir, std::string key, uint32_t attachment_index,
    size_t chunk_plain_bytes) {
  if (key.size() != kChunkKeyBytes) {
    OPENSSL_cleanse(&key[0], key.size());
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk key must be ", kChunkKeyBytes, " bytes, not ", key.size()));
  }
  if (chunk_plain_bytes == 0 || chunk_plain_bytes > kChunkPlainBytes) {
    OPENSSL_cleanse(&key[0], key.size());
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_plain_bytes must be in [1, ", kChunkPlainBytes,
                     "], not ", chunk_plain_bytes));
  }
  // From here on the destructor wipes the key.
  std::unique_ptr<ChunkEncryptor> e(new ChunkEncryptor(
      std::move(dir), std::move(key), attachment_index, chunk_plain_bytes));
  if (!e->cipher_ || !e->plain_hash_ ||
      EVP_DigestInit_ex(e->plain_hash_.get(), EVP_sha256(), nullptr) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "chunk encryptor init");
  }
  absl::Status s = MakeDir(e->dir_, /*parents=*/false);
  if (!s.ok()) return s;
  return e;
}

ChunkEncryptor::ChunkEncryptor(std::string dir, std::string key,
                               uint32_t attachment_index,
                               size_t chunk_plain_bytes)
    : dir_(std::move(dir)),
      key_(std::move(key)),
      attachment_index_(attachment_index),
      chunk_plain_bytes_(chunk_plain_bytes),
      cipher_(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free),
      plain_hash_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  pending_.reserve(chunk_plain_bytes_);
}

ChunkEncryptor::~ChunkEncryptor() {
  OPENSSL_cleanse(&key_[0], key_.size());
  OPENSSL_cleanse(&pending_[0], pending_.size());
}

absl::Status ChunkEncryptor::EmitChunk(absl::string_view plain, bool last) {
  if (chunks_.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::OutOfRangeError("attachment has too many chunks");
  }
  const uint32_t index = static_cast<uint32_t>(chunks_.size());
  absl::Status s = Seal(cipher_.get(), key_, attachment_index_, index, last,
                        plain, &sealed_);
  if (!s.ok()) return s;
  s = WriteFileAtomic(dir_, ChunkPath(dir_, index), sealed_,
                      /*sync_dir=*/false);
  if (!s.ok()) return s;
  if (!plain.empty() &&
      EVP_DigestUpdate(plain_hash_.get(), plain.data(), plain.size()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "SHA-256 update");
  }
  plain_size_ += plain.size();
  ChunkInfo info;
  info.index = index;
  info.size = sealed_.size();
  info.sha256 = Sha256(sealed_);
  info.last = last;
  chunks_.push_back(std::move(info));
  return absl::OkStatus();
}

absl::Status ChunkEncryptor::Write(absl::string_view data) {
  if (done_) {
    return absl::FailedPreconditionError(
        failure_.ok()
            ? "Write after Finish"
            : absl::StrCat("Write after failure: ", failure_.message()));
  }
  absl::Status s;
  while (s.ok() && !data.empty()) {
    if (pending_.size() == chunk_plain_bytes_) {
      // More data follows, so the pending chunk is not the last.
      s = EmitChunk(pending_, /*last=*/false);
      pending_.clear();
    } else if (pending_.empty() && data.size() > chunk_plain_bytes_) {
      // Whole chunk straight from the caller's buffer, skipping the copy.
      s = EmitChunk(data.substr(0, chunk_plain_bytes_), /*last=*/false);
      data.remove_prefix(chunk_plain_bytes_);
    } else {
      const size_t take =
          std::min(data.size(), chunk_plain_bytes_ - pending_.size());
      pending_.append(data.data(), take);
      data.remove_prefix(take);
    }
  }
  if (!s.ok()) {
    done_ = true;
    failure_ = s;
  }
  return s;
}

absl::StatusOr<AttachmentSummary> ChunkEncryptor::Finish() {
  if (done_) {
    return absl::FailedPreconditionError(
        failure_.ok()
            ? "Finish called twice"
            : absl::StrCat("Finish after failure: ", failure_.message()));
  }
  done_ = true;
  absl::Status s = EmitChunk(pending_, /*last=*/true);
  OPENSSL_cleanse(&pending_[0], pending_.size());
  pending_.clear();
  if (s.ok()) s = FsyncDir(dir_);
  AttachmentSummary summary;
  if (s.ok()) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(plain_hash_.get(), digest, &len) != 1) {
      s = ossl::Error(absl::StatusCode::kInternal, "SHA-256 final");
    } else {
      summary.plain_sha256.assign(reinterpret_cast<char*>(digest), len);
    }
  }
  if (!s.ok()) {
    failure_ = s;
    return s;
  }
  summary.plain_size = plain_size_;
  summary.chunks = std::move(chunks_);
  chunks_.clear();
  return summary;
}

// ---------------------------------------------------------------------------
// Decryption

absl::Status DecryptChunks(
    const std::string& dir, const std::vector<ChunkInfo>& chunks,
    absl::string_view key, uint32_t attachment_index,
    uint64_t expected_plain_size, absl::string_view expected_plain_sha256,
    const std::function<absl::Status(absl::string_view)>& sink) {
  if (key.size() != kChunkKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk key must be ", kChunkKeyBytes, " bytes, not ", key.size()));
  }
  if (expected_plain_sha256.size() != kSha256Bytes) {
    return absl::InvalidArgumentError("expected plaintext sha256 not 32 bytes");
  }
  absl::Status s = ValidateChunkList(chunks);
  if (!s.ok()) return s;

  CipherCtx cipher(EVP_CIPHER_CTX_new());
  ossl::MdCtx plain_hash(EVP_MD_CTX_new());
  if (!cipher || !plain_hash ||
      EVP_DigestInit_ex(plain_hash.get(), EVP_sha256(), nullptr) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "chunk decryption init");
  }
  std::string sealed, plain;
  uint64_t plain_size = 0;
  for (const ChunkInfo& c : chunks) {
    const std::string path = ChunkPath(dir, c.index);
    s = ReadExactFile(path, c.size, &sealed);
    if (!s.ok()) return s;
    if (!ConstantTimeEquals(Sha256(sealed), c.sha256)) {
      return absl::DataLossError(
          absl::StrCat("chunk file ", path, " does not match its SHA-256"));
    }
    s = Open(cipher.get(), key, attachment_index, c.index, c.last, sealed, path,
             &plain);
    if (!s.ok()) return s;
    if (plain.size() > expected_plain_size - plain_size) {
      OPENSSL_cleanse(&plain[0], plain.size());
      return absl::DataLossError(
          absl::StrCat("attachment has more than the expected ",
                       expected_plain_size, " bytes of plaintext"));
    }
    plain_size += plain.size();
    if (!plain.empty() &&
        EVP_DigestUpdate(plain_hash.get(), plain.data(), plain.size()) != 1) {
      return ossl::Error(absl::StatusCode::kInternal, "SHA-256 update");
    }
    s = sink(plain);
    if (!s.ok()) return s;
  }
  OPENSSL_cleanse(&plain[0], plain.size());
  if (plain_size != expected_plain_size) {
    return absl::DataLossError(absl::StrCat("attachment has ", plain_size,
                                            " bytes of plaintext, expected ",
                                            expected_plain_size));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(plain_hash.get(), digest, &len) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "SHA-256 final");
  }
  if (!ConstantTimeEquals(
          absl::string_view(reinterpret_cast<char*>(digest), len),
          expected_plain_sha256)) {
    return absl::DataLossError("attachment plaintext SHA-256 mismatch");
  }
  return absl::OkStatus();
}

absl::Status DecryptChunksToFile(const std::string& dir,
                                 const std::vector<ChunkInfo>& chunks,
                                 absl::string_view key,
                                 uint32_t attachment_index,
                                 uint64_t expected_plain_size,
                                 absl::string_view expected_plain_sha256,
                                 const std::string& out_path) {
  struct stat st;
  if (::lstat(out_path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("exists: ", out_path));
  }
  if (errno != ENOENT) return ErrnoError("lstat", out_path);

  const std::string part = out_path + ".part";
  if (::unlink(part.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("remove stale", part);
  }
  ScopedFd fd(::open(part.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     0600));
  if (!fd.valid()) return ErrnoError("create", part);

  absl::Status s = DecryptChunks(
      dir, chunks, key, attachment_index, expected_plain_size,
      expected_plain_sha256,
      [&](absl::string_view plain) { return WriteAll(fd.get(), plain, part); });
  if (s.ok()) s = FsyncFd(fd.get(), part);
  if (s.ok()) s = fd.Close(part);
  bool renamed = false;
  if (s.ok()) {
    // Atomic no-replace rename: out_path may have appeared meanwhile.
    if (::renameat2(AT_FDCWD, part.c_str(), AT_FDCWD, out_path.c_str(),
                    RENAME_NOREPLACE) == 0) {
      renamed = true;
    } else if (errno == EINVAL || errno == ENOSYS) {
      // File system without RENAME_NOREPLACE: link() also fails on EEXIST.
      if (::link(part.c_str(), out_path.c_str()) == 0) {
        renamed = true;
        ::unlink(part.c_str());
      } else {
        s = ErrnoError("link to", out_path);
      }
    } else {
      s = ErrnoError("rename to", out_path);
    }
  }
  if (s.ok()) s = FsyncDir(ParentDir(out_path));
  if (!s.ok()) {
    fd.Close(part).IgnoreError();
    ::unlink(part.c_str());
    if (renamed) ::unlink(out_path.c_str());
  }
  return s;
}

// ---------------------------------------------------------------------------
// Staging and housekeeping

absl::StatusOr<std::string> WriteChunkFile(const std::string& dir,
                                           uint32_t index,
                                           absl::string_view bytes) {
  if (bytes.size() < kChunkTagBytes || bytes.size() > kMaxChunkFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk file of ", bytes.size(), " bytes is impossible (must be in [",
        kChunkTagBytes, ", ", kMaxChunkFileBytes, "])"));
  }
  absl::Status s = MakeDir(dir, /*parents=*/true);
  if (!s.ok()) return s;
  s = WriteFileAtomic(dir, ChunkPath(dir, index), bytes, /*sync_dir=*/true);
  if (!s.ok()) return s;
  return Sha256(bytes);
}

absl::StatusOr<std::string> ReadChunkFile(const std::string& dir,
                                          uint32_t index) {
  const std::string path = ChunkPath(dir, index);
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::DataLossError(absl::StrCat("not a regular file: ", path));
  }
  // One byte more than allowed, to notice a file that grew past the limit.
  std::string out(kMaxChunkFileBytes + 1, '\0');
  absl::StatusOr<size_t> got = ReadUpTo(fd.get(), &out[0], out.size(), path);
  if (!got.ok()) return got.status();
  if (*got > kMaxChunkFileBytes) {
    return absl::DataLossError(
        absl::StrCat("chunk file ", path, " is larger than any chunk"));
  }
  out.resize(*got);
  return out;
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open", path);
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "SHA-256 init");
  }
  std::string buf(64 * 1024, '\0');
  for (;;) {
    absl::StatusOr<size_t> got = ReadUpTo(fd.get(), &buf[0], buf.size(), path);
    if (!got.ok()) return got.status();
    if (*got > 0 && EVP_DigestUpdate(ctx.get(), buf.data(), *got) != 1) {
      return ossl::Error(absl::StatusCode::kInternal, "SHA-256 update");
    }
    if (*got < buf.size()) break;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "SHA-256 final");
  }
  return std::string(reinterpret_cast<char*>(digest), len);
}

absl::Status RemoveChunkDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("opendir", dir);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  absl::Status s;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) s = ErrnoError("readdir", dir);
      break;
    }
    const absl::string_view name = e->d_name;
    if (!absl::EndsWith(name, kChunkSuffix) &&
        !absl::StartsWith(name, kTempPrefix)) {
      continue;  // ".", ".." and foreign files: rmdir below reports the latter
    }
    const std::string path = absl::StrCat(dir, "/", name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && s.ok()) {
      s = ErrnoError("unlink", path);
    }
  }
  closer.reset();
  if (!s.ok()) return s;
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("rmdir", dir);
  }
  return absl::OkStatus();
}

}  // namespace kontor
