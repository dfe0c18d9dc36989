#ifndef KONTOR_TESTS_APP_APP_FIXTURE_H_
#define KONTOR_TESTS_APP_APP_FIXTURE_H_

// One node's application layer (daemon/app/) built as the composition root
// builds it, with no gRPC server: node "ee" with a real SQLite store, real
// certificates and keys (TestPki), a real Sealer and a real Outbox that is
// never started (its link only records, so what is submitted stays queued),
// and a fake clock. What "ee" receives comes through a real Receiver, sealed
// and signed by peer "fi" with fi's own keys.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/app/app.h"
#include "daemon/attachment/chunks.h"
#include "daemon/attachment/files.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/primitives.h"
#include "daemon/envelope/envelope.h"
#include "daemon/inbox/receiver.h"
#include "daemon/kinds/kinds.h"
#include "daemon/outbox/outbox.h"
#include "daemon/policy/policy.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "kontor/v1/federation.pb.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor {

// The outbox's link to its peers. The outbox of these tests is never
// started, so nothing should ever come here; it records what would.
class RecordingLink : public PeerLink {
 public:
  absl::StatusOr<std::vector<std::string>> Exchange(
      const std::string& peer,
      const std::vector<std::string>& envelopes) override {
    absl::MutexLock l(&mu_);
    sent_[peer] += envelopes.size();
    return absl::UnavailableError("no network in these tests");
  }
  size_t sent() const {
    absl::MutexLock l(&mu_);
    size_t n = 0;
    for (const auto& [peer, count] : sent_) n += count;
    return n;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, size_t> sent_ ABSL_GUARDED_BY(mu_);
};

class AppTest : public ::testing::Test {
 protected:
  // The node's peers: fi and lv take every kind; lt takes only notes from
  // ee (config peers send_kinds). At most two recipients per message.
  static constexpr uint32_t kMaxRecipients = 2;
  static constexpr uint32_t kRetentionDays = 30;

