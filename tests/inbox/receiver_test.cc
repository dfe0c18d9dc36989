#include "daemon/inbox/receiver.h"

#include "daemon/common/ids.h"
#include "daemon/envelope/receipt.h"
#include "daemon/kinds/kinds.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::FakeDirectory;
using testing::SignerOf;
using testing::TestPki;

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::TempDir("inbox");
    pki_ = std::make_unique<TestPki>(dir);
    ca_ = pki_->MakeCa("ca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    lv_ = pki_->MakeNode(ca_, "lv");
    for (auto* n : {&ee_, &fi_, &lv_}) directory_.Add(*n);
    store_ = std::move(*Store::Open(dir + "/fi.db"));
    opener_ = std::make_unique<Opener>("fi", testing::DecryptionKeysOf(fi_),
                                       &directory_, &clock_, 300000, 1 << 20);
    options_.node_id = "fi";
    options_.store = store_.get();
    options_.opener = opener_.get();
    options_.signer = SignerOf(fi_);
    options_.clock = &clock_;
    Rebuild();
  }

  // fi's receiver again, with options_ as they are now (same store).
  void Rebuild() {
    auto r = Receiver::Create(options_);
    ASSERT_TRUE(r.ok()) << r.status();
    receiver_ = std::move(*r);
  }
  // The kinds each origin may send fi (peers accept_kinds).
  void SetPolicy(PeerPolicy::KindsByPeer accept_kinds) {
    options_.policy = PeerPolicy(std::move(accept_kinds), {});
    Rebuild();
  }

  // An envelope from ee to fi; `encrypt_with` and `signer` (ee's keys by
  // default) make it one that fi cannot open or verify.
  v1::Envelope Make(const std::string& body, const std::string& id = "",
                    const KeyDirectory* encrypt_with = nullptr,
                    const TestPki::Node* signer = nullptr) {
    Sealer sealer("ee", SignerOf(signer ? *signer : ee_),
                  encrypt_with ? encrypt_with : &directory_);
    v1::Header h;
    h.set_message_id(id.empty() ? NewMessageId() : id);
    h.set_origin("ee");
    h.add_recipients("fi");
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_priority(v1::ROUTINE);
    h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
    v1::Payload p;
    p.set_kind("note");
    p.set_body(body);
    auto env = sealer.Seal(h, p);
    EXPECT_TRUE(env.ok());
    EXPECT_TRUE(sealer.SignOuter({&*env}).ok());
    return *env;
  }

  static std::string IdOf(const v1::Envelope& e) {
    v1::Header h;
    h.ParseFromString(e.header());
    return h.message_id();
  }

  // Receives and checks every receipt is validly signed by fi for its
  // envelope.
  std::vector<v1::ReceiptBody> Receive(
      const std::string& peer, const std::vector<v1::Envelope>& envs,
      std::vector<std::string>* raw = nullptr) {
    auto receipts = receiver_->Receive(peer, envs);
    EXPECT_TRUE(receipts.ok()) << receipts.status();
    std::vector<v1::ReceiptBody> out;
    for (size_t i = 0; i < receipts->size(); ++i) {
      v1::Receipt r;
      EXPECT_TRUE(r.ParseFromString((*receipts)[i]));
      auto body = VerifyReceipt(r, directory_, "fi", "ee", IdOf(envs[i]),
                                OuterDigest(envs[i], kSuiteV1));
      EXPECT_TRUE(body.ok()) << body.status();
      out.push_back(body.ok() ? *body : v1::ReceiptBody());
      if (raw) raw->push_back((*receipts)[i]);
    }
    return out;
  }

  // The body of the one receipt for `env`, read as is: for envelopes whose
  // bytes were altered, so the sender's digest does not apply.
  v1::ReceiptBody UncheckedBody(const std::string& peer,
                                const v1::Envelope& env) {
    auto receipts = receiver_->Receive(peer, {env});
    v1::Receipt r;
    v1::ReceiptBody b;
    EXPECT_TRUE(receipts.ok() && r.ParseFromString((*receipts)[0]) &&
                b.ParseFromString(r.body()));
    return b;
  }

  size_t Stored(const std::string& id) {
    size_t n = 0;
    auto rows = store_->ListInbox(false, 0, 1000);  // keep it alive
    for (const auto& r : *rows) {
      n += r.message_id == id;
    }
    return n;
  }

  FakeClock clock_{Clock::Real()->NowUnixMs()};
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  TestPki::Node ee_, fi_, lv_;
  FakeDirectory directory_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Opener> opener_;
  ReceiverOptions options_;
  std::unique_ptr<Receiver> receiver_;
};

TEST_F(ReceiverTest, AcceptsStoresAndSignsReceipts) {
  v1::Envelope a = Make("a"), b = Make("b");
  auto bodies = Receive("ee", {a, b});
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(bodies[1].verdict(), v1::ACCEPTED);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
  auto rec = *store_->GetInbox(IdOf(b), "ee");
  ASSERT_EQ(rec.size(), 1u);
  v1::Payload p;
  ASSERT_TRUE(p.ParseFromString(rec[0].payload));
  EXPECT_EQ(p.body(), "b");
}

TEST_F(ReceiverTest, DuplicatesGetTheStoredReceiptAndAreStoredOnce) {
  v1::Envelope a = Make("a");
  std::vector<std::string> first, again;
  Receive("ee", {a}, &first);
  Receive("ee", {a, a}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(again[1], first[0]);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
}

TEST_F(ReceiverTest, TwoCopiesInOneBatchAreStoredOnce) {
  v1::Envelope a = Make("a");
  std::vector<std::string> raw;
  auto bodies = Receive("ee", {a, a}, &raw);
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(raw[1], raw[0]);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
}

TEST_F(ReceiverTest, SameIdOtherContentIsRefusedAndTheOriginalKept) {
  v1::Envelope a = Make("original");
  Receive("ee", {a});
  v1::Envelope b = Make("replacement", IdOf(a));
  auto bodies = Receive("ee", {b});
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_CONFLICT);
  v1::Payload p;
  p.ParseFromString((*store_->GetInbox(IdOf(a), "ee"))[0].payload);
  EXPECT_EQ(p.body(), "original");
}

