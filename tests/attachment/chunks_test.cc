#include "daemon/attachment/chunks.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/crypto/primitives.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::ReadAll;
using testing::WriteAll;

constexpr size_t kChunk = 1000;  // small chunks keep the tests fast

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

mode_t Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  ::closedir(d);
  return names;
}

// Encrypts `data`, handing it to Write() in pieces of `write_size`.
AttachmentSummary Encrypt(const std::string& dir, const std::string& key,
                          uint32_t attachment_index, const std::string& data,
                          size_t write_size) {
  auto enc = ChunkEncryptor::Create(dir, key, attachment_index, kChunk);
  EXPECT_TRUE(enc.ok()) << enc.status();
  if (!enc.ok()) return {};
  for (size_t off = 0; off < data.size(); off += write_size) {
    absl::Status s =
        (*enc)->Write(absl::string_view(data).substr(off, write_size));
    EXPECT_TRUE(s.ok()) << s;
  }
  auto summary = (*enc)->Finish();
  EXPECT_TRUE(summary.ok()) << summary.status();
  return summary.ok() ? *summary : AttachmentSummary{};
}

class ChunksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TempDir("att");
    dir_ = root_ + "/chunks";
    key_ = RandomBytes(kChunkKeyBytes);
  }

  std::string root_;
  std::string dir_;
  std::string key_;
};

// --- Round trips ------------------------------------------------------------

class RoundTripTest
    : public ChunksTest,
      public ::testing::WithParamInterface<std::tuple<size_t, size_t>> {};

TEST_P(RoundTripTest, DecryptsWhatWasEncrypted) {
  const size_t size = std::get<0>(GetParam());
  const size_t write_size = std::get<1>(GetParam());
  const std::string data = RandomBytes(size);
  const AttachmentSummary summary = Encrypt(dir_, key_, 7, data, write_size);

  EXPECT_EQ(Mode(dir_), 0700u);
  EXPECT_EQ(summary.plain_size, size);
  EXPECT_EQ(summary.plain_sha256, Sha256(data));
  const size_t n_chunks = std::max<size_t>(1, (size + kChunk - 1) / kChunk);
  ASSERT_EQ(summary.chunks.size(), n_chunks);
  std::set<std::string> expected_files;
  for (size_t i = 0; i < n_chunks; ++i) {
    const ChunkInfo& c = summary.chunks[i];
    const std::string path = ChunkPath(dir_, i);
    expected_files.insert(absl::StrCat(i, ".chunk"));
    EXPECT_EQ(c.index, i);
    EXPECT_EQ(c.last, i + 1 == n_chunks) << i;
    const size_t plain = std::min(kChunk, size - std::min(size, i * kChunk));
    EXPECT_EQ(c.size, plain + kChunkTagBytes) << i;
    EXPECT_EQ(ReadAll(path).size(), c.size);
    auto file_sha = Sha256File(path);
    ASSERT_TRUE(file_sha.ok()) << file_sha.status();
    EXPECT_EQ(c.sha256, *file_sha);
    EXPECT_EQ(c.sha256.size(), 32u);
    EXPECT_EQ(Mode(path), 0600u);
  }
  EXPECT_EQ(ListDir(dir_), expected_files);  // no temp files left behind

  std::string got;
  size_t calls = 0;
  absl::Status s =
      DecryptChunks(dir_, summary.chunks, key_, 7, size, summary.plain_sha256,
                    [&](absl::string_view p) {
                      ++calls;
                      got.append(p.data(), p.size());
                      return absl::OkStatus();
                    });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, data);
  EXPECT_EQ(calls, n_chunks);

  const std::string out = root_ + "/out.bin";
  s = DecryptChunksToFile(dir_, summary.chunks, key_, 7, size,
                          summary.plain_sha256, out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ReadAll(out), data);
  EXPECT_EQ(Mode(out), 0600u);
  EXPECT_FALSE(Exists(out + ".part"));
}

