// Chunks a peer sends ahead of their envelope (inbox/staging.h): a quota per
// peer, a free-space floor, claimed with their envelope, dropped with a
// refusal, collected when their envelope never comes (fake time).

#include "daemon/inbox/staging.h"

#include <sys/stat.h>

#include <string>

#include "daemon/attachment/chunks.h"
#include "daemon/attachment/files.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

constexpr char kId1[] = "11111111-1111-4111-8111-111111111111";
constexpr char kId2[] = "22222222-2222-4222-8222-222222222222";
constexpr char kId3[] = "33333333-3333-4333-8333-333333333333";
constexpr int64_t kHour = 3600 * 1000;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("staging");
    options_.data_dir = dir_;
    options_.max_bytes_per_peer = 3000;
    options_.min_free_bytes = 0;
    options_.ttl_ms = 24 * kHour;
    Make();
  }
  void Make() { staging_ = std::make_unique<ChunkStaging>(options_, &clock_); }
  absl::Status Put(const std::string& peer, const std::string& origin,
                   const std::string& id, uint32_t index, size_t bytes) {
    return staging_->Put(peer, origin, id, 0, index, std::string(bytes, 'c'));
  }
  std::string Staged(const std::string& origin, const std::string& id,
                     uint32_t index) {
    return ChunkPath(AttachmentDirs(dir_).Staged(origin, id, 0), index);
  }
  std::string In(const std::string& origin, const std::string& id,
                 uint32_t index) {
    return ChunkPath(AttachmentDirs(dir_).Incoming(origin, id, 0), index);
  }
  std::string Relayed(const std::string& origin, const std::string& id,
                      uint32_t index) {
    return ChunkPath(AttachmentDirs(dir_).Relay(origin, id, 0), index);
  }
  // An envelope's chunk list: attachment 0 with chunks 0..n-1 (what
  // ClaimStaged moves; their contents were checked before).
  static std::vector<std::vector<ChunkInfo>> List(uint32_t n) {
    std::vector<ChunkInfo> chunks;
    for (uint32_t i = 0; i < n; ++i) {
      chunks.push_back(ChunkInfo{i, 0, "", i + 1 == n});
    }
    return {chunks};
  }

  std::string dir_;
  StagingOptions options_;
  FakeClock clock_{1700000000000};
  std::unique_ptr<ChunkStaging> staging_;
};

TEST_F(StagingTest, QuotaPerPeer) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 1000).ok());
  ASSERT_TRUE(Put("ee", "ee", kId1, 1, 1000).ok());
  ASSERT_TRUE(Put("ee", "ee", kId2, 0, 1000).ok());
  EXPECT_EQ(staging_->staged_bytes("ee"), 3000u);
  const absl::Status over = Put("ee", "ee", kId3, 0, 1);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("max_staged_bytes_per_peer"),
            std::string::npos);
  EXPECT_FALSE(Exists(Staged("ee", kId3, 0)));
  // Another peer has a quota of its own.
  EXPECT_TRUE(Put("lv", "lv", kId3, 0, 1000).ok());
  // A chunk that is there already costs nothing (write once).
  EXPECT_TRUE(Put("ee", "ee", kId1, 0, 1000).ok());
  EXPECT_EQ(staging_->staged_bytes("ee"), 3000u);
}

TEST_F(StagingTest, ClaimMovesToInAndFreesTheQuota) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 1500).ok());
  ASSERT_TRUE(Put("ee", "ee", kId1, 1, 1500).ok());
  ASSERT_TRUE(staging_->Claim("ee", kId1, List(2), ChunkHome::kInbox).ok());
  EXPECT_TRUE(Exists(In("ee", kId1, 0)));
  EXPECT_TRUE(Exists(In("ee", kId1, 1)));
  EXPECT_FALSE(Exists(AttachmentDirs(dir_).StagedMessage("ee", kId1)));
  EXPECT_EQ(staging_->staged_bytes("ee"), 0u);
  // What in/ holds counts as there: not written again.
  EXPECT_TRUE(Put("ee", "ee", kId1, 0, 1500).ok());
  EXPECT_FALSE(Exists(Staged("ee", kId1, 0)));
  EXPECT_EQ(staging_->staged_bytes("ee"), 0u);
}