TEST_F(ReceiverTest, ForgeryDoesNotOccupyTheIdOfTheRealMessage) {
  v1::Envelope real = Make("real");
  v1::Envelope forged = real;
  std::string ct = forged.ciphertext();
  ct[ct.size() / 2] ^= 1;
  forged.set_ciphertext(ct);
  auto refused = Receive("ee", {forged});
  EXPECT_EQ(refused[0].refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(real))->has_value());
  auto accepted = Receive("ee", {real});
  EXPECT_EQ(accepted[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(Stored(IdOf(real)), 1u);
}

TEST_F(ReceiverTest, AnotherPeerCannotDeliverOrBlockAnOriginsMessage) {
  v1::Envelope a = Make("a");
  // No signed statement at all about someone else's envelope.
  EXPECT_EQ(receiver_->Receive("lv", {a}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(a))->has_value());
  EXPECT_EQ(Receive("ee", {a})[0].verdict(), v1::ACCEPTED);
}

TEST_F(ReceiverTest, NoSignedRefusalAboutAnotherOriginsBrokenEnvelope) {
  v1::Envelope a = Make("a");
  v1::Header h;
  h.ParseFromString(a.header());
  h.set_suite_id("not-a-suite");  // fails the structural checks
  a.set_header(h.SerializeAsString());
  EXPECT_EQ(receiver_->Receive("lv", {a}).status().code(),
            absl::StatusCode::kPermissionDenied);
  // From its own origin the same envelope gets a signed refusal (over the
  // bytes received, so its digest is that of the altered header).
  v1::ReceiptBody b = UncheckedBody("ee", a);
  EXPECT_EQ(b.verdict(), v1::REFUSED);
  EXPECT_EQ(b.refusal(), v1::REFUSAL_UNKNOWN_SUITE);
  EXPECT_EQ(b.origin(), "ee");
}

TEST_F(ReceiverTest, StoredMessageReplayedAfterExpiryGetsItsStoredReceipt) {
  // Never two contradicting signed receipts for the same envelope: dedup
  // comes before the clock checks.
  v1::Envelope a = Make("a");
  std::vector<std::string> first, later;
  Receive("ee", {a}, &first);
  clock_.AdvanceMs(2 * 3600000);
  auto bodies = Receive("ee", {a}, &later);
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(later[0], first[0]);
  // A message never seen is refused as expired.
  v1::Envelope old = Make("b");
  clock_.AdvanceMs(2 * 3600000);
  EXPECT_EQ(Receive("ee", {old})[0].refusal(), v1::REFUSAL_EXPIRED);
}

TEST_F(ReceiverTest, UnknownSigningKeyIsDeferredAndNotRemembered) {
  auto rotated_key =
      pki_->Issue(ca_, "ee", KeyPurpose::kSigning, -60, 86400, "-rotated");
  TestPki::Node rotated = ee_;
  rotated.signing = rotated_key;
  const v1::Envelope env = Make("a", "", nullptr, &rotated);
  EXPECT_EQ(Receive("ee", {env})[0].verdict(), v1::DEFERRED);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(env))->has_value());
  directory_.AddSigning("ee", rotated_key.cert);  // config catches up
  EXPECT_EQ(Receive("ee", {env})[0].verdict(), v1::ACCEPTED);
}

TEST_F(ReceiverTest, EncryptedToAKeyNotConfiguredIsDeferred) {
  // ee seals for "fi" with a key fi does not have configured (as after a
  // rotation without old_encryption): the operator can fix it, so deferred.
  FakeDirectory wrong_keys;
  wrong_keys.AddSigning("ee", ee_.signing.cert);
  TestPki::Node fi_with_lv_key = lv_;
  fi_with_lv_key.id = "fi";
  wrong_keys.Add(fi_with_lv_key);
  v1::Envelope a = Make("a", "", &wrong_keys);
  auto bodies = Receive("ee", {a});
  EXPECT_EQ(bodies[0].verdict(), v1::DEFERRED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_DECRYPT_FAILED);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(a))->has_value());
}

TEST_F(ReceiverTest, AuthenticButUndecryptableIsRefusedForGoodAndRemembered) {
  // ee itself signed a ciphertext that does not decrypt (corrupted before
  // signing): authentic, and never going to open. Permanent, remembered.
  Sealer sealer("ee", SignerOf(ee_), &directory_);
  v1::Envelope a = Make("a");
  std::string ct = a.ciphertext();
  ct[ct.size() - 20] ^= 1;  // inside the GCM-protected content
  a.set_ciphertext(ct);
  ASSERT_TRUE(sealer.SignOuter({&a}).ok());
  std::vector<std::string> first, again;
  auto bodies = Receive("ee", {a}, &first);
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_DECRYPT_FAILED);
  Receive("ee", {a}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(Stored(IdOf(a)), 0u);  // remembered, but not listed
  EXPECT_TRUE(store_->FindInbox("ee", IdOf(a))->has_value());
}

TEST_F(ReceiverTest, GarbageGetsASignedRefusalNotAnError) {
  v1::Envelope garbage;
  garbage.set_header("\xff\xff not a header");
  garbage.set_ciphertext("nothing");
  v1::ReceiptBody b = UncheckedBody("ee", garbage);
  EXPECT_EQ(b.verdict(), v1::REFUSED);
  EXPECT_EQ(b.refusal(), v1::REFUSAL_MALFORMED);
}

// fi as a relay: ee hands it envelopes for lv (relay rule ee -> lv). lv is
// direct unless a test routes it further.
class RelayTest : public ReceiverTest {
 protected:
  void SetUp() override {
    ReceiverTest::SetUp();
    Route(Routes({"ee", "lv"}, {}, {{"ee", "lv"}}));
  }