INSTANTIATE_TEST_SUITE_P(
    SizesAndWrites, RoundTripTest,
    ::testing::Combine(::testing::Values(0, 1, 999, 1000, 1001, 3500),
                       ::testing::Values(1, 7, 999, 1000, 1001, 1 << 20)),
    [](const auto& info) {
      return absl::StrCat("size", std::get<0>(info.param), "_write",
                          std::get<1>(info.param));
    });

// Pins the wire format (nonce, AAD, ciphertext || tag). The expected bytes
// were computed independently with Python's `cryptography` AESGCM from the
// format in chunks.h.
TEST_F(ChunksTest, KnownAnswer) {
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back(static_cast<char>(i));
  auto enc = ChunkEncryptor::Create(dir_, key, 0x01020304, 16);
  ASSERT_TRUE(enc.ok()) << enc.status();
  ASSERT_TRUE((*enc)->Write("Kontor attachment chunk vector!").ok());
  auto summary = (*enc)->Finish();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->chunks.size(), 2u);
  EXPECT_EQ(absl::BytesToHexString(ReadAll(ChunkPath(dir_, 0))),
            "6a3ab32978e358108f93f6d8d8add200"
            "129c7ea181f9fc5e82b8b7fec8afbd04");
  EXPECT_EQ(absl::BytesToHexString(ReadAll(ChunkPath(dir_, 1))),
            "a5d1a4566e2901e37e5c8a06b4"
            "c993b654274c90e4088e82f0f3a92ee502ff");
}

TEST_F(ChunksTest, EmptyAttachmentIsOneEmptyLastChunk) {
  const AttachmentSummary summary = Encrypt(dir_, key_, 0, "", 1);
  ASSERT_EQ(summary.chunks.size(), 1u);
  EXPECT_TRUE(summary.chunks[0].last);
  EXPECT_EQ(summary.chunks[0].size, kChunkTagBytes);
  EXPECT_EQ(ReadAll(ChunkPath(dir_, 0)).size(), kChunkTagBytes);
  EXPECT_EQ(summary.plain_sha256, Sha256(""));
}

TEST_F(ChunksTest, ChunkPathIsDirIndexDotChunk) {
  EXPECT_EQ(ChunkPath("/a/b", 0), "/a/b/0.chunk");
  EXPECT_EQ(ChunkPath("d", 4294967295u), "d/4294967295.chunk");
}

TEST_F(ChunksTest, StagedChunksDecrypt) {
  // Sender encrypts; receiver stages each chunk file and decrypts.
  const std::string data = RandomBytes(2500);
  const AttachmentSummary summary = Encrypt(dir_, key_, 1, data, 4096);
  const std::string staged = root_ + "/inbox/msg/att1";
  for (const ChunkInfo& c : summary.chunks) {
    auto bytes = ReadChunkFile(dir_, c.index);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    auto sha = WriteChunkFile(staged, c.index, *bytes);
    ASSERT_TRUE(sha.ok()) << sha.status();
    EXPECT_EQ(*sha, c.sha256);
  }
  std::string got;
  absl::Status s = DecryptChunks(staged, summary.chunks, key_, 1, data.size(),
                                 Sha256(data), [&](absl::string_view p) {
                                   got.append(p.data(), p.size());
                                   return absl::OkStatus();
                                 });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, data);
}

// --- Encryptor contract
// --------------------------------------------------------

