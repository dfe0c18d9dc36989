// Two kontor nodes in one process over real mutual TLS on loopback, with
// certificates made for the test. A "rogue" peer (a federation client holding
// ee's real TLS certificate and signing key) sends crafted envelopes to fi.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/common/ids.h"
#include "daemon/envelope/receipt.h"
#include "daemon/kinds/kinds.h"
#include "daemon/server/identity.h"
#include "daemon/server/node.h"
#include "daemon/transport/tls.h"
#include "gtest/gtest.h"
#include "kontor/v1/federation.grpc.pb.h"
#include "kontor/v1/local.grpc.pb.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::TestPki;

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("two");
    pki_ = std::make_unique<TestPki>(dir_);
    ca_ = pki_->MakeCa("fedca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    lv_ = pki_->MakeNode(ca_, "lv");
    ee_port_ = testing::FreePort();
    fi_port_ = testing::FreePort();
  }

  void TearDown() override {
    ee_node_.reset();
    fi_node_.reset();
  }

  v1::NodeConfig ConfigFor(const TestPki::Node& self, const TestPki::Node& peer,
                           int self_port, int peer_port) {
    return TestPki::Config(self, {peer}, {peer_port}, ca_,
                           absl::StrCat(dir_, "/", self.id, "-data"),
                           absl::StrCat(dir_, "/", self.id, ".sock"),
                           self_port);
  }

  std::unique_ptr<Node> StartNode(v1::NodeConfig config) {
    auto node = Node::Create(std::move(config), Clock::Real());
    EXPECT_TRUE(node.ok()) << node.status();
    if (!node.ok()) return nullptr;
    auto s = (*node)->Start();
    EXPECT_TRUE(s.ok()) << s;
    return std::move(*node);
  }

  void StartBoth() {
    fi_node_ = StartNode(ConfigFor(fi_, ee_, fi_port_, ee_port_));
    ee_node_ = StartNode(ConfigFor(ee_, fi_, ee_port_, fi_port_));
    ASSERT_TRUE(fi_node_ && ee_node_);
  }

  std::unique_ptr<v1::Local::Stub> LocalStub(const std::string& id) {
    return v1::Local::NewStub(
        grpc::CreateChannel(absl::StrCat("unix:", dir_, "/", id, ".sock"),
                            grpc::InsecureChannelCredentials()));
  }

  std::string WaitForState(v1::Local::Stub* stub, const std::string& id,
                           const std::string& want) {
    std::string state;
    for (int i = 0; i < 1000; ++i) {
      grpc::ClientContext c;
      v1::StatusRequest req;
      req.set_message_id(id);
      v1::StatusResponse resp;
      if (stub->Status(&c, req, &resp).ok()) state = resp.state();
      if (state == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return state;
  }

  // The state of the delivery to `recipient`, once it is `want` (or after
  // 10 s of polling: the last state seen).
  std::string WaitForDelivery(v1::Local::Stub* stub, const std::string& id,
                              const std::string& recipient,
                              const std::string& want) {
    std::string state;
    for (int i = 0; i < 1000; ++i) {
      grpc::ClientContext c;
      v1::StatusRequest req;
      req.set_message_id(id);
      v1::StatusResponse resp;
      if (stub->Status(&c, req, &resp).ok()) {
        for (const auto& d : resp.deliveries()) {
          if (d.recipient() == recipient) state = d.state();
        }
      }
      if (state == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return state;
  }

  // --- the rogue peer: ee's real credentials, crafted envelopes.

  std::shared_ptr<const EcdsaSigner> SignerOf(const TestPki::Node& n) {
    return std::shared_ptr<const EcdsaSigner>(std::move(*EcdsaSigner::New(
        std::move(*PrivateKey::FromFile(n.signing.key_path)), n.signing.cert)));
  }

  class Directory : public KeyDirectory {
   public:
    explicit Directory(CertificatePtr fi_enc) : fi_enc_(std::move(fi_enc)) {}
    absl::StatusOr<CertificatePtr> SigningCert(absl::string_view,
                                               absl::string_view,
                                               int64_t) const override {
      return absl::NotFoundError("unused");
    }
    absl::StatusOr<CertificatePtr> EncryptionCert(
        absl::string_view) const override {
      return fi_enc_;
    }

   private:
    CertificatePtr fi_enc_;
  };

  v1::Envelope Craft(const std::string& origin, int64_t created_ms,
                     int64_t expires_ms, const std::string& body,
                     const std::string& id = "") {
    Directory directory(fi_.encryption.cert);
    Sealer sealer(origin, SignerOf(origin == "ee" ? ee_ : lv_), &directory);
    v1::Header h;
    h.set_message_id(id.empty() ? NewMessageId() : id);
    h.set_origin(origin);
    h.add_recipients("fi");
    h.set_priority(v1::ROUTINE);
    h.set_created_unix_ms(created_ms);
    h.set_expires_unix_ms(expires_ms);
    v1::Payload p;
    p.set_kind("note");
    p.set_body(body);
    auto env = sealer.Seal(h, p);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(sealer.SignOuter({&*env}).ok());
    return *env;
  }

  v1::Envelope Fresh(const std::string& body = "rogue",
                     const std::string& id = "") {
    int64_t now = Clock::Real()->NowUnixMs();
    return Craft("ee", now, now + 3600000, body, id);
  }

  // One Exchange call to fi, authenticated as ee.
  grpc::Status ExchangeAsEe(const std::vector<v1::Envelope>& envs,
                            v1::ReceiptBatch* answer) {
    return ExchangeAs(ee_, envs, answer);
  }

  // One Exchange call to fi, authenticated as `from`.
  grpc::Status ExchangeAs(const TestPki::Node& from,
                          const std::vector<v1::Envelope>& envs,
                          v1::ReceiptBatch* answer) {
    auto trust = TrustStore::Load(
        {TrustedCaFiles{ca_.cert_path, ca_.crl_path, {"ee", "fi"}}});
    auto creds = FederationChannelCredentials(
        ReadTlsMaterial(from.tls.cert_path, from.tls.key_path, ca_.cert_path),
        std::shared_ptr<const TrustStore>(std::move(*trust)), "fi",
        Clock::Real());
    auto stub = v1::Federation::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", fi_port_), creds));
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->Exchange(&c);
    v1::EnvelopeBatch batch;
    batch.set_batch_seq(7);
    for (const auto& e : envs) *batch.add_envelopes() = e;
    stream->Write(batch);
    stream->WritesDone();
    stream->Read(answer);
    return stream->Finish();
  }

  // Sends one batch to fi as ee; returns the receipt bodies (each checked to
  // be signed with fi's key) and the raw receipts.
  std::vector<v1::ReceiptBody> SendAsEe(
      const std::vector<v1::Envelope>& envs,
      std::vector<std::string>* raw = nullptr) {
    v1::ReceiptBatch answer;
    grpc::Status status = ExchangeAsEe(envs, &answer);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<v1::ReceiptBody> out;
    for (const auto& r : answer.receipts()) {
      v1::ReceiptBody b;
      EXPECT_TRUE(b.ParseFromString(r.body()));
      EXPECT_EQ(r.signature().signer_key_id(), fi_.signing.cert->key_id());
      if (raw) raw->push_back(r.SerializeAsString());
      out.push_back(b);
    }
    EXPECT_EQ(answer.batch_seq(), 7u);
    return out;
  }

  size_t InboxCount(const std::string& id) {
    auto rows = fi_node_->store()->ListInbox(false, 0, 100000);
    size_t n = 0;
    for (const auto& r : *rows) n += r.message_id == id;
    return n;
  }

  std::string dir_;
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  TestPki::Node ee_, fi_, lv_;
  int ee_port_ = 0, fi_port_ = 0;
  std::unique_ptr<Node> ee_node_, fi_node_;
};

TEST_F(TwoNodesTest, SendDeliverReadOverMutualTls) {
  StartBoth();
  auto ee = LocalStub("ee");
  v1::SubmitRequest req;
  req.add_to("fi");
  req.set_client_key("k1");
  req.mutable_payload()->set_kind("note");
  req.mutable_payload()->set_subject("hello");
  req.mutable_payload()->set_body("body text");
  v1::SubmitResponse resp;
  {
    grpc::ClientContext c;
    ASSERT_TRUE(ee->Submit(&c, req, &resp).ok());
  }
  EXPECT_EQ(WaitForState(ee.get(), resp.message_id(), "delivered"),
            "delivered");
  // The stored receipt verifies against fi's signing key.
  {
    grpc::ClientContext c;
    v1::StatusRequest sreq;
    sreq.set_message_id(resp.message_id());
    v1::StatusResponse status;
    ASSERT_TRUE(ee->Status(&c, sreq, &status).ok());
    ASSERT_EQ(status.deliveries_size(), 1);
    v1::Receipt receipt;
    ASSERT_TRUE(receipt.ParseFromString(status.deliveries(0).receipt()));
    v1::ReceiptBody body;
    ASSERT_TRUE(body.ParseFromString(receipt.body()));
    EXPECT_EQ(body.verdict(), v1::ACCEPTED);
    EXPECT_EQ(status.deliveries(0).receipt_signer(), "fi");
  }
  auto fi = LocalStub("fi");
  grpc::ClientContext c;
  v1::ShowRequest show;
  show.set_message_id(resp.message_id());
  v1::ShowResponse shown;
  ASSERT_TRUE(fi->Show(&c, show, &shown).ok());
  EXPECT_EQ(shown.payload().body(), "body text");
  EXPECT_EQ(shown.entry().origin(), "ee");
  // Idempotent resubmission returns the same id.
  v1::SubmitResponse again;
  grpc::ClientContext c2;
  ASSERT_TRUE(ee->Submit(&c2, req, &again).ok());
  EXPECT_EQ(again.message_id(), resp.message_id());
  EXPECT_TRUE(again.duplicate());
  // The figures moved with the message (what /metrics serves).
  const std::string ee_metrics = ee_node_->metrics()->TextExposition();
  const std::string fi_metrics = fi_node_->metrics()->TextExposition();
  for (const char* want :
       {"kontor_submissions_total{outcome=\"accepted\"} 1",
        "kontor_submissions_total{outcome=\"duplicate\"} 1",
        "kontor_deliveries_total{outcome=\"delivered\",peer=\"fi\"} 1",
        "kontor_delivery_latency_seconds_count 1",
        "kontor_submit_latency_seconds_count 2",
        "kontor_queue_depth{peer=\"fi\"} 0"}) {
    EXPECT_NE(ee_metrics.find(want), std::string::npos) << want;
  }
  EXPECT_NE(fi_metrics.find("kontor_envelopes_received_total{outcome="
                            "\"accepted\",peer=\"ee\"} 1"),
            std::string::npos)
      << fi_metrics;
  EXPECT_NE(fi_metrics.find("kontor_inbox_last_seq 1"), std::string::npos);
}

TEST_F(TwoNodesTest, ExpiryComesFromTheRequestTheKindOrTheNode) {
  auto ee_config = ConfigFor(ee_, fi_, ee_port_, fi_port_);
  (*ee_config.mutable_limits()->mutable_expiry_seconds_by_kind())["sitrep"] =
      600;
  ee_node_ = StartNode(ee_config);
  ASSERT_TRUE(ee_node_);
  auto ee = LocalStub("ee");
  auto lifetime_s = [&](const std::string& kind, int64_t override_s) {
    v1::SubmitRequest req;
    req.add_to("fi");
    // A valid message of the kind: its template.
    kinds::TemplateOptions opts;
    opts.now_ms = absl::ToUnixMillis(absl::Now());
    auto text = kinds::TemplateJson(kind, opts);
    EXPECT_TRUE(text.ok());
    EXPECT_TRUE(kinds::ParsePayloadJson(*text, req.mutable_payload()).ok());
    req.mutable_payload()->set_kind(kind);
    req.set_expires_in_seconds(override_s);
    v1::SubmitResponse resp;
    grpc::ClientContext c;
    EXPECT_TRUE(ee->Submit(&c, req, &resp).ok());
    grpc::ClientContext c2;
    v1::StatusRequest sreq;
    sreq.set_message_id(resp.message_id());
    v1::StatusResponse status;
    EXPECT_TRUE(ee->Status(&c2, sreq, &status).ok());
    return (status.expires_unix_ms() - status.created_unix_ms()) / 1000;
  };
  EXPECT_EQ(lifetime_s("sitrep", 0), 600);
  EXPECT_EQ(lifetime_s("note", 0), 3600);  // the node's default_expiry
  EXPECT_EQ(lifetime_s("sitrep", 60), 60);
}

// The standard grpc.health.v1.Health/Check answers SERVING on the local
// socket (request: empty HealthCheckRequest; answer: status = 1, "08 01").
TEST_F(TwoNodesTest, HealthServiceSaysServing) {
  StartBoth();
  auto channel = grpc::CreateChannel(absl::StrCat("unix:", dir_, "/ee.sock"),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1);  // an empty HealthCheckRequest
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&c, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response,
                 [&](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(TwoNodesTest, SubmitRefusesBadInputAtOnce) {
  StartBoth();
  auto ee = LocalStub("ee");
  auto submit = [&](v1::SubmitRequest req) {
    grpc::ClientContext c;
    v1::SubmitResponse resp;
    return ee->Submit(&c, req, &resp).error_code();
  };
  v1::SubmitRequest base;
  base.add_to("fi");
  base.mutable_payload()->set_kind("note");
  v1::SubmitRequest unknown = base;
  unknown.set_to(0, "se");
  EXPECT_EQ(submit(unknown), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SubmitRequest big = base;
  big.mutable_payload()->set_body(std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(submit(big), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SubmitRequest kind = base;
  kind.mutable_payload()->set_kind("gossip");
  EXPECT_EQ(submit(kind), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ee_node_->store()->ListDeliveries("", 100)->size(), 0u);
  for (const char* state : {"queued", "in_flight", "delivered", "rejected",
                            "expired", "cancelled", "suspended"}) {
    grpc::ClientContext c;
    v1::OutboxRequest req;
    req.set_state(state);
    v1::OutboxResponse resp;
    EXPECT_TRUE(ee->Outbox(&c, req, &resp).ok()) << state;
  }
}

TEST_F(TwoNodesTest, TamperedEnvelopesGetSignedRefusals) {
  StartBoth();
  ::testing::internal::CaptureStderr();
  v1::Envelope header = Fresh();
  {
    v1::Header h;
    h.ParseFromString(header.header());
    h.set_priority(v1::FLASH);
    header.set_header(h.SerializeAsString());
  }
  v1::Envelope ciphertext = Fresh();
  {
    std::string ct = ciphertext.ciphertext();
    ct[ct.size() / 3] ^= 0x10;
    ciphertext.set_ciphertext(ct);
  }
  v1::Envelope signature = Fresh();
  {
    std::string sig = signature.outer().signature();
    sig[sig.size() - 2] ^= 0x01;
    signature.mutable_outer()->set_signature(sig);
  }
  v1::Envelope suite = Fresh();
  {
    v1::Header h;
    h.ParseFromString(suite.header());
    h.set_suite_id("kontor-rsa1024-md5");
    suite.set_header(h.SerializeAsString());
  }
  const int64_t now = Clock::Real()->NowUnixMs();
  v1::Envelope expired = Craft("ee", now - 7200000, now - 3600000, "old");
  auto receipts = SendAsEe({header, ciphertext, signature, suite, expired});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(receipts.size(), 5u);
  for (const auto& r : receipts) EXPECT_EQ(r.verdict(), v1::REFUSED);
  EXPECT_EQ(receipts[0].refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_EQ(receipts[1].refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_EQ(receipts[2].refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_EQ(receipts[3].refusal(), v1::REFUSAL_UNKNOWN_SUITE);
  EXPECT_EQ(receipts[4].refusal(), v1::REFUSAL_EXPIRED);
  EXPECT_NE(log.find("outer signature"), std::string::npos) << log;
  EXPECT_NE(log.find("suite 'kontor-rsa1024-md5' is not allowed"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("expired at"), std::string::npos) << log;
  EXPECT_TRUE(fi_node_->store()->ListInbox(false, 0, 100)->empty());
}

// ee may send only its own messages (relay comes later): an envelope with
// another origin fails the call, and fi signs nothing about it.
TEST_F(TwoNodesTest, EnvelopeOfAnotherOriginFailsTheCall) {
  StartBoth();
  const int64_t now = Clock::Real()->NowUnixMs();
  v1::Envelope forged_origin = Craft("lv", now, now + 3600000, "as lv");
  ::testing::internal::CaptureStderr();
  v1::ReceiptBatch answer;
  grpc::Status status = ExchangeAsEe({Fresh(), forged_origin}, &answer);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(answer.receipts_size(), 0);
  EXPECT_NE(log.find("with origin lv: batch refused"), std::string::npos)
      << log;
  EXPECT_TRUE(fi_node_->store()->ListInbox(false, 0, 10)->empty());
}

// Ids are random, but a peer may reuse one it has seen (headers travel in
// clear): inbox entries are (origin, id), and a bare id that two origins
// used is refused as ambiguous rather than answered with either.
TEST_F(TwoNodesTest, SameIdFromTwoOriginsIsNeverMixedUp) {
  const int lv_port = testing::FreePort();
  auto fi_config =
      TestPki::Config(fi_, {ee_, lv_}, {ee_port_, lv_port}, ca_,
                      dir_ + "/fi-data", dir_ + "/fi.sock", fi_port_);
  fi_node_ = StartNode(fi_config);
  ASSERT_TRUE(fi_node_);
  v1::Envelope from_ee = Fresh("from ee");
  const std::string id = [&] {
    v1::Header h;
    h.ParseFromString(from_ee.header());
    return h.message_id();
  }();
  const int64_t now = Clock::Real()->NowUnixMs();
  v1::Envelope from_lv = Craft("lv", now, now + 3600000, "from lv", id);
  v1::ReceiptBatch answer;
  ASSERT_TRUE(ExchangeAs(ee_, {from_ee}, &answer).ok());
  ASSERT_TRUE(ExchangeAs(lv_, {from_lv}, &answer).ok());
  auto fi = LocalStub("fi");
  {
    grpc::ClientContext c;
    v1::ShowRequest req;
    req.set_message_id(id);
    v1::ShowResponse resp;
    auto s = fi->Show(&c, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("several origins"), std::string::npos);
  }
  for (const char* origin : {"ee", "lv"}) {
    grpc::ClientContext c;
    v1::ShowRequest req;
    req.set_message_id(id);
    req.set_origin(origin);
    v1::ShowResponse resp;
    ASSERT_TRUE(fi->Show(&c, req, &resp).ok());
    EXPECT_EQ(resp.payload().body(), absl::StrCat("from ", origin));
    EXPECT_EQ(resp.signer(), origin);
  }
  {
    grpc::ClientContext c;
    v1::AckRequest req;
    req.set_message_id(id);
    req.set_origin("ee");
    v1::AckResponse resp;
    ASSERT_TRUE(fi->Ack(&c, req, &resp).ok());
  }
  auto unread = fi_node_->store()->ListInbox(true, 0, 10);
  ASSERT_EQ(unread->size(), 1u);
  EXPECT_EQ((*unread)[0].origin, "lv");
}

TEST_F(TwoNodesTest, ReplayGetsTheStoredReceiptAndIsStoredOnce) {
  StartBoth();
  v1::Envelope env = Fresh("once");
  v1::Header h;
  h.ParseFromString(env.header());
  std::vector<std::string> first, second;
  auto a = SendAsEe({env}, &first);
  auto b = SendAsEe({env, env}, &second);
  ASSERT_EQ(a[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(second[0], first[0]);  // resent unchanged
  EXPECT_EQ(second[1], first[0]);
  EXPECT_EQ(InboxCount(h.message_id()), 1u);
}

TEST_F(TwoNodesTest, SameIdWithOtherContentIsASecurityEvent) {
  StartBoth();
  v1::Envelope env = Fresh("original");
  v1::Header h;
  h.ParseFromString(env.header());
  ASSERT_EQ(SendAsEe({env})[0].verdict(), v1::ACCEPTED);
  // A new, validly signed envelope reusing the id.
  v1::Envelope other = Fresh("different", h.message_id());
  ::testing::internal::CaptureStderr();
  auto r = SendAsEe({other});
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r[0].verdict(), v1::REFUSED);
  EXPECT_EQ(r[0].refusal(), v1::REFUSAL_CONFLICT);
  EXPECT_NE(log.find("SECURITY"), std::string::npos) << log;
  EXPECT_NE(log.find("different digest"), std::string::npos) << log;
  EXPECT_EQ(InboxCount(h.message_id()), 1u);
  auto shown = fi_node_->store()->GetInbox(h.message_id(), "ee");
  ASSERT_EQ(shown->size(), 1u);
  v1::Payload p;
  p.ParseFromString((*shown)[0].payload);
  EXPECT_EQ(p.body(), "original");
}

TEST_F(TwoNodesTest, PeerWithTheWrongNodeIdAsServerIsRefused) {
  // ee thinks fi is at fi_port_, but lv answers there with lv's valid
  // certificate from the same CA.
  auto lv_config =
      TestPki::Config(lv_, {ee_}, {ee_port_}, ca_, dir_ + "/lv-data",
                      dir_ + "/lv.sock", fi_port_);
  auto lv_node = StartNode(lv_config);
  ASSERT_TRUE(lv_node);
  // ee's CA may certify lv too: lv's certificate is fully valid, it is just
  // not fi's.
  auto ee_config = ConfigFor(ee_, fi_, ee_port_, fi_port_);
  ee_config.mutable_trusted_cas(0)->add_allowed_node_ids("lv");
  ::testing::internal::CaptureStderr();
  ee_node_ = StartNode(ee_config);
  ASSERT_TRUE(ee_node_);
  auto ee = LocalStub("ee");
  v1::SubmitRequest req;
  req.add_to("fi");
  req.mutable_payload()->set_kind("note");
  v1::SubmitResponse resp;
  grpc::ClientContext c;
  ASSERT_TRUE(ee->Submit(&c, req, &resp).ok());
  for (int i = 0;
       i < 1000 && ee_node_->store()->GetPeerState("fi")->failures < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ee_node_.reset();
  lv_node.reset();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("certificate is for node 'lv', expected 'fi'"),
            std::string::npos)
      << log;
  auto store = Store::Open(dir_ + "/ee-data/kontor.db");
  EXPECT_EQ((*(*store)->Deliveries(resp.message_id()))[0].state, "queued");
  EXPECT_TRUE((*store)->ListInbox(false, 0, 10)->empty());
}

// A client presenting a certificate for "ee" from a CA fi does not trust is
// refused at the handshake, and fi logs why.
TEST_F(TwoNodesTest, ClientFromAnotherCaIsRefusedWithTheReason) {
  TestPki other(dir_);
  auto other_ca = other.MakeCa("rogueca");
  auto fake_ee = other.MakeNode(other_ca, "ee");
  ::testing::internal::CaptureStderr();
  fi_node_ = StartNode(ConfigFor(fi_, ee_, fi_port_, ee_port_));
  ASSERT_TRUE(fi_node_);
  v1::ReceiptBatch answer;
  EXPECT_FALSE(ExchangeAs(fake_ee, {Fresh()}, &answer).ok());
  EXPECT_EQ(answer.receipts_size(), 0);
  fi_node_.reset();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("server: refused TLS peer: certificate of ee is not "
                     "issued by a trusted CA"),
            std::string::npos)
      << log;
  auto store = Store::Open(dir_ + "/fi-data/kontor.db");
  EXPECT_TRUE((*store)->ListInbox(false, 0, 10)->empty());
}

// One message to two recipients: the content key is wrapped for each, a
// dead recipient does not hold up the other, and the status is partial until
// both have signed receipts.
TEST_F(TwoNodesTest, MultiRecipientWithOneRecipientDown) {
  const int lv_port = testing::FreePort();
  auto ee_config =
      TestPki::Config(ee_, {fi_, lv_}, {fi_port_, lv_port}, ca_,
                      dir_ + "/ee-data", dir_ + "/ee.sock", ee_port_);
  fi_node_ = StartNode(ConfigFor(fi_, ee_, fi_port_, ee_port_));
  ee_node_ = StartNode(ee_config);
  ASSERT_TRUE(fi_node_ && ee_node_);
  auto ee = LocalStub("ee");
  v1::SubmitRequest req;
  req.add_to("fi");
  req.add_to("lv");
  req.mutable_payload()->set_kind("note");
  req.mutable_payload()->set_body("to both");
  v1::SubmitResponse resp;
  {
    grpc::ClientContext c;
    ASSERT_TRUE(ee->Submit(&c, req, &resp).ok());
  }
  EXPECT_EQ(InboxCount(resp.message_id()), 0u);
  for (int i = 0; i < 1000 && InboxCount(resp.message_id()) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(InboxCount(resp.message_id()), 1u);
  // fi holds it before ee has its receipt: wait for that, not for the
  // overall "partial" (in flight to fi and queued for lv is partial too).
  EXPECT_EQ(WaitForDelivery(ee.get(), resp.message_id(), "fi", "delivered"),
            "delivered");
  EXPECT_EQ(WaitForState(ee.get(), resp.message_id(), "partial"), "partial");
  {
    grpc::ClientContext c;
    v1::StatusRequest sreq;
    sreq.set_message_id(resp.message_id());
    v1::StatusResponse status;
    ASSERT_TRUE(ee->Status(&c, sreq, &status).ok());
    ASSERT_EQ(status.deliveries_size(), 2);
    EXPECT_EQ(status.deliveries(0).recipient(), "fi");
    EXPECT_EQ(status.deliveries(0).state(), "delivered");
    EXPECT_EQ(status.deliveries(1).recipient(), "lv");
    EXPECT_NE(status.deliveries(1).state(), "delivered");
  }
  auto lv_config =
      TestPki::Config(lv_, {ee_}, {ee_port_}, ca_, dir_ + "/lv-data",
                      dir_ + "/lv.sock", lv_port);
  auto lv_node = StartNode(lv_config);
  ASSERT_TRUE(lv_node);
  EXPECT_EQ(WaitForState(ee.get(), resp.message_id(), "delivered"),
            "delivered");
  auto got = lv_node->store()->GetInbox(resp.message_id(), "ee");
  ASSERT_EQ(got->size(), 1u);
  v1::Payload p;
  ASSERT_TRUE(p.ParseFromString((*got)[0].payload));
  EXPECT_EQ(p.body(), "to both");
}

TEST_F(TwoNodesTest, NothingIsLostWhenTheReceiverStartsLate) {
  ee_node_ = StartNode(ConfigFor(ee_, fi_, ee_port_, fi_port_));
  auto ee = LocalStub("ee");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    v1::SubmitRequest req;
    req.add_to("fi");
    req.mutable_payload()->set_kind("note");
    req.mutable_payload()->set_body(absl::StrCat("n", i));
    v1::SubmitResponse resp;
    grpc::ClientContext c;
    ASSERT_TRUE(ee->Submit(&c, req, &resp).ok());
    ids.push_back(resp.message_id());
  }
  fi_node_ = StartNode(ConfigFor(fi_, ee_, fi_port_, ee_port_));
  for (const auto& id : ids) {
    EXPECT_EQ(WaitForState(ee.get(), id, "delivered"), "delivered");
    EXPECT_EQ(InboxCount(id), 1u);
  }
}

TEST_F(TwoNodesTest, ConfigErrorsAreReportedWithTheField) {
  // A peer certificate that is not the peer's: an error for --check-config
  // (strict), and at run time that peer is unusable while the node runs.
  auto config = ConfigFor(ee_, fi_, ee_port_, fi_port_);
  config.mutable_peers(0)->set_encryption_cert(lv_.encryption.cert_path);
  auto strict = LoadIdentity(config, Clock::Real(), /*strict=*/true);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("peers[0].encryption_cert"),
            std::string::npos)
      << strict.status();
  EXPECT_NE(strict.status().message().find("is for node 'lv'"),
            std::string::npos);
  auto lenient = LoadIdentity(config, Clock::Real());
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  ASSERT_EQ(lenient->unusable_peers.count("fi"), 1u);
  EXPECT_NE(lenient->unusable_peers["fi"].find("is for node 'lv'"),
            std::string::npos);
  ee_node_ = StartNode(config);
  ASSERT_TRUE(ee_node_);
  auto ee = LocalStub("ee");
  v1::SubmitRequest req;
  req.add_to("fi");
  req.mutable_payload()->set_kind("note");
  v1::SubmitResponse resp;
  grpc::ClientContext c;
  auto submitted = ee->Submit(&c, req, &resp);
  EXPECT_EQ(submitted.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(submitted.error_message().find("peer 'fi' is unusable"),
            std::string::npos)
      << submitted.error_message();
  ee_node_.reset();

  absl::StatusOr<std::unique_ptr<Node>> node;
  config = ConfigFor(ee_, fi_, ee_port_, fi_port_);
  config.mutable_signing()->set_key(ee_.tls.key_path);
  node = Node::Create(config, Clock::Real());
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("signing.key"), std::string::npos)
      << node.status();

  config = ConfigFor(ee_, fi_, ee_port_, fi_port_);
  config.mutable_tls()->set_cert(dir_ + "/missing.crt");
  node = Node::Create(config, Clock::Real());
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("tls.cert"), std::string::npos)
      << node.status();
}

}  // namespace
}  // namespace kontor
