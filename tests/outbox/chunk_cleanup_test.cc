// Attachment chunk files of messages sent or relayed from here go once every
// delivery settled (outbox.h CollectSettledChunks), with a real store.

#include <sys/stat.h>

#include "daemon/attachment/files.h"
#include "daemon/outbox/outbox.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class ChunkCleanupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("cleanup");
    auto s = Store::Open(dir_ + "/kontor.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  // A message `id` to `to` with one uploaded attachment, whose chunk
  // directory exists.
  std::string Send(const std::string& id, std::vector<std::string> to) {
    UploadRecord u;
    u.id = "up-" + id;
    u.submitter = "alice";
    u.name = "scan.pdf";
    u.size = 10;
    u.sha256 = std::string(32, 'h');
    u.key = std::string(32, 'k');
    u.created_ms = 1000;
    EXPECT_TRUE(store_->InsertUpload(u).ok());
    EXPECT_TRUE(MakeDirs(AttachmentDirs(dir_).Upload(u.id)).ok());
    OutgoingMessage m;
    m.id = id;
    m.recipients = std::move(to);
    m.priority = 1;
    m.created_ms = 1000;
    m.expires_ms = 1000 + kDay;
    m.kind = "note";
    m.envelope = "envelope";
    m.outer_digest = "digest-" + id;
    m.submitter = "alice";
    m.request_hash = "hash-" + id;
    m.uploads = {u.id};
    m.chunk_count = 1;
    EXPECT_TRUE(store_->InsertOutgoing(m).ok());
    return AttachmentDirs(dir_).Upload(u.id);
  }
  void Settle(const std::string& id, const std::string& peer,
              absl::string_view state, int64_t at) {
    ASSERT_TRUE(
        store_->Settle({Settlement{id, peer, state, "", "r", at, ""}}).ok());
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ChunkCleanupTest, GoOnlyWhenEveryDeliverySettled) {
  const std::string chunks = Send("m1", {"fi", "lv"});
  Settle("m1", "fi", kStateDelivered, 2000);
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 3000), 0u);
  EXPECT_TRUE(Exists(chunks));  // lv still waits for them
  Settle("m1", "lv", kStateRejected, 2500);
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 3000), 1u);
  EXPECT_FALSE(Exists(chunks));
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 3000), 0u);  // once
}

TEST_F(ChunkCleanupTest, ExpiredKeepsThemForTheFinalAttempt) {
  const std::string chunks = Send("m1", {"fi"});
  ASSERT_EQ(*store_->ExpireOverdue("fi", 1000 + kDay + 1), 1u);
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 1000 + kDay + 10), 0u);
  EXPECT_TRUE(Exists(chunks));
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 1000 + 3 * kDay), 1u);
  EXPECT_FALSE(Exists(chunks));
}

TEST_F(ChunkCleanupTest, QueuedKeepsThem) {
  const std::string chunks = Send("m1", {"fi"});
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 10 * kDay), 0u);
  EXPECT_TRUE(Exists(chunks));
}

// A relayed message's chunks (relay/) go when its delivery settles; this
// node's own copy of the same message (in/, it was a recipient too) stays.
TEST_F(ChunkCleanupTest, RelayedGoOwnCopyStays) {
  const std::string id = "33333333-3333-4333-8333-333333333333";
  RelayedMessage m;
  m.origin = "ua";
  m.message_id = id;
  m.deliver_to = "de";
  m.from_peer = "ua";
  m.priority = 1;
  m.created_ms = 1000;
  m.expires_ms = 1000 + kDay;
  m.envelope = "envelope";
  m.outer_digest = "digest";
  m.chunk_count = 1;
  m.custody = "custody";
  m.received_ms = 1000;
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({m}, &existing).ok());
  const AttachmentDirs dirs(dir_);
  ASSERT_TRUE(MakeDirs(dirs.Relay("ua", id, 0)).ok());
  ASSERT_TRUE(MakeDirs(dirs.Incoming("ua", id, 0)).ok());
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 3000), 0u);
  Settle(RelayKey("ua", id), "de", kStateDelivered, 2000);
  EXPECT_EQ(*CollectSettledChunks(store_.get(), dir_, 3000), 1u);
  EXPECT_FALSE(Exists(dirs.RelayMessage("ua", id)));
  EXPECT_TRUE(Exists(dirs.Incoming("ua", id, 0)));
}

}  // namespace
}  // namespace kontor