  void Route(Routes routes) {
    options_.routes = std::move(routes);
    options_.directory = &directory_;
    options_.notify = [this](const std::string& hop) {
      notified_.push_back(hop);
    };
    Rebuild();
  }

  // A sealed envelope from ee to `recipients`, marked for `deliver_to`.
  v1::Envelope MakeFor(const std::vector<std::string>& recipients,
                       const std::string& deliver_to,
                       const std::string& body = "hello",
                       const std::string& id = "") {
    Sealer sealer("ee", SignerOf(ee_), &directory_);
    v1::Header h;
    h.set_message_id(id.empty() ? NewMessageId() : id);
    h.set_origin("ee");
    for (const std::string& r : recipients) h.add_recipients(r);
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_priority(v1::URGENT);
    h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
    v1::Payload p;
    p.set_kind("note");
    p.set_body(body);
    auto env = sealer.Seal(h, p);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(sealer.SignOuter({&*env}).ok());
    if (!deliver_to.empty()) env->mutable_routing()->set_deliver_to(deliver_to);
    return *env;
  }

  // Receives at `receiver` (node `node`) and checks every receipt is
  // validly signed by `node` for its envelope.
  std::vector<v1::ReceiptBody> ReceiveAt(
      Receiver& receiver, const std::string& node, const std::string& peer,
      const std::vector<v1::Envelope>& envs,
      std::vector<std::string>* raw = nullptr) {
    auto receipts = receiver.Receive(peer, envs);
    EXPECT_TRUE(receipts.ok()) << receipts.status();
    if (!receipts.ok()) return std::vector<v1::ReceiptBody>(envs.size());
    std::vector<v1::ReceiptBody> out;
    for (size_t i = 0; i < receipts->size(); ++i) {
      v1::Receipt r;
      EXPECT_TRUE(r.ParseFromString((*receipts)[i]));
      auto body = VerifyReceipt(r, directory_, node, "ee", IdOf(envs[i]),
                                OuterDigest(envs[i], kSuiteV1));
      EXPECT_TRUE(body.ok()) << body.status();
      out.push_back(body.ok() ? *body : v1::ReceiptBody());
      if (raw) raw->push_back((*receipts)[i]);
    }
    return out;
  }

  // lv as a final recipient with its own store, taking envelopes of ee
  // and fi from `via`.
  struct Lv {
    std::unique_ptr<Store> store;
    std::unique_ptr<Opener> opener;
    std::unique_ptr<Receiver> receiver;
  };
  Lv MakeLv(const std::string& via) {
    Lv lv;
    lv.store = std::move(*Store::Open(pki_->dir() + "/lv-" + via + ".db"));
    lv.opener = std::make_unique<Opener>("lv", testing::DecryptionKeysOf(lv_),
                                         &directory_, &clock_, 300000, 1 << 20);
    ReceiverOptions o;
    o.node_id = "lv";
    o.store = lv.store.get();
    o.opener = lv.opener.get();
    o.signer = SignerOf(lv_);
    o.clock = &clock_;
    o.routes = Routes({via}, {{"ee", via}, {"fi", via}}, {});
    o.directory = &directory_;
    lv.receiver = std::move(*Receiver::Create(std::move(o)));
    return lv;
  }

  // The one envelope fi queued for lv, as it is to be sent on.
  v1::Envelope Queued() {
    auto due = store_->NextDeliveries("lv", 10, clock_.NowUnixMs());
    EXPECT_TRUE(due.ok() && due->size() == 1u);
    v1::Envelope env;
    if (due.ok() && !due->empty()) {
      EXPECT_TRUE(env.ParseFromString((*due)[0].envelope));
    }
    return env;
  }

  std::vector<std::string> notified_;
};

TEST_F(RelayTest, TakesCustodySignsForwardedAndNotifiesTheNextHop) {
  v1::Envelope env = MakeFor({"lv"}, "lv");
  const std::string id = IdOf(env);
  std::vector<std::string> first;
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {env}, &first);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0].verdict(), v1::FORWARDED);
  EXPECT_EQ(bodies[0].deliver_to(), "lv");
  EXPECT_EQ(bodies[0].recipient(), "fi");
  EXPECT_EQ(notified_, std::vector<std::string>{"lv"});

  auto stored = *store_->FindRelayed("ee", id, "lv");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->outer_digest, OuterDigest(env, kSuiteV1));
  EXPECT_EQ(stored->receipt, first[0]);
  EXPECT_EQ(Stored(id), 0u);  // not in fi's own inbox
  auto row = **store_->GetDelivery(RelayKey("ee", id), "lv");
  EXPECT_EQ(row.state, kStateQueued);
  EXPECT_EQ(row.priority, v1::URGENT);

  // Queued as it is to be sent on: same signed bytes, the trace grown.
  v1::Envelope onward = Queued();
  EXPECT_EQ(onward.header(), env.header());
  EXPECT_EQ(OuterDigest(onward, kSuiteV1), OuterDigest(env, kSuiteV1));
  EXPECT_EQ(onward.routing().deliver_to(), "lv");
  // The trace ends with the authenticated peer fi got it from.
  ASSERT_GE(onward.routing().trace_size(), 1);
  EXPECT_EQ(onward.routing().trace(0), "ee");
  EXPECT_EQ(*onward.routing().trace().rbegin(), "ee");
  EXPECT_EQ(onward.routing().hop_count(),
            static_cast<uint32_t>(onward.routing().trace_size()));

  // Sent again: the same stored receipt, nothing stored twice.
  std::vector<std::string> again;
  ReceiveAt(*receiver_, "fi", "ee", {env, env}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(again[1], first[0]);
  EXPECT_EQ(store_->Deliveries(RelayKey("ee", id))->size(), 1u);
}