TEST_F(ChunksTest, CreateRejectsBadKeyAndChunkSize) {
  EXPECT_EQ(
      ChunkEncryptor::Create(dir_, RandomBytes(31), 0, kChunk).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ChunkEncryptor::Create(dir_, RandomBytes(33), 0, kChunk).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkEncryptor::Create(dir_, key_, 0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkEncryptor::Create(dir_, key_, 0, kChunkPlainBytes + 1)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(dir_));
}

TEST_F(ChunksTest, CreateNeedsParentDirectory) {
  auto enc = ChunkEncryptor::Create(root_ + "/missing/chunks", key_, 0, kChunk);
  EXPECT_EQ(enc.status().code(), absl::StatusCode::kNotFound) << enc.status();
}

TEST_F(ChunksTest, WriteAndFinishAfterFinishFail) {
  auto enc = ChunkEncryptor::Create(dir_, key_, 0, kChunk);
  ASSERT_TRUE(enc.ok()) << enc.status();
  ASSERT_TRUE((*enc)->Write("abc").ok());
  ASSERT_TRUE((*enc)->Finish().ok());
  EXPECT_EQ((*enc)->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*enc)->Finish().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// --- Rejections
// ----------------------------------------------------------------

// A 3500-byte attachment in four chunks (1000, 1000, 1000, 500), and the
// means to check that a tampered variant is refused by both decrypt entry
// points with the sink seeing only the chunks before the bad one.
class RejectTest : public ChunksTest {
 protected:
  void SetUp() override {
    ChunksTest::SetUp();
    data_ = RandomBytes(3500);
    summary_ = Encrypt(dir_, key_, kIndex, data_, 777);
    ASSERT_EQ(summary_.chunks.size(), 4u);
  }

  struct Expect {
    absl::StatusCode code;
    size_t good_chunks;  // chunks whose plaintext may reach the sink
  };

  void ExpectRejected(const std::vector<ChunkInfo>& chunks, Expect e,
                      absl::string_view key = {}, uint32_t index = kIndex,
                      uint64_t size = 3500, std::string sha = {}) {
    if (key.empty()) key = key_;
    if (sha.empty()) sha = summary_.plain_sha256;
    std::string got;
    absl::Status s = DecryptChunks(dir_, chunks, key, index, size, sha,
                                   [&](absl::string_view p) {
                                     got.append(p.data(), p.size());
                                     return absl::OkStatus();
                                   });
    EXPECT_EQ(s.code(), e.code) << s;
    EXPECT_EQ(got, data_.substr(0, e.good_chunks * kChunk));

    const std::string out = absl::StrCat(root_, "/out", ++outs_);
    s = DecryptChunksToFile(dir_, chunks, key, index, size, sha, out);
    EXPECT_EQ(s.code(), e.code) << s;
    EXPECT_FALSE(Exists(out));
    EXPECT_FALSE(Exists(out + ".part"));
  }

  void FlipBit(uint32_t index, size_t byte) {
    std::string bytes = ReadAll(ChunkPath(dir_, index));
    bytes[byte] ^= 0x10;
    WriteAll(ChunkPath(dir_, index), bytes);
  }

  static constexpr uint32_t kIndex = 3;
  std::string data_;
  AttachmentSummary summary_;
  int outs_ = 0;
};

TEST_F(RejectTest, IntactAttachmentIsAccepted) {
  std::string got;
  absl::Status s =
      DecryptChunks(dir_, summary_.chunks, key_, kIndex, 3500,
                    summary_.plain_sha256, [&](absl::string_view p) {
                      got.append(p.data(), p.size());
                      return absl::OkStatus();
                    });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, data_);
}

TEST_F(RejectTest, FlippedBitWithMatchingShaFailsTag) {
  FlipBit(1, 500);
  std::vector<ChunkInfo> chunks = summary_.chunks;
  auto sha = Sha256File(ChunkPath(dir_, 1));
  ASSERT_TRUE(sha.ok());
  chunks[1].sha256 = *sha;  // so only the GCM tag can catch it
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 1});
}

TEST_F(RejectTest, FlippedTagBitWithMatchingShaFailsTag) {
  FlipBit(3, 500 + 3);  // inside the tag of the last chunk
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks[3].sha256 = *Sha256File(ChunkPath(dir_, 3));
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 3});
}

TEST_F(RejectTest, FlippedBitFailsSha) {
  FlipBit(1, 500);
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 1});
}

TEST_F(RejectTest, SwappedChunksFailTag) {
  const std::string p1 = ChunkPath(dir_, 1), p2 = ChunkPath(dir_, 2);
  const std::string tmp = dir_ + "/swap";
  ASSERT_EQ(::rename(p1.c_str(), tmp.c_str()), 0);
  ASSERT_EQ(::rename(p2.c_str(), p1.c_str()), 0);
  ASSERT_EQ(::rename(tmp.c_str(), p2.c_str()), 0);
  std::vector<ChunkInfo> chunks = summary_.chunks;
  std::swap(chunks[1].size, chunks[2].size);
  std::swap(chunks[1].sha256, chunks[2].sha256);
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 1});
}