  void SetUp() override {
    dir_ = testing::TempDir("app");
    pki_ = std::make_unique<testing::TestPki>(dir_);
    ca_ = pki_->MakeCa("ca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    lv_ = pki_->MakeNode(ca_, "lv");
    lt_ = pki_->MakeNode(ca_, "lt");
    for (const auto* n : {&ee_, &fi_, &lv_, &lt_}) directory_.Add(*n);

    config_ =
        testing::TestPki::Config(ee_, {fi_, lv_, lt_}, {7001, 7002, 7003}, ca_,
                                 dir_ + "/data", dir_ + "/ee.sock", 7000);
    config_.mutable_limits()->set_max_recipients(kMaxRecipients);
    config_.mutable_limits()->set_max_attachment_bytes(1 << 20);
    config_.mutable_limits()->set_min_free_bytes(1);  // not this test's topic
    config_.mutable_retention()->set_default_days(kRetentionDays);
    config_.mutable_peers(2)->add_send_kinds("note");  // lt

    ASSERT_TRUE(MakeDirs(config_.data_dir()).ok());
    db_path_ = config_.data_dir() + "/kontor.db";
    auto store = Store::Open(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);

    sealer_ =
        std::make_unique<Sealer>("ee", testing::SignerOf(ee_), &directory_);
    OutboxOptions outbox_options;
    outbox_options.data_dir = config_.data_dir();
    outbox_ = std::make_unique<Outbox>(
        "ee", std::vector<std::string>{"fi", "lv", "lt"}, store_.get(), &link_,
        &directory_, &clock_, outbox_options);

    opener_ = std::make_unique<Opener>("ee", testing::DecryptionKeysOf(ee_),
                                       &directory_, &clock_, 300000, 4 << 20);
    ReceiverOptions receiving;
    receiving.node_id = "ee";
    receiving.store = store_.get();
    receiving.opener = opener_.get();
    receiving.signer = testing::SignerOf(ee_);
    receiving.clock = &clock_;
    receiving.max_attachment_bytes = 1 << 20;
    receiving.staging = DefaultStaging(config_.data_dir(), 1 << 20);
    receiving.staging.min_free_bytes = 1;
    auto receiver = Receiver::Create(std::move(receiving));
    ASSERT_TRUE(receiver.ok()) << receiver.status();
    receiver_ = std::move(*receiver);

    AppOptions options;
    options.config = &config_;
    options.store = store_.get();
    options.sealer = sealer_.get();
    options.outbox = outbox_.get();
    options.clock = &clock_;
    options.cert_info = [](const std::string&) { return PeerCertInfo(); };
    options.signer = testing::SignerOf(ee_);
    app_ = std::make_unique<App>(std::move(options));
  }

  // --- callers: local users and their roles (policy.h)
  const Caller admin_{"local-admin", Role::kAdmin};
  const Caller alice_{"user:alice", Role::kCoordinator};
  const Caller bob_{"user:bob", Role::kCoordinator};
  const Caller liz_{"user:liz", Role::kLiaison};

  // --- payloads
  static v1::Payload Note(const std::string& subject,
                          const std::string& body = "Contact details follow.") {
    v1::Payload p;
    p.set_kind("note");
    p.set_subject(subject);
    p.set_body(body);
    return p;
  }
  // A valid payload of `kind`, from its template (kinds/).
  v1::Payload Typed(const std::string& kind, const std::string& case_ref = "") {
    kinds::TemplateOptions options;
    options.now_ms = clock_.NowUnixMs();
    options.case_ref = case_ref;
    auto json = kinds::TemplateJson(kind, options);
    EXPECT_TRUE(json.ok()) << json.status();
    v1::Payload p;
    if (json.ok()) {
      absl::Status s = kinds::ParsePayloadJson(*json, &p);
      EXPECT_TRUE(s.ok()) << kind << ": " << s;
    }
    return p;
  }
  static v1::SubmitRequest Request(const std::vector<std::string>& to,
                                   const v1::Payload& payload,
                                   const std::string& client_key = "") {
    v1::SubmitRequest r;
    for (const std::string& t : to) r.add_to(t);
    *r.mutable_payload() = payload;
    r.set_client_key(client_key);
    return r;
  }

  // --- sending: the id of an accepted submission ("" if refused).
  std::string Send(const Caller& caller, const std::vector<std::string>& to,
                   const v1::Payload& payload) {
    auto r = app_->Submit(caller, Request(to, payload));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->message_id() : "";
  }

  // --- receiving: `payload` sealed and signed by fi, received by ee's
  // Receiver as if fi had sent it; its id (`id`, or a new one).
  std::string ReceiveFromFi(const v1::Payload& payload,
                            const std::string& id = "") {
    const std::string chosen = id.empty() ? NewMessageId() : id;
    ReceiveBatchFromFi(payload, {chosen});
    return chosen;
  }
  // Messages with these ids and the same content, in one batch (one
  // transaction), each accepted.
  void ReceiveBatchFromFi(const v1::Payload& payload,
                          const std::vector<std::string>& ids) {
    std::vector<v1::Envelope> envs;
    for (const std::string& id : ids) envs.push_back(SealFromFi(payload, id));
    std::vector<v1::Envelope*> outer;
    for (v1::Envelope& env : envs) outer.push_back(&env);
    EXPECT_TRUE(Sealer("fi", testing::SignerOf(fi_), &directory_)
                    .SignOuter(outer)
                    .ok());
    Deliver(envs);
  }
  // The same with one attachment whose content is `data`: its encrypted
  // chunks are sent ahead (PutChunk), then the envelope that lists them.
  std::string ReceiveFromFiWithAttachment(v1::Payload payload,
                                          const std::string& data) {
    const std::string id = NewMessageId();
    const std::string chunk_dir = dir_ + "/fi-chunks-" + id;
    const std::string key = RandomBytes(kChunkKeyBytes);
    auto enc = ChunkEncryptor::Create(chunk_dir, key, 0);
    EXPECT_TRUE(enc.ok()) << enc.status();
    EXPECT_TRUE((*enc)->Write(data).ok());
    auto summary = (*enc)->Finish();
    EXPECT_TRUE(summary.ok()) << summary.status();
    v1::Attachment* a = payload.add_attachments();
    a->set_name("scan.txt");
    a->set_content_type("text/plain");
    a->set_size(summary->plain_size);
    a->set_sha256(summary->plain_sha256);
    a->set_key(key);
    a->set_chunk_count(static_cast<uint32_t>(summary->chunks.size()));
    v1::Envelope env = SealFromFi(payload, id);
    AddChunkRefs(0, summary->chunks, &env);
    EXPECT_TRUE(Sealer("fi", testing::SignerOf(fi_), &directory_)
                    .SignOuter({&env})
                    .ok());
    for (const ChunkInfo& c : summary->chunks) {
      v1::ChunkData chunk;
      chunk.set_origin("fi");
      chunk.set_message_id(id);
      chunk.set_attachment(0);
      chunk.set_index(c.index);
      chunk.set_data(testing::ReadAll(ChunkPath(chunk_dir, c.index)));
      absl::Status s = receiver_->PutChunk("fi", chunk);
      EXPECT_TRUE(s.ok()) << s;
    }
    Deliver({env});
    return id;
  }

  // --- reading, as the admin (who sees everything)
  std::vector<v1::AuditRecord> Audit() {
    v1::AuditTailRequest request;
    request.set_limit(10000);
    auto tail = app_->AuditTail(admin_, request);
    EXPECT_TRUE(tail.ok()) << tail.status();
    if (!tail.ok()) return {};
    return {tail->records().begin(), tail->records().end()};
  }
  // The audit records with this action (and message id, if given).
  std::vector<v1::AuditRecord> AuditOf(const std::string& action,
                                       const std::string& message_id = "") {
    std::vector<v1::AuditRecord> out;
    for (const v1::AuditRecord& r : Audit()) {
      if (r.action() == action &&
          (message_id.empty() || r.message_id() == message_id)) {
        out.push_back(r);
      }
    }
    return out;
  }
  // Every unsettled delivery of every user.
  std::vector<v1::OutboxEntry> QueuedDeliveries() {
    auto r = app_->Outbox(admin_, v1::OutboxRequest());
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->entries().begin(), r->entries().end()};
  }
  std::vector<v1::InboxEntry> InboxOf(const Caller& caller) {
    auto r = app_->Inbox(caller, v1::InboxRequest());
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->entries().begin(), r->entries().end()};
  }
  static std::vector<std::string> IdsOf(
      const std::vector<v1::InboxEntry>& entries) {
    std::vector<std::string> ids;
    for (const auto& e : entries) ids.push_back(e.message_id());
    return ids;
  }