// The origin lists itself in the trace; the first relay must not add the
// origin again (one hop is one entry, so kMaxHops counts right).
TEST_F(RelayTest, OneHopIsOneTraceEntry) {
  v1::Envelope env = MakeFor({"lv"}, "lv");
  ASSERT_EQ(ReceiveAt(*receiver_, "fi", "ee", {env})[0].verdict(),
            v1::FORWARDED);
  v1::Envelope onward = Queued();
  ASSERT_EQ(onward.routing().trace_size(), 1) << onward.routing().DebugString();
  EXPECT_EQ(onward.routing().trace(0), "ee");
  EXPECT_EQ(onward.routing().hop_count(), 1u);
}

TEST_F(RelayTest, TwoCopiesInOneBatchAreTakenOnce) {
  v1::Envelope env = MakeFor({"lv"}, "lv");
  std::vector<std::string> raw;
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {env, env}, &raw);
  EXPECT_EQ(bodies[0].verdict(), v1::FORWARDED);
  EXPECT_EQ(raw[1], raw[0]);
  EXPECT_EQ(store_->Deliveries(RelayKey("ee", IdOf(env)))->size(), 1u);
}

TEST_F(RelayTest, NoRelayRuleIsDeferredAndNothingStored) {
  Route(Routes({"ee", "lv"}, {}, {}));
  v1::Envelope env = MakeFor({"lv"}, "lv");
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {env});
  EXPECT_EQ(bodies[0].verdict(), v1::DEFERRED);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(env), "lv")->has_value());
  EXPECT_FALSE(store_->GetMessageFacts(RelayKey("ee", IdOf(env)))->has_value());
  EXPECT_TRUE(notified_.empty());
  // A rule the other way round is not one for this direction.
  Route(Routes({"ee", "lv"}, {}, {{"lv", "ee"}}));
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {env})[0].verdict(),
            v1::DEFERRED);
  // A rule but no way to lv.
  Route(Routes({"ee"}, {}, {{"ee", "lv"}}));
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {env})[0].verdict(),
            v1::DEFERRED);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(env), "lv")->has_value());
}

TEST_F(RelayTest, RoutingLoopIsDeferredAndNothingStored) {
  // The trace already has the relay itself.
  v1::Envelope loop = MakeFor({"lv"}, "lv");
  loop.mutable_routing()->add_trace("ee");
  loop.mutable_routing()->add_trace("fi");
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {loop});
  EXPECT_EQ(bodies[0].verdict(), v1::DEFERRED);
  EXPECT_NE(bodies[0].reason().find("loop"), std::string::npos);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(loop), "lv")->has_value());
  // The trace has the destination.
  v1::Envelope back = MakeFor({"lv"}, "lv");
  back.mutable_routing()->add_trace("ee");
  back.mutable_routing()->add_trace("lv");
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {back})[0].verdict(),
            v1::DEFERRED);
  // Too many hops.
  v1::Envelope far = MakeFor({"lv"}, "lv");
  far.mutable_routing()->add_trace("ee");
  for (int i = 0; i < static_cast<int>(kMaxHops); ++i) {
    far.mutable_routing()->add_trace("h" + std::to_string(i));
  }
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {far})[0].verdict(),
            v1::DEFERRED);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(far), "lv")->has_value());
  EXPECT_TRUE(notified_.empty());
}

TEST_F(RelayTest, OriginNotRoutedThroughThePeerFailsTheBatch) {
  // lv hands fi an envelope of ee: no route says ee via lv.
  v1::Envelope relayed = MakeFor({"lv"}, "lv");
  v1::Envelope direct = MakeFor({"fi"}, "");
  EXPECT_EQ(receiver_->Receive("lv", {relayed}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(receiver_->Receive("lv", {direct}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(relayed), "lv")->has_value());
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(direct))->has_value());
  // A route to ee via another peer does not let lv in either.
  Route(Routes({"lv", "pl"}, {{"ee", "pl"}}, {{"ee", "lv"}}));
  EXPECT_EQ(receiver_->Receive("lv", {direct}).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Nor for a broken envelope (no signed refusal about ee's envelope).
  v1::Envelope broken = direct;
  v1::Header h;
  h.ParseFromString(broken.header());
  h.set_suite_id("not-a-suite");
  broken.set_header(h.SerializeAsString());
  EXPECT_EQ(receiver_->Receive("lv", {broken}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(notified_.empty());
}

TEST_F(RelayTest, FinalRecipientAcceptsAnOriginRoutedThroughTheRelay) {
  Lv lv = MakeLv("fi");
  v1::Envelope env = MakeFor({"lv"}, "lv");
  auto bodies = ReceiveAt(*lv.receiver, "lv", "fi", {env});
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_TRUE((*lv.store->FindInbox("ee", IdOf(env))).has_value());
  // Not from a peer ee is not routed through.
  v1::Envelope other = MakeFor({"lv"}, "lv");
  EXPECT_EQ(lv.receiver->Receive("pl", {other}).status().code(),
            absl::StatusCode::kPermissionDenied);
  // ee itself still may.
  v1::Envelope own = MakeFor({"lv"}, "");
  EXPECT_EQ(ReceiveAt(*lv.receiver, "lv", "ee", {own})[0].verdict(),
            v1::ACCEPTED);
}

TEST_F(RelayTest, TamperedEnvelopeIsRefusedAtTheRelayAndNotStored) {
  v1::Envelope real = MakeFor({"lv"}, "lv");
  v1::Envelope tampered = real;
  std::string ct = tampered.ciphertext();
  ct[ct.size() / 2] ^= 1;
  tampered.set_ciphertext(ct);
  auto receipts = receiver_->Receive("ee", {tampered});
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  v1::Receipt r;
  ASSERT_TRUE(r.ParseFromString((*receipts)[0]));
  auto body = VerifyReceipt(r, directory_, "fi", "ee", IdOf(tampered),
                            OuterDigest(tampered, kSuiteV1));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->verdict(), v1::REFUSED);
  EXPECT_EQ(body->refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_FALSE(store_->FindRelayed("ee", IdOf(real), "lv")->has_value());
  EXPECT_TRUE(notified_.empty());
  // The real one still goes through.
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {real})[0].verdict(),
            v1::FORWARDED);
}

TEST_F(RelayTest, SameIdOtherContentForTheSameDestinationIsAConflict) {
  v1::Envelope a = MakeFor({"lv"}, "lv", "original");
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {a})[0].verdict(), v1::FORWARDED);
  v1::Envelope b = MakeFor({"lv"}, "lv", "replacement", IdOf(a));
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {b});
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_CONFLICT);
  EXPECT_EQ((*store_->FindRelayed("ee", IdOf(a), "lv"))->outer_digest,
            OuterDigest(a, kSuiteV1));
}