TEST_F(RejectTest, DroppedLastChunkFailsTag) {
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks.pop_back();
  chunks.back().last = true;  // last flag is in the AAD
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 2},
                 /*key=*/{}, kIndex, /*size=*/3000,
                 /*sha=*/Sha256(data_.substr(0, 3000)));
}

TEST_F(RejectTest, DroppedLastChunkWithoutLastFlagIsMalformed) {
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks.pop_back();
  ExpectRejected(chunks, {absl::StatusCode::kInvalidArgument, 0});
}

TEST_F(RejectTest, AppendedChunkFailsTag) {
  // A genuine chunk 4 (last) of a longer attachment under the same key.
  const std::string other = root_ + "/other";
  const AttachmentSummary longer =
      Encrypt(other, key_, kIndex, RandomBytes(4500), 4500);
  ASSERT_EQ(longer.chunks.size(), 5u);
  WriteAll(ChunkPath(dir_, 4), ReadAll(ChunkPath(other, 4)));
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks.back().last = false;
  chunks.push_back(longer.chunks[4]);
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 3});
}

TEST_F(RejectTest, AppendedChunkWithTwoLastFlagsIsMalformed) {
  std::vector<ChunkInfo> chunks = summary_.chunks;
  ChunkInfo extra = chunks.back();
  extra.index = 4;
  chunks.push_back(extra);
  WriteAll(ChunkPath(dir_, 4), ReadAll(ChunkPath(dir_, 3)));
  ExpectRejected(chunks, {absl::StatusCode::kInvalidArgument, 0});
}

TEST_F(RejectTest, WrongKeyFailsTag) {
  const std::string wrong = RandomBytes(kChunkKeyBytes);
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 0}, wrong);
}

TEST_F(RejectTest, WrongAttachmentIndexFailsTag) {
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 0},
                 /*key=*/{}, kIndex + 1);
}

TEST_F(RejectTest, WrongExpectedShaFailsAtEnd) {
  std::string sha = summary_.plain_sha256;
  sha[0] ^= 1;
  // Every chunk is authentic, so all reach the sink; the file never appears.
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 4},
                 /*key=*/{}, kIndex, 3500, sha);
}

TEST_F(RejectTest, ShorterExpectedSizeStopsBeforeTheExcess) {
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 3},
                 /*key=*/{}, kIndex, /*size=*/3499);
}

TEST_F(RejectTest, LongerExpectedSizeFailsAtEnd) {
  ExpectRejected(summary_.chunks, {absl::StatusCode::kDataLoss, 4},
                 /*key=*/{}, kIndex, /*size=*/3501);
}

TEST_F(RejectTest, NonConsecutiveIndicesAreMalformed) {
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks[2].index = 3;
  chunks[3].index = 4;
  ExpectRejected(chunks, {absl::StatusCode::kInvalidArgument, 0});
  chunks = summary_.chunks;
  for (ChunkInfo& c : chunks) ++c.index;  // starting at 1
  ExpectRejected(chunks, {absl::StatusCode::kInvalidArgument, 0});
}

TEST_F(RejectTest, EmptyListIsMalformed) {
  ExpectRejected({}, {absl::StatusCode::kInvalidArgument, 0});
}

TEST_F(RejectTest, WrongSizeInInfoIsDataLoss) {
  std::vector<ChunkInfo> chunks = summary_.chunks;
  chunks[2].size -= 1;
  ExpectRejected(chunks, {absl::StatusCode::kDataLoss, 2});
}

TEST_F(RejectTest, MissingFileIsNotFound) {
  ASSERT_EQ(::unlink(ChunkPath(dir_, 2).c_str()), 0);
  ExpectRejected(summary_.chunks, {absl::StatusCode::kNotFound, 2});
}