  // --- the calls that name a message, each reduced to its status: what
  // "not found" must look like for a message the caller may not see.
  struct NamedCall {
    std::string name;
    std::function<absl::Status(const Caller&, const std::string&)> call;
  };
  std::vector<NamedCall> CallsNamingAMessage() {
    App* app = app_.get();
    auto status_of = [](const auto& r) { return r.status(); };
    return {
        {"Show",
         [=](const Caller& c, const std::string& id) {
           v1::ShowRequest r;
           r.set_message_id(id);
           return status_of(app->Show(c, r));
         }},
        {"Status",
         [=](const Caller& c, const std::string& id) {
           v1::StatusRequest r;
           r.set_message_id(id);
           return status_of(app->Status(c, r));
         }},
        {"Thread",
         [=](const Caller& c, const std::string& id) {
           v1::ThreadRequest r;
           r.set_message_id(id);
           return status_of(app->Thread(c, r));
         }},
        {"Ack",
         [=](const Caller& c, const std::string& id) {
           v1::AckRequest r;
           r.set_message_id(id);
           return status_of(app->Ack(c, r));
         }},
        {"Cancel",
         [=](const Caller& c, const std::string& id) {
           v1::CancelRequest r;
           r.set_message_id(id);
           return status_of(app->Cancel(c, r));
         }},
        {"Retry",
         [=](const Caller& c, const std::string& id) {
           v1::RetryRequest r;
           r.set_message_id(id);
           return status_of(app->Retry(c, r));
         }},
        {"Export",
         [=](const Caller& c, const std::string& id) {
           v1::ExportRequest r;
           r.set_message_id(id);
           return status_of(app->Export(c, r));
         }},
        {"FetchAttachment",
         [=](const Caller& c, const std::string& id) {
           v1::FetchAttachmentRequest r;
           r.set_message_id(id);
           return app->FetchAttachment(
               c, r, [](absl::string_view) { return absl::OkStatus(); });
         }},
    };
  }
  // A refusal with every mention of `id` replaced, to compare refusals
  // about different ids.
  static std::string Anonymized(const absl::Status& s, const std::string& id) {
    return absl::StrCat(absl::StatusCodeToString(s.code()), ": ",
                        absl::StrReplaceAll(s.message(), {{id, "<id>"}}));
  }

  std::string dir_;
  std::string db_path_;
  std::unique_ptr<testing::TestPki> pki_;
  testing::TestPki::Ca ca_;
  testing::TestPki::Node ee_, fi_, lv_, lt_;
  testing::FakeDirectory directory_;
  v1::NodeConfig config_;
  FakeClock clock_{Clock::Real()->NowUnixMs()};
  RecordingLink link_;
  // Declared in the order they are built; destroyed in the reverse.
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sealer> sealer_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Opener> opener_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<App> app_;

 private:
  v1::Envelope SealFromFi(const v1::Payload& payload, const std::string& id) {
    v1::Header h;
    h.set_message_id(id);
    h.set_origin("fi");
    h.add_recipients("ee");
    h.set_priority(v1::ROUTINE);
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_expires_unix_ms(h.created_unix_ms() + 3600 * 1000);
    auto env =
        Sealer("fi", testing::SignerOf(fi_), &directory_).Seal(h, payload);
    EXPECT_TRUE(env.ok()) << env.status();
    return env.ok() ? *env : v1::Envelope();
  }
  // Hands `envs` to ee's Receiver as fi; expects every one accepted.
  void Deliver(const std::vector<v1::Envelope>& envs) {
    auto receipts = receiver_->Receive("fi", envs);
    ASSERT_TRUE(receipts.ok()) << receipts.status();
    ASSERT_EQ(receipts->size(), envs.size());
    for (const std::string& raw : *receipts) {
      v1::Receipt receipt;
      v1::ReceiptBody body;
      ASSERT_TRUE(receipt.ParseFromString(raw) &&
                  body.ParseFromString(receipt.body()));
      EXPECT_EQ(body.verdict(), v1::ACCEPTED) << body.reason();
    }
  }
};

}  // namespace kontor

#endif  // KONTOR_TESTS_APP_APP_FIXTURE_H_