// The id of a relayed message with other content for another destination
// is refused on its own (CONFLICT); the rest of the batch goes through.
TEST_F(RelayTest, OtherContentForAnotherDestinationIsRefusedAlone) {
  TestPki::Node lt = pki_->MakeNode(ca_, "lt");
  directory_.Add(lt);
  Route(Routes({"ee", "lv", "lt"}, {}, {{"ee", "lv"}, {"ee", "lt"}}));
  v1::Envelope a = MakeFor({"lv", "lt"}, "lv", "original");
  EXPECT_EQ(ReceiveAt(*receiver_, "fi", "ee", {a})[0].verdict(), v1::FORWARDED);
  v1::Envelope b = MakeFor({"lv", "lt"}, "lt", "replacement", IdOf(a));
  v1::Envelope good = MakeFor({"lv"}, "lv");
  // The sender retries the batch as it is; it never goes through.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto receipts = receiver_->Receive("ee", {b, good});
    EXPECT_TRUE(receipts.ok())
        << "attempt " << attempt << ": " << receipts.status();
  }
  auto bodies = ReceiveAt(*receiver_, "fi", "ee", {b, good});
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_CONFLICT);
  EXPECT_EQ(bodies[1].verdict(), v1::FORWARDED);
}

class AcceptReturnsTest : public RelayTest {
 protected:
  // fi relays ee -> lv through lt (lv via lt); lv takes ee's envelopes from
  // lt. One envelope is relayed, its custody taken by lt, and lv's
  // end-to-end receipt made.
  void SetUp() override {
    RelayTest::SetUp();
    Route(Routes({"ee", "lt"}, {{"lv", "lt"}}, {{"ee", "lv"}}));
    env_ = MakeFor({"lv"}, "lv");
    key_ = RelayKey("ee", IdOf(env_));
    ASSERT_EQ(ReceiveAt(*receiver_, "fi", "ee", {env_})[0].verdict(),
              v1::FORWARDED);
    EXPECT_EQ(notified_, std::vector<std::string>{"lt"});
    notified_.clear();
    // Sent on to lt, which took custody; lt passed it to lv.
    onward_ = Queued();
    ASSERT_TRUE(store_
                    ->Settle({{key_, "lv", kStateForwarded, "forwarded by lt",
                               "custody-of-lt", clock_.NowUnixMs(), ""}})
                    .ok());
    lv_node_ = MakeLv("lt");
    std::vector<std::string> raw;
    auto bodies = ReceiveAt(*lv_node_.receiver, "lv", "lt", {onward_}, &raw);
    ASSERT_EQ(bodies.size(), 1u);
    ASSERT_EQ(bodies[0].verdict(), v1::ACCEPTED);
    ASSERT_TRUE(end_to_end_.ParseFromString(raw[0]));
  }

  std::string State() { return (**store_->GetDelivery(key_, "lv")).state; }
  size_t Returns(const std::string& peer) {
    return store_->NextReturns(peer, 100)->size();
  }

  v1::Envelope env_;
  v1::Envelope onward_;  // as fi sent it on
  std::string key_;
  Lv lv_node_;
  v1::Receipt end_to_end_;
};

TEST_F(AcceptReturnsTest, SettlesTheRelayCopyAndQueuesItTowardsTheOrigin) {
  EXPECT_EQ(State(), kStateForwarded);
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {end_to_end_}).ok());
  EXPECT_EQ(State(), kStateDelivered);
  auto returns = *store_->NextReturns("ee", 10);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns[0].receipt, end_to_end_.SerializeAsString());
  EXPECT_EQ(notified_, std::vector<std::string>{"ee"});
  EXPECT_EQ(Returns("lt"), 0u);
  // A duplicate of the envelope is now answered with the end-to-end receipt.
  auto again = *receiver_->Receive("ee", {env_});
  EXPECT_EQ(again[0], end_to_end_.SerializeAsString());

  // The same again: nothing changes, nothing more queued.
  notified_.clear();
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {end_to_end_}).ok());
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {end_to_end_, end_to_end_}).ok());
  EXPECT_EQ(State(), kStateDelivered);
  EXPECT_EQ(Returns("ee"), 1u);
  EXPECT_TRUE(notified_.empty());
}