TEST_F(RejectTest, SinkErrorIsReturned) {
  int calls = 0;
  absl::Status s = DecryptChunks(dir_, summary_.chunks, key_, kIndex, 3500,
                                 summary_.plain_sha256, [&](absl::string_view) {
                                   ++calls;
                                   return absl::UnavailableError("full");
                                 });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

TEST_F(RejectTest, ToFileRefusesExistingOutput) {
  const std::string out = root_ + "/exists";
  WriteAll(out, "keep me");
  absl::Status s = DecryptChunksToFile(dir_, summary_.chunks, key_, kIndex,
                                       3500, summary_.plain_sha256, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_EQ(ReadAll(out), "keep me");
  EXPECT_FALSE(Exists(out + ".part"));
}

TEST_F(RejectTest, ToFileReplacesStalePart) {
  const std::string out = root_ + "/fresh";
  WriteAll(out + ".part", "stale");
  absl::Status s = DecryptChunksToFile(dir_, summary_.chunks, key_, kIndex,
                                       3500, summary_.plain_sha256, out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ReadAll(out), data_);
  EXPECT_FALSE(Exists(out + ".part"));
}

// --- Staging helpers
// -------------------------------------------------------------

TEST_F(ChunksTest, WriteAndReadChunkFile) {
  const std::string dir = root_ + "/a/b/c";  // parents created too
  const std::string bytes = RandomBytes(1234);
  auto sha = WriteChunkFile(dir, 5, bytes);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, Sha256(bytes));
  EXPECT_EQ(Mode(root_ + "/a"), 0700u);
  EXPECT_EQ(Mode(dir), 0700u);
  EXPECT_EQ(Mode(ChunkPath(dir, 5)), 0600u);
  auto read = ReadChunkFile(dir, 5);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);

  // Overwrite: the new content replaces the old, no temp file remains.
  const std::string again = RandomBytes(16);
  sha = WriteChunkFile(dir, 5, again);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, Sha256(again));
  read = ReadChunkFile(dir, 5);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, again);
  EXPECT_EQ(ListDir(dir), std::set<std::string>{"5.chunk"});
}

TEST_F(ChunksTest, WriteChunkFileRejectsImpossibleSizes) {
  EXPECT_EQ(WriteChunkFile(dir_, 0, std::string(15, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteChunkFile(dir_, 0, std::string(kMaxChunkFileBytes + 1, 'x'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      WriteChunkFile(dir_, 0, std::string(kMaxChunkFileBytes, 'x')).ok());
}

TEST_F(ChunksTest, ReadChunkFileErrors) {
  EXPECT_EQ(ReadChunkFile(dir_, 0).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  WriteAll(ChunkPath(dir_, 1), std::string(kMaxChunkFileBytes + 1, 'x'));
  EXPECT_EQ(ReadChunkFile(dir_, 1).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(ChunksTest, Sha256FileStreams) {
  const std::string path = root_ + "/big";
  const std::string data = RandomBytes(200000);  // several 64 KiB reads
  WriteAll(path, data);
  auto sha = Sha256File(path);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, Sha256(data));
  WriteAll(path, std::string(65536, 'a'));  // exactly one buffer
  EXPECT_EQ(*Sha256File(path), Sha256(std::string(65536, 'a')));
  EXPECT_EQ(Sha256File(root_ + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChunksTest, RemoveChunkDir) {
  Encrypt(dir_, key_, 0, RandomBytes(2500), 2500);
  WriteAll(dir_ + "/.tmp-abcdef", "leftover");
  ASSERT_TRUE(RemoveChunkDir(dir_).ok());
  EXPECT_FALSE(Exists(dir_));
  EXPECT_TRUE(RemoveChunkDir(dir_).ok());  // missing is fine

  Encrypt(dir_, key_, 0, "x", 1);
  WriteAll(dir_ + "/foreign.txt", "not ours");
  EXPECT_FALSE(RemoveChunkDir(dir_).ok());
  EXPECT_TRUE(Exists(dir_ + "/foreign.txt"));
  EXPECT_FALSE(Exists(ChunkPath(dir_, 0)));
}

}  // namespace
}  // namespace kontor