// Chunks the envelope does not list are not taken with it: a peer cannot
// stage gigabytes beside a small attachment and have them kept.
TEST_F(StagingTest, ClaimTakesOnlyTheListedChunks) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 100).ok());
  ASSERT_TRUE(Put("ee", "ee", kId1, 7, 1000).ok());  // not listed
  ASSERT_TRUE(staging_->Put("ee", "ee", kId1, 5, 0, std::string(900, 'j'))
                  .ok());  // another attachment, not listed
  ASSERT_TRUE(staging_->Claim("ee", kId1, List(1), ChunkHome::kInbox).ok());
  EXPECT_TRUE(Exists(In("ee", kId1, 0)));
  EXPECT_FALSE(Exists(In("ee", kId1, 7)));
  EXPECT_FALSE(Exists(AttachmentDirs(dir_).IncomingMessage("ee", kId1) + "/5"));
  EXPECT_FALSE(Exists(AttachmentDirs(dir_).StagedMessage("ee", kId1)));
  EXPECT_EQ(staging_->staged_bytes("ee"), 0u);
}

// The same message kept here (a recipient) and relayed on: one file, two
// names, each going with its own use.
TEST_F(StagingTest, InboxAndRelayShareChunksByLink) {
  ASSERT_TRUE(Put("ua", "ua", kId1, 0, 100).ok());
  ASSERT_TRUE(Put("ua", "ua", kId1, 1, 100).ok());
  ASSERT_TRUE(staging_->Claim("ua", kId1, List(2), ChunkHome::kInbox).ok());
  ASSERT_TRUE(staging_->Claim("ua", kId1, List(2), ChunkHome::kRelay).ok());
  EXPECT_TRUE(Exists(In("ua", kId1, 1)));
  EXPECT_TRUE(Exists(Relayed("ua", kId1, 1)));
  RemoveTree(AttachmentDirs(dir_).RelayMessage("ua", kId1));  // relay done
  EXPECT_TRUE(Exists(In("ua", kId1, 0)));
  EXPECT_TRUE(Exists(In("ua", kId1, 1)));
}

TEST_F(StagingTest, DropRemovesWhatARefusedEnvelopeListed) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 1000).ok());
  staging_->Drop("ee", kId1);
  EXPECT_FALSE(Exists(Staged("ee", kId1, 0)));
  EXPECT_EQ(staging_->staged_bytes("ee"), 0u);
}

TEST_F(StagingTest, CollectRemovesWhatWaitedLongerThanTtl) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 1000).ok());
  clock_.AdvanceMs(20 * kHour);
  ASSERT_TRUE(Put("ee", "ee", kId2, 0, 1000).ok());
  clock_.AdvanceMs(3 * kHour);
  EXPECT_EQ(staging_->Collect(), 0u);  // 23 hours: kept
  clock_.AdvanceMs(2 * kHour);
  EXPECT_EQ(staging_->Collect(), 1u);  // 25 hours: kId1 goes
  EXPECT_FALSE(Exists(Staged("ee", kId1, 0)));
  EXPECT_TRUE(Exists(Staged("ee", kId2, 0)));
  EXPECT_EQ(staging_->staged_bytes("ee"), 1000u);
  // A new chunk keeps a message's chunks alive.
  clock_.AdvanceMs(20 * kHour);
  ASSERT_TRUE(Put("ee", "ee", kId2, 1, 100).ok());
  clock_.AdvanceMs(20 * kHour);
  EXPECT_EQ(staging_->Collect(), 0u);
}

TEST_F(StagingTest, RecoverCountsWhatWaitsAndClaimsWhatIsHeld) {
  ASSERT_TRUE(Put("ee", "ee", kId1, 0, 1000).ok());
  ASSERT_TRUE(Put("ee", "ua", kId2, 0, 500).ok());  // relayed for ua by ee
  ASSERT_TRUE(Put("ee", "ee", kId3, 0, 200).ok());  // its envelope is held
  // Junk in the staging area is removed.
  ASSERT_TRUE(
      MakeDirs(AttachmentDirs(dir_).StagedRoot() + "/../staged/EVIL/x").ok());
  Make();  // a restart
  ASSERT_TRUE(staging_
                  ->Recover(
                      [](const std::string& origin, const std::string& id)
                          -> absl::StatusOr<std::optional<ChunkHome>> {
                        if (id == kId3) return ChunkHome::kInbox;
                        return std::optional<ChunkHome>();
                      },
                      [](const std::string& origin) {
                        return std::string(origin == "ua" ? "ee" : origin);
                      })
                  .ok());
  EXPECT_EQ(staging_->staged_bytes("ee"), 1500u);
  EXPECT_TRUE(Exists(In("ee", kId3, 0)));
  EXPECT_FALSE(Exists(AttachmentDirs(dir_).StagedRoot() + "/EVIL"));
}

TEST_F(StagingTest, FreeSpaceFloor) {
  options_.min_free_bytes = ~uint64_t{0} / 2;
  Make();
  const absl::Status s = Put("ee", "ee", kId1, 0, 10);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("disk is full"), std::string::npos) << s;
  EXPECT_EQ(staging_->staged_bytes("ee"), 0u);
}

}  // namespace
}  // namespace kontor
