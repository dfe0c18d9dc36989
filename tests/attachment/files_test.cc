#include "daemon/attachment/files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/attachment/chunks.h"
#include "daemon/crypto/primitives.h"
#include "gtest/gtest.h"
#include "kontor/v1/envelope.pb.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using Refs = google::protobuf::RepeatedPtrField<v1::AttachmentChunkRef>;
using testing::ReadAll;
using testing::WriteAll;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
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

// A well-formed chunk ref; the sha256 is arbitrary but 32 bytes.
v1::AttachmentChunkRef Ref(uint32_t attachment, uint32_t index, bool last,
                           uint64_t size = 100) {
  v1::AttachmentChunkRef r;
  r.set_attachment(attachment);
  r.set_index(index);
  r.set_size(size);
  r.set_sha256(std::string(32, static_cast<char>('a' + index % 26)));
  r.set_last(last);
  return r;
}

Refs MakeRefs(const std::vector<v1::AttachmentChunkRef>& v) {
  Refs refs;
  for (const auto& r : v) *refs.Add() = r;
  return refs;
}

constexpr uint64_t kNoLimit = UINT64_MAX;

// --- AttachmentDirs ---------------------------------------------------------

TEST(AttachmentDirsTest, Layout) {
  const AttachmentDirs dirs("/data");
  EXPECT_EQ(dirs.root(), "/data/attachments");
  EXPECT_EQ(dirs.Upload("u1"), "/data/attachments/out/u1");
  EXPECT_EQ(dirs.IncomingMessage("ee", "m1"), "/data/attachments/in/ee/m1");
  EXPECT_EQ(dirs.Incoming("ee", "m1", 3), "/data/attachments/in/ee/m1/3");
}

// --- ChunkLists -------------------------------------------------------------

TEST(ChunkListsTest, EmptyIsNoAttachments) {
  auto lists = ChunkLists(Refs(), kNoLimit);
  ASSERT_TRUE(lists.ok()) << lists.status();
  EXPECT_TRUE(lists->empty());
}

TEST(ChunkListsTest, GoodMultiAttachmentList) {
  const Refs refs = MakeRefs({
      Ref(0, 0, false, kMaxChunkFileBytes),
      Ref(0, 1, false, kMaxChunkFileBytes),
      Ref(0, 2, true, 17),
      Ref(1, 0, true, kChunkTagBytes),  // an empty attachment
      Ref(2, 0, false, 1000),
      Ref(2, 1, true, 500),
  });
  auto lists = ChunkLists(refs, kNoLimit);
  ASSERT_TRUE(lists.ok()) << lists.status();
  ASSERT_EQ(lists->size(), 3u);
  ASSERT_EQ((*lists)[0].size(), 3u);
  ASSERT_EQ((*lists)[1].size(), 1u);
  ASSERT_EQ((*lists)[2].size(), 2u);
  int i = 0;
  for (uint32_t a = 0; a < lists->size(); ++a) {
    for (uint32_t c = 0; c < (*lists)[a].size(); ++c, ++i) {
      const ChunkInfo& info = (*lists)[a][c];
      const v1::AttachmentChunkRef& r = refs.Get(i);
      EXPECT_EQ(info.index, c);
      EXPECT_EQ(info.size, r.size());
      EXPECT_EQ(info.sha256, r.sha256());
      EXPECT_EQ(info.last, c + 1 == (*lists)[a].size());
    }
  }
}

TEST(ChunkListsTest, AttachmentNumbersOutOfOrderOrWithGaps) {
  const std::vector<std::vector<v1::AttachmentChunkRef>> bad = {
      {Ref(1, 0, true)},                   // does not start at 0
      {Ref(0, 0, true), Ref(2, 0, true)},  // gap
      {Ref(1, 0, true), Ref(0, 0, true)},  // reversed
      {Ref(0, 0, true), Ref(1, 0, true), Ref(0, 1, true)},   // back to 0
      {Ref(0, 0, false), Ref(1, 0, true), Ref(0, 1, true)},  // interleaved
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    auto lists = ChunkLists(MakeRefs(bad[i]), kNoLimit);
    EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument)
        << "case " << i << ": " << lists.status();
  }
}

