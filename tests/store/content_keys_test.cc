// The content key file and column sealing (daemon/store/content_keys.h):
// keys kept per id across calls and reopenings, destroyed so that no copy of
// their bytes is left in the file or its WAL, the file private to its owner;
// sealed columns bound to their key id and column.

#include "daemon/store/content_keys.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::ReadAll;

class ContentKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("keys") + "/kontor.keys";
    Reopen();
  }
  void Reopen() {
    keys_.reset();
    auto k = ContentKeys::Open(path_);
    ASSERT_TRUE(k.ok()) << k.status();
    keys_ = std::move(*k);
  }
  std::map<std::string, std::string> Ensure(
      const std::vector<std::string>& ids) {
    auto made = keys_->Ensure(ids);
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *made : std::map<std::string, std::string>();
  }
  std::optional<std::string> Get(const std::string& id) {
    auto got = keys_->Get(id);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::nullopt;
  }
  // Where on disk a key's bytes are found: "" if nowhere.
  std::string FoundIn(const std::string& key) {
    std::string where;
    for (const std::string& f : {path_, path_ + "-wal", path_ + "-journal"}) {
      if (ReadAll(f).find(key) != std::string::npos) absl::StrAppend(&where, f);
    }
    return where;
  }

  std::string path_;
  std::unique_ptr<ContentKeys> keys_;
};

TEST_F(ContentKeysTest, EnsureMakesOneDistinct32ByteKeyPerId) {
  auto made = Ensure({"m:a", "i:ee/b", "u:c", "m:a"});
  ASSERT_EQ(made.size(), 3u);
  std::set<std::string> distinct;
  for (const auto& [id, key] : made) {
    EXPECT_EQ(key.size(), 32u) << id;
    distinct.insert(key);
  }
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(*keys_->Count(), 3u);
  EXPECT_TRUE(Ensure({}).empty());
}

TEST_F(ContentKeysTest, SameIdKeepsItsKeyAcrossCallsAndReopen) {
  const std::string a = Ensure({"m:a"})["m:a"];
  ASSERT_EQ(a.size(), 32u);
  auto again = Ensure({"m:b", "m:a"});
  EXPECT_EQ(again["m:a"], a);
  EXPECT_NE(again["m:b"], a);
  EXPECT_EQ(Get("m:a"), a);
  Reopen();
  EXPECT_EQ(Get("m:a"), a);
  EXPECT_EQ(Get("m:b"), again["m:b"]);
  EXPECT_EQ(Ensure({"m:a"})["m:a"], a);
  EXPECT_EQ(*keys_->Count(), 2u);
}

TEST_F(ContentKeysTest, GetOfAnUnknownIdIsNullopt) {
  EXPECT_EQ(Get("m:never"), std::nullopt);
  Ensure({"m:a"});
  EXPECT_EQ(Get("m:A"), std::nullopt);  // ids are exact
  EXPECT_EQ(Get("m:a "), std::nullopt);
  EXPECT_EQ(Get(""), std::nullopt);
}

TEST_F(ContentKeysTest, DestroyedKeyIsGoneAndOthersStay) {
  auto made = Ensure({"m:a", "m:b", "i:ee/c"});
  ASSERT_TRUE(keys_->Destroy({"m:a", "i:ee/c", "m:unknown"}).ok());
  EXPECT_EQ(Get("m:a"), std::nullopt);
  EXPECT_EQ(Get("i:ee/c"), std::nullopt);
  EXPECT_EQ(Get("m:b"), made["m:b"]);
  EXPECT_EQ(*keys_->Count(), 1u);
  EXPECT_TRUE(keys_->Destroy({}).ok());
  EXPECT_TRUE(keys_->Destroy({"m:a"}).ok());  // again: nothing to do
  Reopen();
  EXPECT_EQ(Get("m:a"), std::nullopt);
  EXPECT_EQ(Get("m:b"), made["m:b"]);
}

TEST_F(ContentKeysTest, AKeyMadeAgainAfterItsDestructionIsANewOne) {
  const std::string old = Ensure({"m:a"})["m:a"];
  ASSERT_TRUE(keys_->Destroy({"m:a"}).ok());
  const std::string fresh = Ensure({"m:a"})["m:a"];
  EXPECT_EQ(fresh.size(), 32u);
  EXPECT_NE(fresh, old);
}