TEST_F(AcceptReturnsTest, GarbledOrForgedReceiptsAreDropped) {
  // A bit flipped in the signature.
  v1::Receipt garbled = end_to_end_;
  std::string sig = garbled.signature().signature();
  sig[sig.size() / 2] ^= 1;
  garbled.mutable_signature()->set_signature(sig);
  // lv's body with another verdict, lv's signature as it was.
  v1::Receipt altered_body = end_to_end_;
  v1::ReceiptBody b;
  ASSERT_TRUE(b.ParseFromString(altered_body.body()));
  b.set_verdict(v1::REFUSED);
  b.set_refusal(v1::REFUSAL_POLICY);
  altered_body.set_body(b.SerializeAsString());
  // The same body signed by another node (ee, not lv).
  v1::ReceiptBody accepted;
  ASSERT_TRUE(accepted.ParseFromString(end_to_end_.body()));
  auto by_ee = SignReceipts(*SignerOf(ee_), {accepted});
  ASSERT_TRUE(by_ee.ok());
  v1::Receipt not_parsing;
  not_parsing.set_body("\xff\xff garbage");

  for (const v1::Receipt& r :
       {garbled, altered_body, (*by_ee)[0], not_parsing}) {
    EXPECT_TRUE(receiver_->AcceptReturns("lt", {r}).ok());
    EXPECT_EQ(State(), kStateForwarded);
    EXPECT_EQ(Returns("ee"), 0u);
  }
  EXPECT_TRUE(notified_.empty());
  // The real one still settles it.
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {garbled, end_to_end_}).ok());
  EXPECT_EQ(State(), kStateDelivered);
  EXPECT_EQ(Returns("ee"), 1u);
}

TEST_F(AcceptReturnsTest, ReceiptFromTheWrongPeerIsDropped) {
  for (const char* peer : {"ee", "lv", "pl"}) {
    EXPECT_TRUE(receiver_->AcceptReturns(peer, {end_to_end_}).ok()) << peer;
    EXPECT_EQ(State(), kStateForwarded) << peer;
  }
  EXPECT_EQ(Returns("ee"), 0u);
  EXPECT_TRUE(notified_.empty());
}

TEST_F(AcceptReturnsTest, ReceiptForAMessageNotRelayedIsDropped) {
  // lv's valid receipt for an envelope fi never relayed.
  v1::Envelope other = MakeFor({"lv"}, "lv");
  std::vector<std::string> raw;
  ASSERT_EQ(
      ReceiveAt(*lv_node_.receiver, "lv", "lt", {other}, &raw)[0].verdict(),
      v1::ACCEPTED);
  v1::Receipt r;
  ASSERT_TRUE(r.ParseFromString(raw[0]));
  EXPECT_TRUE(receiver_->AcceptReturns("lt", {r}).ok());
  EXPECT_FALSE(
      store_->GetMessageFacts(RelayKey("ee", IdOf(other)))->has_value());
  EXPECT_EQ(Returns("ee"), 0u);
  EXPECT_EQ(State(), kStateForwarded);
}

TEST_F(AcceptReturnsTest, OwnMessageIsSettledAndNotReturnedFurther) {
  // fi's own message to lv, sent through lt.
  Sealer sealer("fi", SignerOf(fi_), &directory_);
  v1::Header h;
  h.set_message_id(NewMessageId());
  h.set_origin("fi");
  h.add_recipients("lv");
  h.set_created_unix_ms(clock_.NowUnixMs());
  h.set_priority(v1::ROUTINE);
  h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
  v1::Payload p;
  p.set_kind("note");
  p.set_body("own");
  auto env = sealer.Seal(h, p);
  ASSERT_TRUE(env.ok());
  ASSERT_TRUE(sealer.SignOuter({&*env}).ok());
  OutgoingMessage m;
  m.id = h.message_id();
  m.recipients = {"lv"};
  m.priority = v1::ROUTINE;
  m.created_ms = h.created_unix_ms();
  m.expires_ms = h.expires_unix_ms();
  m.kind = "note";
  m.envelope = env->SerializeAsString();
  m.outer_digest = OuterDigest(*env, kSuiteV1);
  m.submitter = "alice";
  m.request_hash = "hash";
  ASSERT_TRUE(store_->InsertOutgoing(m).ok());
  env->mutable_routing()->set_deliver_to("lv");
  auto receipts = lv_node_.receiver->Receive("lt", {*env});
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  v1::Receipt r;
  ASSERT_TRUE(r.ParseFromString((*receipts)[0]));
  auto body = VerifyReceipt(r, directory_, "lv", "fi", m.id, m.outer_digest);
  ASSERT_TRUE(body.ok()) << body.status();
  ASSERT_EQ(body->verdict(), v1::ACCEPTED);

  // Not from a peer that is not the way to lv.
  ASSERT_TRUE(receiver_->AcceptReturns("ee", {r}).ok());
  EXPECT_EQ((**store_->GetDelivery(m.id, "lv")).state, kStateQueued);
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {r}).ok());
  auto row = **store_->GetDelivery(m.id, "lv");
  EXPECT_EQ(row.state, kStateDelivered);
  EXPECT_EQ(row.receipt, r.SerializeAsString());
  for (const char* peer : {"ee", "lt", "lv", "fi"}) {
    EXPECT_EQ(Returns(peer), 0u) << peer;
  }
  EXPECT_TRUE(notified_.empty());
}

TEST_F(AcceptReturnsTest, RefusalOfAlteredBytesIsFinalAndReturned) {
  // lt altered what it passed on; lv refused those bytes (it holds the real
  // envelope already, so: a conflict), signed over their digest.
  v1::Envelope altered = onward_;
  std::string ct = altered.ciphertext();
  ct[ct.size() / 2] ^= 1;
  altered.set_ciphertext(ct);
  auto receipts = lv_node_.receiver->Receive("lt", {altered});
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  v1::Receipt refusal;
  ASSERT_TRUE(refusal.ParseFromString((*receipts)[0]));
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {refusal}).ok());
  auto row = **store_->GetDelivery(key_, "lv");
  EXPECT_EQ(row.state, kStateRejected);
  EXPECT_NE(row.reason.find("altered on the way"), std::string::npos)
      << row.reason;
  EXPECT_EQ(Returns("ee"), 1u);
  // An ACCEPTED for other bytes is never good.
  v1::ReceiptBody b;
  ASSERT_TRUE(b.ParseFromString(end_to_end_.body()));
  b.set_outer_digest(OuterDigest(altered, kSuiteV1));
  auto forged = SignReceipts(*SignerOf(lv_), {b});
  ASSERT_TRUE(forged.ok());
  bool is_altered = false;
  EXPECT_FALSE(VerifyEndToEndReceipt((*forged)[0], directory_, "lv", "ee",
                                     IdOf(env_), OuterDigest(env_, kSuiteV1),
                                     &is_altered)
                   .ok());
}