TEST(ChunkListsTest, ChunkIndexGap) {
  for (const auto& v : std::vector<std::vector<v1::AttachmentChunkRef>>{
           {Ref(0, 1, true)},                                     // not from 0
           {Ref(0, 0, false), Ref(0, 2, true)},                   // gap
           {Ref(0, 0, false), Ref(0, 0, true)},                   // repeated
           {Ref(0, 0, false), Ref(0, 1, false), Ref(0, 0, true)}  // backwards
       }) {
    auto lists = ChunkLists(MakeRefs(v), kNoLimit);
    EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument)
        << lists.status();
  }
}

TEST(ChunkListsTest, ChunkAfterTheLastOne) {
  auto lists =
      ChunkLists(MakeRefs({Ref(0, 0, true), Ref(0, 1, true)}), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
  lists = ChunkLists(MakeRefs({Ref(0, 0, false), Ref(0, 1, true),
                               Ref(0, 2, false), Ref(0, 3, true)}),
                     kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChunkListsTest, NoLastChunk) {
  auto lists =
      ChunkLists(MakeRefs({Ref(0, 0, false), Ref(0, 1, false)}), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
  // The first attachment is fine, the final one has no last chunk.
  lists = ChunkLists(MakeRefs({Ref(0, 0, true), Ref(1, 0, false)}), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
  // An earlier attachment without a last chunk, then the next one starts.
  lists = ChunkLists(MakeRefs({Ref(0, 0, false), Ref(1, 0, true)}), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChunkListsTest, ChunkSizeBounds) {
  for (uint64_t size :
       {uint64_t{0}, uint64_t{1}, uint64_t{kChunkTagBytes - 1},
        uint64_t{kMaxChunkFileBytes + 1}, uint64_t{1} << 40, UINT64_MAX}) {
    auto lists = ChunkLists(MakeRefs({Ref(0, 0, true, size)}), kNoLimit);
    EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument)
        << size;
  }
  for (uint64_t size :
       {uint64_t{kChunkTagBytes}, uint64_t{kMaxChunkFileBytes}}) {
    auto lists = ChunkLists(MakeRefs({Ref(0, 0, true, size)}), kNoLimit);
    EXPECT_TRUE(lists.ok()) << size << ": " << lists.status();
  }
}

TEST(ChunkListsTest, Sha256MustBe32Bytes) {
  for (size_t n : {0, 1, 31, 33, 64}) {
    v1::AttachmentChunkRef r = Ref(0, 0, true);
    r.set_sha256(std::string(n, 'x'));
    auto lists = ChunkLists(MakeRefs({r}), kNoLimit);
    EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(ChunkListsTest, TooManyAttachments) {
  std::vector<v1::AttachmentChunkRef> v;
  for (uint32_t a = 0; a < kMaxAttachments; ++a) v.push_back(Ref(a, 0, true));
  auto lists = ChunkLists(MakeRefs(v), kNoLimit);
  ASSERT_TRUE(lists.ok()) << lists.status();
  EXPECT_EQ(lists->size(), kMaxAttachments);

  v.push_back(Ref(kMaxAttachments, 0, true));
  lists = ChunkLists(MakeRefs(v), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);

  // A huge attachment number alone is refused as well.
  lists = ChunkLists(MakeRefs({Ref(UINT32_MAX, 0, true)}), kNoLimit);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChunkListsTest, TotalOverTheLimitIsResourceExhausted) {
  const Refs refs = MakeRefs(
      {Ref(0, 0, false, 1000), Ref(0, 1, true, 500), Ref(1, 0, true, 500)});
  // The limit counts plaintext: 2000 bytes of chunks less a 16-byte tag each.
  auto lists = ChunkLists(refs, 2000 - 3 * kChunkTagBytes);
  ASSERT_TRUE(lists.ok()) << lists.status();  // exactly at the limit
  lists = ChunkLists(refs, 2000 - 3 * kChunkTagBytes - 1);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kResourceExhausted)
      << lists.status();
  lists = ChunkLists(refs, 0);
  EXPECT_EQ(lists.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChunkListsTest, AddChunkRefsRoundTrip) {
  std::vector<std::vector<ChunkInfo>> in = {
      {ChunkInfo{0, kMaxChunkFileBytes, std::string(32, '1'), false},
       ChunkInfo{1, 40, std::string(32, '2'), true}},
      {ChunkInfo{0, kChunkTagBytes, std::string(32, '3'), true}},
      {ChunkInfo{0, 1000, std::string(32, '4'), false},
       ChunkInfo{1, 1000, std::string(32, '5'), false},
       ChunkInfo{2, 17, std::string(32, '6'), true}},
  };
  v1::Envelope env;
  for (uint32_t a = 0; a < in.size(); ++a) AddChunkRefs(a, in[a], &env);
  ASSERT_EQ(env.chunks_size(), 6);
  EXPECT_EQ(env.chunks(2).attachment(), 1u);
  EXPECT_EQ(env.chunks(2).index(), 0u);

  // Through the wire form too.
  v1::Envelope parsed;
  ASSERT_TRUE(parsed.ParseFromString(env.SerializeAsString()));
  auto lists = ChunkLists(parsed.chunks(), kNoLimit);
  ASSERT_TRUE(lists.ok()) << lists.status();
  ASSERT_EQ(lists->size(), in.size());
  for (size_t a = 0; a < in.size(); ++a) {
    ASSERT_EQ((*lists)[a].size(), in[a].size()) << a;
    for (size_t c = 0; c < in[a].size(); ++c) {
      EXPECT_EQ((*lists)[a][c].index, in[a][c].index);
      EXPECT_EQ((*lists)[a][c].size, in[a][c].size);
      EXPECT_EQ((*lists)[a][c].sha256, in[a][c].sha256);
      EXPECT_EQ((*lists)[a][c].last, in[a][c].last);
    }
  }
}

// --- MissingChunks / PresentChunks -----------------------------------------

class IncomingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = testing::TempDir("files");
    dirs_ = std::make_unique<AttachmentDirs>(data_dir_);
  }

  // Stores chunk `index` of attachment `a` of (kOrigin, kMessage) with
  // `bytes` and returns its ChunkInfo.
  ChunkInfo Put(uint32_t a, uint32_t index, const std::string& bytes,
                bool last) {
    auto sha = WriteChunkFile(Dir(a), index, bytes);
    EXPECT_TRUE(sha.ok()) << sha.status();
    return ChunkInfo{index, bytes.size(), sha.ok() ? *sha : "", last};
  }

  std::string Dir(uint32_t a) const {
    return dirs_->Incoming(kOrigin, kMessage, a);
  }

  static constexpr char kOrigin[] = "ee";
  static constexpr char kMessage[] = "m-0001";
  std::string data_dir_;
  std::unique_ptr<AttachmentDirs> dirs_;
};

TEST_F(IncomingTest, NothingThereCountsAllMissing) {
  const std::vector<std::vector<ChunkInfo>> lists = {
      {ChunkInfo{0, 100, std::string(32, 'a'), false},
       ChunkInfo{1, 50, std::string(32, 'b'), true}},
      {ChunkInfo{0, 16, std::string(32, 'c'), true}},
  };
  auto missing = MissingChunks(*dirs_, kOrigin, kMessage, lists);
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 3u);
  EXPECT_TRUE(PresentChunks(*dirs_, kOrigin, kMessage).empty());
}

TEST_F(IncomingTest, CountsMissingAndKeepsCorrectFiles) {
  const ChunkInfo a0 = Put(0, 0, RandomBytes(100), false);
  const ChunkInfo a1 = Put(0, 1, RandomBytes(50), false);
  ChunkInfo a2{2, 70, Sha256(RandomBytes(70)), true};  // not there
  const ChunkInfo b0 = Put(1, 0, RandomBytes(16), true);
  const std::string a0_bytes = ReadAll(ChunkPath(Dir(0), 0));

  auto missing = MissingChunks(*dirs_, kOrigin, kMessage, {{a0, a1, a2}, {b0}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 1u);
  EXPECT_EQ(ReadAll(ChunkPath(Dir(0), 0)), a0_bytes);
  EXPECT_TRUE(Exists(ChunkPath(Dir(0), 1)));
  EXPECT_TRUE(Exists(ChunkPath(Dir(1), 0)));

  a2 = Put(0, 2, RandomBytes(70), true);
  missing = MissingChunks(*dirs_, kOrigin, kMessage, {{a0, a1, a2}, {b0}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 0u);
  EXPECT_EQ(ListDir(Dir(0)),
            (std::set<std::string>{"0.chunk", "1.chunk", "2.chunk"}));
}

TEST_F(IncomingTest, WrongFilesAreRemovedAndCountAsMissing) {
  const std::string good0 = RandomBytes(100);
  const std::string good1 = RandomBytes(100);
  const std::string good2 = RandomBytes(100);
  const ChunkInfo c0{0, good0.size(), Sha256(good0), false};
  const ChunkInfo c1{1, good1.size(), Sha256(good1), false};
  const ChunkInfo c2{2, good2.size(), Sha256(good2), true};
  // 0: same size, other bytes (a peer's garbage); 1: wrong size; 2: good.
  std::string garbage = good0;
  garbage[10] ^= 1;
  Put(0, 0, garbage, false);
  Put(0, 1, good1 + "x", false);
  Put(0, 2, good2, true);

  auto missing = MissingChunks(*dirs_, kOrigin, kMessage, {{c0, c1, c2}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 2u);
  EXPECT_FALSE(Exists(ChunkPath(Dir(0), 0)));
  EXPECT_FALSE(Exists(ChunkPath(Dir(0), 1)));
  EXPECT_EQ(ReadAll(ChunkPath(Dir(0), 2)), good2);
  // The sender's next ChunkStatus shows them missing.
  EXPECT_EQ(PresentChunks(*dirs_, kOrigin, kMessage),
            (std::vector<std::pair<uint32_t, uint32_t>>{{0, 2}}));

  // Still missing (now absent) on the next look; once resent, whole.
  missing = MissingChunks(*dirs_, kOrigin, kMessage, {{c0, c1, c2}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 2u);
  Put(0, 0, good0, false);
  Put(0, 1, good1, false);
  missing = MissingChunks(*dirs_, kOrigin, kMessage, {{c0, c1, c2}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 0u);
}

TEST_F(IncomingTest, OtherMessagesDoNotCount) {
  const std::string bytes = RandomBytes(40);
  ASSERT_TRUE(
      WriteChunkFile(dirs_->Incoming("lv", kMessage, 0), 0, bytes).ok());
  ASSERT_TRUE(
      WriteChunkFile(dirs_->Incoming(kOrigin, "m-0002", 0), 0, bytes).ok());
  const ChunkInfo c{0, bytes.size(), Sha256(bytes), true};
  auto missing = MissingChunks(*dirs_, kOrigin, kMessage, {{c}});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(*missing, 1u);
  EXPECT_TRUE(PresentChunks(*dirs_, kOrigin, kMessage).empty());
}

TEST_F(IncomingTest, PresentChunksListsChunkFilesOnly) {
  Put(1, 3, RandomBytes(20), false);
  Put(0, 0, RandomBytes(20), false);
  Put(0, 10, RandomBytes(20), false);
  Put(0, 2, RandomBytes(20), true);
  Put(12, 0, RandomBytes(20), true);
  // Not chunk files: temp files, other names, directories of other names.
  for (const char* name : {".tmp-abcdef", "5.chunk.part", "x.chunk", ".chunk",
                           "-1.chunk", "1.chunkx", "1.CHUNK", "7", "notes.txt",
                           "4.chunk.chunk", "1234567890.chunk"}) {
    WriteAll(absl::StrCat(Dir(0), "/", name), "junk");
  }
  const std::string msg = dirs_->IncomingMessage(kOrigin, kMessage);
  ASSERT_TRUE(MakeDirs(msg + "/abc").ok());
  WriteAll(msg + "/abc/0.chunk", "junk");
  ASSERT_TRUE(MakeDirs(msg + "/-1").ok());
  WriteAll(msg + "/-1/0.chunk", "junk");
  WriteAll(msg + "/.tmp-xyz", "junk");

  EXPECT_EQ(PresentChunks(*dirs_, kOrigin, kMessage),
            (std::vector<std::pair<uint32_t, uint32_t>>{
                {0, 0}, {0, 2}, {0, 10}, {1, 3}, {12, 0}}));
}

// --- SafeFileName -----------------------------------------------------------

TEST(SafeFileNameTest, KeepsOrdinaryNames) {
  EXPECT_EQ(SafeFileName("report.pdf", 1), "report.pdf");
  EXPECT_EQ(SafeFileName("Jahresbericht 2026 (final).docx", 1),
            "Jahresbericht 2026 (final).docx");
  EXPECT_EQ(SafeFileName("t\xc3\xa4ht.txt", 1), "t\xc3\xa4ht.txt");  // UTF-8
  EXPECT_EQ(SafeFileName("a..b", 1), "a..b");
}

TEST(SafeFileNameTest, TakesTheLastPathComponent) {
  EXPECT_EQ(SafeFileName("../../etc/passwd", 1), "passwd");
  EXPECT_EQ(SafeFileName("/etc/shadow", 1), "shadow");
  EXPECT_EQ(SafeFileName("a/b\\c", 1), "c");
  EXPECT_EQ(SafeFileName("..\\..\\windows\\win.ini", 1), "win.ini");
  EXPECT_EQ(SafeFileName("dir/", 4), "attachment-4");
  EXPECT_EQ(SafeFileName("x/../..", 5), "attachment-5");
  EXPECT_EQ(SafeFileName("x/.ssh", 6), "attachment-6");
}

TEST(SafeFileNameTest, UnusableNamesFallBack) {
  EXPECT_EQ(SafeFileName("", 1), "attachment-1");
  EXPECT_EQ(SafeFileName(".", 2), "attachment-2");
  EXPECT_EQ(SafeFileName("..", 3), "attachment-3");
  EXPECT_EQ(SafeFileName(".hidden", 7), "attachment-7");
  EXPECT_EQ(SafeFileName(".bashrc", 8), "attachment-8");
  EXPECT_EQ(SafeFileName(std::string("\x01\x02\x7f", 3), 9), "attachment-9");
  // A control character cannot hide a leading dot.
  EXPECT_EQ(SafeFileName("\x01.profile", 10), "attachment-10");
}

TEST(SafeFileNameTest, RemovesControlCharacters) {
  EXPECT_EQ(SafeFileName("a\tb\nc\rd\x1b[31m\x7f.txt", 1), "abcd[31m.txt");
  EXPECT_EQ(SafeFileName(std::string("nul\0byte", 8), 1), "nulbyte");
  // Removing control characters does not bring back a separator.
  EXPECT_EQ(SafeFileName("evil\n/x", 1), "x");
}

TEST(SafeFileNameTest, VeryLongNamesFallBack) {
  EXPECT_EQ(SafeFileName(std::string(200, 'a'), 1), std::string(200, 'a'));
  EXPECT_EQ(SafeFileName(std::string(201, 'a'), 2), "attachment-2");
  EXPECT_EQ(SafeFileName(std::string(100000, 'a'), 3), "attachment-3");
  // Counted after the directories are cut off.
  EXPECT_EQ(SafeFileName(std::string(300, 'd') + "/short", 4), "short");
}

// --- MakeDirs / RemoveTree --------------------------------------------------

class DirsTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = testing::TempDir("dirs"); }
  std::string root_;
};

TEST_F(DirsTest, MakeDirsCreatesNestedDirs0700) {
  const std::string path = root_ + "/a/b/c";
  ASSERT_TRUE(MakeDirs(path).ok());
  for (const std::string& d : {root_ + "/a", root_ + "/a/b", path}) {
    EXPECT_TRUE(IsDir(d)) << d;
    EXPECT_EQ(Mode(d), 0700u) << d;
  }
}

TEST_F(DirsTest, MakeDirsIsFineIfTheyExist) {
  const std::string path = root_ + "/x/y";
  ASSERT_TRUE(MakeDirs(path).ok());
  WriteAll(path + "/keep", "data");
  absl::Status s = MakeDirs(path);
  EXPECT_TRUE(s.ok()) << s;
  s = MakeDirs(root_ + "/x/y/z");
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsDir(root_ + "/x/y/z"));
  EXPECT_EQ(ReadAll(path + "/keep"), "data");
  // A trailing slash is fine too.
  s = MakeDirs(root_ + "/t/u/");
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(IsDir(root_ + "/t/u"));
}

TEST_F(DirsTest, MakeDirsFailsThroughAFile) {
  WriteAll(root_ + "/file", "x");
  absl::Status s = MakeDirs(root_ + "/file/sub");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
}

TEST_F(DirsTest, RemoveTreeRemovesEverything) {
  const std::string top = root_ + "/in/ee";
  ASSERT_TRUE(MakeDirs(top + "/m1/0").ok());
  ASSERT_TRUE(MakeDirs(top + "/m1/1").ok());
  ASSERT_TRUE(MakeDirs(top + "/m2/0/empty").ok());
  WriteAll(top + "/m1/0/0.chunk", "a");
  WriteAll(top + "/m1/0/.tmp-123", "b");
  WriteAll(top + "/m1/1/0.chunk", "c");
  WriteAll(top + "/m2/other", "d");
  RemoveTree(top);
  EXPECT_FALSE(Exists(top));
  EXPECT_TRUE(IsDir(root_ + "/in"));  // only what was asked
}

TEST_F(DirsTest, RemoveTreeOfAFileAndOfNothing) {
  WriteAll(root_ + "/f", "x");
  RemoveTree(root_ + "/f");
  EXPECT_FALSE(Exists(root_ + "/f"));
  RemoveTree(root_ + "/does-not-exist");  // no crash, nothing happens
  EXPECT_TRUE(IsDir(root_));
}

TEST_F(DirsTest, RemoveTreeDoesNotFollowSymlinks) {
  const std::string outside = root_ + "/outside";
  ASSERT_TRUE(MakeDirs(outside).ok());
  WriteAll(outside + "/precious", "keep me");
  const std::string tree = root_ + "/tree";
  ASSERT_TRUE(MakeDirs(tree + "/sub").ok());
  ASSERT_EQ(::symlink(outside.c_str(), (tree + "/sub/link").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (root_ + "/toplink").c_str()), 0);

  RemoveTree(tree);
  EXPECT_FALSE(Exists(tree));
  RemoveTree(root_ + "/toplink");  // the link goes, not what it points at
  EXPECT_FALSE(Exists(root_ + "/toplink"));
  EXPECT_EQ(ReadAll(outside + "/precious"), "keep me");
}

}  // namespace
}  // namespace kontor