TEST_F(ContentKeysTest, DestroyedKeyBytesAreNotInTheFileNorItsWal) {
  auto made = Ensure({"m:a", "m:b"});
  const std::string a = made["m:a"], b = made["m:b"];
  // Written to the WAL (and, after a reopen, the file itself).
  EXPECT_NE(FoundIn(a), "");
  Reopen();
  EXPECT_NE(ReadAll(path_).find(a), std::string::npos);
  // Written once more in a WAL frame before its destruction.
  Ensure({"m:c"});
  ASSERT_TRUE(keys_->Destroy({"m:a"}).ok());
  // At once, with the file still open.
  EXPECT_EQ(FoundIn(a), "");
  EXPECT_NE(FoundIn(b), "");  // the search does find a key that is there
  keys_.reset();
  EXPECT_EQ(FoundIn(a), "");
  EXPECT_NE(FoundIn(b), "");
}

TEST_F(ContentKeysTest, DestroyedKeysAreNotInTheFileAfterPageSplits) {
  // Enough keys, made over several transactions, to fill and split pages
  // (4 KiB pages, ~50 bytes a row): cells moved around by the b-tree must
  // not leave stale copies of keys destroyed later.
  std::map<std::string, std::string> all;
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<std::string> ids;
    for (int i = 0; i < 100; ++i) {
      ids.push_back(absl::StrCat("i:ee/", batch, "-", i));
    }
    auto made = Ensure(ids);
    all.insert(made.begin(), made.end());
    if (batch == 2) Reopen();  // some checkpointed into the file
  }
  ASSERT_EQ(all.size(), 600u);
  std::vector<std::string> destroyed;
  int n = 0;
  for (const auto& [id, key] : all) {
    if (n++ % 2 == 0) destroyed.push_back(id);
  }
  ASSERT_TRUE(keys_->Destroy(destroyed).ok());
  EXPECT_EQ(*keys_->Count(), 300u);
  const std::string on_disk = ReadAll(path_) + ReadAll(path_ + "-wal");
  int left = 0;
  for (const std::string& id : destroyed) {
    if (on_disk.find(all[id]) != std::string::npos) {
      ++left;
      ADD_FAILURE() << "key of " << id << " still on disk after Destroy";
      if (left > 5) break;
    }
  }
  // The ones kept are found (the search works).
  for (const auto& [id, key] : all) {
    if (std::find(destroyed.begin(), destroyed.end(), id) == destroyed.end()) {
      EXPECT_NE(on_disk.find(key), std::string::npos) << id;
      break;
    }
  }
}

TEST_F(ContentKeysTest, KeyFileIsPrivateToItsOwnerWhateverTheUmask) {
  const std::string path = testing::TempDir("keys-mode") + "/kontor.keys";
  const mode_t old = umask(0);
  auto k = ContentKeys::Open(path);
  umask(old);
  ASSERT_TRUE(k.ok()) << k.status();
  ASSERT_TRUE((*k)->Ensure({"m:a"}).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  // SQLite gives the WAL the file's own mode.
  if (stat((path + "-wal").c_str(), &st) == 0) {
    EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  }
  // And the fixture's file, made under the test's normal umask.
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
}

TEST_F(ContentKeysTest, OpenOfAnUnwritableLocationIsAnError) {
  EXPECT_FALSE(ContentKeys::Open("/proc/kontor-cannot-be-here/x.keys").ok());
}

// ----------------------------------------------------------- column sealing

class SealColumnTest : public ::testing::Test {
 protected:
  const std::string key_ = std::string(32, '\x11');
  const std::string other_key_ = std::string(32, '\x12');
};

TEST_F(SealColumnTest, RoundTrip) {
  auto sealed = SealColumn(key_, "m:a", "payload", "the payload");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_TRUE(IsSealed(*sealed));
  EXPECT_EQ(sealed->substr(0, kSealedTag.size()), kSealedTag);
  EXPECT_EQ(sealed->substr(0, 4), std::string("\x01kc1"));
  EXPECT_EQ(sealed->find("the payload"), std::string::npos);
  auto opened = OpenColumn(key_, "m:a", "payload", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "the payload");
  // Binary values too.
  const std::string binary("\0\x01kc1\xff", 6);
  auto b = SealColumn(key_, "i:ee/x", "inner_signed", binary);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*OpenColumn(key_, "i:ee/x", "inner_signed", *b), binary);
}

TEST_F(SealColumnTest, SealingTwiceGivesDifferentValues) {
  EXPECT_NE(*SealColumn(key_, "m:a", "payload", "p"),
            *SealColumn(key_, "m:a", "payload", "p"));
}