// A relay that had an altered copy refused first cannot make the delivery
// rejected for good: the recipient's ACCEPTED for the real bytes wins.
TEST_F(AcceptReturnsTest, AcceptedWinsOverARefusalOfAlteredBytes) {
  v1::Envelope altered = onward_;
  std::string ct = altered.ciphertext();
  ct[ct.size() / 2] ^= 1;
  altered.set_ciphertext(ct);
  auto receipts = lv_node_.receiver->Receive("lt", {altered});
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  v1::Receipt refusal;
  ASSERT_TRUE(refusal.ParseFromString((*receipts)[0]));
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {refusal}).ok());
  ASSERT_TRUE(receiver_->AcceptReturns("lt", {end_to_end_}).ok());
  EXPECT_EQ(State(), kStateDelivered);
  bool returned = false;
  auto returns = store_->NextReturns("ee", 10);  // kept alive
  ASSERT_TRUE(returns.ok());
  for (const PendingReturn& p : *returns) {
    returned = returned || p.receipt == end_to_end_.SerializeAsString();
  }
  EXPECT_TRUE(returned);
}

// Per-peer policy (SetPolicy) and the audit head every receipt carries.
class PolicyTest : public ReceiverTest {
 protected:
  // An envelope from `from` (ee or lv) to fi with a payload of `kind` and
  // its (empty) section; `section` overrides which section is set.
  v1::Envelope MakeKind(const TestPki::Node& from, const std::string& kind,
                        const std::string& purpose = "") {
    Sealer sealer(from.id, SignerOf(from), &directory_);
    v1::Header h;
    h.set_message_id(NewMessageId());
    h.set_origin(from.id);
    h.add_recipients("fi");
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_priority(v1::ROUTINE);
    h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
    v1::Payload p;
    p.set_kind(kind);
    p.set_body("body of a " + kind);
    // The section of the kind (empty: the receiver does not validate it).
    if (const auto* f = p.GetDescriptor()->FindFieldByName(
            std::string(kinds::ContentField(kind)))) {
      p.GetReflection()->MutableMessage(&p, f);
    }
    p.set_case_ref("CASE-7");
    if (!purpose.empty()) p.mutable_markings()->set_purpose(purpose);
    auto env = sealer.Seal(h, p);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(sealer.SignOuter({&*env}).ok());
    return *env;
  }

  // Receives from `peer` (the origin of every envelope) and checks each
  // receipt is fi's, for its envelope.
  std::vector<v1::ReceiptBody> ReceiveFrom(
      const std::string& peer, const std::vector<v1::Envelope>& envs,
      std::vector<std::string>* raw = nullptr) {
    auto receipts = receiver_->Receive(peer, envs);
    EXPECT_TRUE(receipts.ok()) << receipts.status();
    std::vector<v1::ReceiptBody> out;
    if (!receipts.ok()) return out;
    for (size_t i = 0; i < receipts->size(); ++i) {
      v1::Receipt r;
      EXPECT_TRUE(r.ParseFromString((*receipts)[i]));
      auto body = VerifyReceipt(r, directory_, "fi", peer, IdOf(envs[i]),
                                OuterDigest(envs[i], kSuiteV1));
      EXPECT_TRUE(body.ok()) << body.status();
      out.push_back(body.ok() ? *body : v1::ReceiptBody());
      if (raw) raw->push_back((*receipts)[i]);
    }
    return out;
  }

  AuditHead Head() { return *store_->GetAuditHead(); }

  static void ExpectHead(const v1::ReceiptBody& b, const AuditHead& want) {
    auto head = DecodeAuditHead(b.audit_head());
    ASSERT_TRUE(head.has_value()) << b.audit_head().size() << " bytes";
    EXPECT_EQ(head->seq, want.seq);
    EXPECT_EQ(head->hash, want.hash);
  }
};

TEST_F(PolicyTest, KindOutsideThePolicyIsRefusedSignedStoredAndAudited) {
  SetPolicy({{"ee", {"referral"}}});
  const v1::Envelope note = MakeKind(ee_, "note", "Art. 7 LED");
  std::vector<std::string> first;
  auto bodies = ReceiveFrom("ee", {note}, &first);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_POLICY);
  EXPECT_NE(bodies[0].reason().find("policy"), std::string::npos)
      << bodies[0].reason();
  EXPECT_NE(bodies[0].reason().find("note"), std::string::npos)
      << bodies[0].reason();

  // Remembered (a retry gets the same signed refusal), never listed.
  const std::string id = IdOf(note);
  auto found = *store_->FindInbox("ee", id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->receipt, first[0]);
  EXPECT_TRUE(store_->GetInbox(id, "ee")->empty());
  EXPECT_TRUE(store_->GetInbox(id, "")->empty());
  EXPECT_EQ(Stored(id), 0u);
  EXPECT_FALSE(store_->FindMessage(id)->has_value());
  EXPECT_TRUE(store_->Thread("CASE-7")->empty());

  auto audit = *store_->ListAudit(0, 10);
  ASSERT_EQ(audit.size(), 1u);
  const AuditEntry& e = audit[0].entry;
  EXPECT_EQ(e.action, kAuditRefuse);
  EXPECT_EQ(e.actor, kAuditNodeActor);
  EXPECT_EQ(e.message_id, id);
  EXPECT_EQ(e.origin, "ee");
  EXPECT_EQ(e.peer, "ee");
  EXPECT_EQ(e.kind, "note");
  EXPECT_EQ(e.purpose, "Art. 7 LED");
  EXPECT_EQ(e.detail, bodies[0].reason());

  std::vector<std::string> again;
  ReceiveFrom("ee", {note}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(store_->ListAudit(0, 10)->size(), 1u);  // not refused twice
}