TEST_F(SealColumnTest, BoundToItsKeyIdAndColumn) {
  const std::string sealed = *SealColumn(key_, "m:a", "payload", "content");
  EXPECT_EQ(OpenColumn(key_, "m:b", "payload", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenColumn(key_, "m:a", "subject", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenColumn(key_, "i:ee/a", "payload", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenColumn(other_key_, "m:a", "payload", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  // Key id and column are kept apart: "m:a" + "xpayload" is not "m:ax" +
  // "payload".
  const std::string split = *SealColumn(key_, "m:ax", "payload", "content");
  EXPECT_EQ(OpenColumn(key_, "m:a", "xpayload", split).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(*OpenColumn(key_, "m:a", "payload", sealed), "content");
}

TEST_F(SealColumnTest, AlteredOrNotSealedValueIsDataLoss) {
  const std::string sealed = *SealColumn(key_, "m:a", "payload", "content");
  for (size_t i = kSealedTag.size(); i < sealed.size(); ++i) {
    std::string altered = sealed;
    altered[i] ^= 0x20;
    EXPECT_EQ(OpenColumn(key_, "m:a", "payload", altered).status().code(),
              absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  EXPECT_EQ(OpenColumn(key_, "m:a", "payload", "plain text").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      OpenColumn(key_, "m:a", "payload", sealed.substr(0, sealed.size() - 1))
          .status()
          .code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenColumn(key_, "m:a", "payload", kSealedTag).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(SealColumnTest, EmptyStaysEmpty) {
  auto sealed = SealColumn(key_, "m:a", "payload", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(*sealed, "");
  EXPECT_FALSE(IsSealed(*sealed));
  auto opened = OpenColumn(key_, "m:a", "payload", "");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "");
  // Even with a key of no use: there is nothing to open.
  EXPECT_EQ(*OpenColumn("", "m:a", "payload", ""), "");
}

TEST_F(SealColumnTest, IsSealed) {
  EXPECT_TRUE(IsSealed(std::string("\x01kc1")));
  EXPECT_TRUE(IsSealed(std::string("\x01kc1...")));
  EXPECT_FALSE(IsSealed(""));
  EXPECT_FALSE(IsSealed("kc1"));
  EXPECT_FALSE(IsSealed(std::string("\x01kc")));
  EXPECT_FALSE(IsSealed(std::string("\x01kc2...")));
  EXPECT_FALSE(IsSealed("payload"));
}

TEST_F(SealColumnTest, KeyOfTheWrongSizeIsAnError) {
  EXPECT_FALSE(SealColumn(std::string(16, 'k'), "m:a", "payload", "x").ok());
  const std::string sealed = *SealColumn(key_, "m:a", "payload", "content");
  EXPECT_FALSE(OpenColumn(std::string(16, 'k'), "m:a", "payload", sealed).ok());
}

TEST(ContentKeysPathTest, BesideTheStoreWithoutItsDbSuffix) {
  EXPECT_EQ(ContentKeysPath("x/kontor.db"), "x/kontor.keys");
  EXPECT_EQ(ContentKeysPath("x/foo"), "x/foo.keys");
  EXPECT_EQ(ContentKeysPath("/var/lib/kontor/kontor.db"),
            "/var/lib/kontor/kontor.keys");
  EXPECT_EQ(ContentKeysPath("kontor.db.v0"), "kontor.db.v0.keys");
  // Not matched by a `kontor.db*` backup glob.
  EXPECT_NE(ContentKeysPath("x/kontor.db").rfind("x/kontor.db", 0), 0u);
}

}  // namespace

// A reader holding the key file's WAL (an online backup) keeps it from
// being truncated: Destroy says so (kAborted, the keys deleted), and a
// later Checkpoint, once the reader is gone, removes the bytes.
TEST_F(ContentKeysTest, AReaderHoldingTheWalDelaysTheTruncationAndSaysSo) {
  auto keys = Ensure({"k:a", "k:b"});
  sqlite3* reader = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2(path_.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT COUNT(*) FROM content_keys;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::Status s = keys_->Destroy({"k:a"});
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(Get("k:a"), std::nullopt);  // deleted all the same
  EXPECT_EQ(keys_->Checkpoint().code(), absl::StatusCode::kAborted);
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(reader);
  EXPECT_TRUE(keys_->Checkpoint().ok());
  EXPECT_EQ(FoundIn(keys["k:a"]), "");
  EXPECT_NE(FoundIn(keys["k:b"]), "");
}

TEST_F(ContentKeysTest, TheFileHasAnIdOfItsOwnKeptAcrossReopen) {
  const std::string id = keys_->file_id();
  EXPECT_EQ(id.size(), 32u);
  Reopen();
  EXPECT_EQ(keys_->file_id(), id);
  auto other = ContentKeys::Open(testing::TempDir("keys2") + "/kontor.keys");
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->file_id(), id);
}

}  // namespace kontor