TEST_F(PolicyTest, KindInThePolicyAndOriginsWithoutOneAreAccepted) {
  SetPolicy({{"ee", {"referral", "referral.response"}}});
  const v1::Envelope referral = MakeKind(ee_, "referral", "Art. 8 LED");
  auto bodies = ReceiveFrom("ee", {referral});
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(Stored(IdOf(referral)), 1u);
  // lv has no policy: any kind.
  const v1::Envelope alert = MakeKind(lv_, "alert");
  const v1::Envelope note = MakeKind(lv_, "note");
  bodies = ReceiveFrom("lv", {alert, note});
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(bodies[1].verdict(), v1::ACCEPTED);
  auto thread = *store_->Thread("CASE-7");
  EXPECT_EQ(thread.size(), 3u);

  auto audit = *store_->ListAudit(0, 10);
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].entry.action, kAuditCollect);
  EXPECT_EQ(audit[0].entry.message_id, IdOf(referral));
  EXPECT_EQ(audit[0].entry.kind, "referral");
  EXPECT_EQ(audit[0].entry.purpose, "Art. 8 LED");
  EXPECT_EQ(audit[0].entry.detail, "stored");
  EXPECT_EQ(audit[1].entry.origin, "lv");
  EXPECT_EQ(audit[2].entry.kind, "note");
  EXPECT_EQ(store_->VerifyAuditChain()->first_bad_seq, 0u);
}

// A kind label that does not fit the content would get round roles and
// policy: a note carrying a referral section, an unknown kind, a kind
// without its section are refused for good (signed) and not in the inbox.
TEST_F(PolicyTest, KindMustMatchTheContentSection) {
  SetPolicy({{"ee", {"note"}}});
  v1::Envelope disguised = MakeKind(ee_, "note");
  v1::Envelope unknown = MakeKind(ee_, "gossip");
  v1::Envelope bare = MakeKind(lv_, "referral");
  for (v1::Envelope* e : {&disguised, &unknown, &bare}) {
    v1::Header h;
    ASSERT_TRUE(h.ParseFromString(e->header()));
  }
  // Re-seal the note with a referral section inside.
  {
    Sealer sealer(ee_.id, SignerOf(ee_), &directory_);
    v1::Header h;
    ASSERT_TRUE(h.ParseFromString(disguised.header()));
    v1::Payload p;
    p.set_kind("note");
    p.mutable_referral()->set_risk_summary("personal data");
    auto env = sealer.Seal(h, p);
    ASSERT_TRUE(env.ok());
    ASSERT_TRUE(sealer.SignOuter({&*env}).ok());
    disguised = *env;
  }
  {
    Sealer sealer(lv_.id, SignerOf(lv_), &directory_);
    v1::Header h;
    ASSERT_TRUE(h.ParseFromString(bare.header()));
    v1::Payload p;
    p.set_kind("referral");  // no referral section
    auto env = sealer.Seal(h, p);
    ASSERT_TRUE(env.ok());
    ASSERT_TRUE(sealer.SignOuter({&*env}).ok());
    bare = *env;
  }
  auto bodies = ReceiveFrom("ee", {disguised, unknown});
  for (const auto& b : bodies) {
    EXPECT_EQ(b.verdict(), v1::REFUSED);
    EXPECT_EQ(b.refusal(), v1::REFUSAL_MALFORMED);
    EXPECT_NE(b.reason().find("does not match the content"), std::string::npos)
        << b.reason();
  }
  bodies = ReceiveFrom("lv", {bare});
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(Stored(IdOf(disguised)), 0u);
  EXPECT_EQ(Stored(IdOf(bare)), 0u);
}

TEST_F(PolicyTest, AnEmptyPolicyForAnOriginAcceptsNothingFromIt) {
  // As SetPolicy reads: the origin is in the map, with no kinds. (The node
  // only puts peers with accept_kinds in the map.)
  SetPolicy({{"ee", {}}});
  EXPECT_EQ(ReceiveFrom("ee", {MakeKind(ee_, "note")})[0].refusal(),
            v1::REFUSAL_POLICY);
  SetPolicy({});
  EXPECT_EQ(ReceiveFrom("ee", {MakeKind(ee_, "note")})[0].verdict(),
            v1::ACCEPTED);
}

TEST_F(PolicyTest, ReceiptsCarryTheAuditHeadBeforeTheirBatch) {
  SetPolicy({{"ee", {"referral"}}});
  ASSERT_EQ(Head().seq, 0u);
  // First batch: a refusal and an acceptance, both with the empty head.
  auto bodies =
      ReceiveFrom("ee", {MakeKind(ee_, "note"), MakeKind(ee_, "referral")});
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[1].verdict(), v1::ACCEPTED);
  for (const auto& b : bodies) ExpectHead(b, AuditHead{0, GenesisHash()});
  const AuditHead after_first = Head();
  ASSERT_EQ(after_first.seq, 2u);  // the refusal and the collection

  // Second batch: the head as the first left it.
  const v1::Envelope later = MakeKind(lv_, "sitrep");
  bodies = ReceiveFrom("lv", {later});
  ExpectHead(bodies[0], after_first);
  EXPECT_EQ(Head().seq, 3u);

  // A refusal that is not stored (garbage) carries the head too.
  v1::Envelope garbage;
  garbage.set_header("\xff\xff not a header");
  garbage.set_ciphertext("nothing");
  ExpectHead(UncheckedBody("ee", garbage), Head());
  EXPECT_EQ(Head().seq, 3u);

  // A duplicate gets its stored receipt, with the head of its time.
  std::vector<std::string> raw;
  bodies = ReceiveFrom("lv", {later}, &raw);
  ExpectHead(bodies[0], after_first);
  EXPECT_EQ(Head().seq, 3u);
}

}  // namespace
}  // namespace kontor
