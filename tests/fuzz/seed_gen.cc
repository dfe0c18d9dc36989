// Writes the seed corpora and dictionaries of the fuzz targets:
//   fuzz_seed_gen OUT_DIR   -> OUT_DIR/corpus/<target>/..., OUT_DIR/dict/...
// Seeds are small valid inputs: structured inputs whose fixups make real
// envelopes and receipts with the harness PKI at run time (so they stay
// valid whatever keys a run has), templates of every kind, configs like
// deploy/federation.sh writes. tests/fuzz/run.sh --regenerate-corpus runs it.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "daemon/attachment/chunks.h"
#include "daemon/common/kinds.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "kontor/v1/config.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

std::string g_out;
constexpr int64_t kTemplateNow = 1798761600000;  // 2027-01-01

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  const std::string dir = absl::StrCat(g_out, "/corpus/", target);
  fs::create_directories(dir);
  std::ofstream(absl::StrCat(dir, "/", name), std::ios::binary) << bytes;
}

void WriteProto(const std::string& target, const std::string& name,
                const google::protobuf::Message& m) {
  Write(target, name, m.SerializeAsString());
}

v1::Payload PayloadOf(const std::string& kind) {
  kinds::TemplateOptions opts;
  opts.now_ms = kTemplateNow;
  v1::Payload p;
  auto json = kinds::TemplateJson(kind, opts);
  if (json.ok()) kinds::ParsePayloadJson(*json, &p).IgnoreError();
  return p;
}

v1::Header HeaderFor(uint64_t id, const std::string& origin,
                     std::vector<std::string> recipients) {
  v1::Header h;
  h.set_message_id(MessageIdFor(id));
  h.set_origin(origin);
  for (const auto& r : recipients) h.add_recipients(r);
  h.set_priority(v1::ROUTINE);
  h.set_created_unix_ms(-1000);  // rebased: offsets from the harness clock
  h.set_expires_unix_ms(3600 * 1000);
  h.set_suite_id(std::string(kSuiteV1));
  return h;
}

EnvelopeInput ValidEnvelope(uint64_t id, const v1::Payload& payload) {
  EnvelopeInput in;
  *in.mutable_header() = HeaderFor(id, "ee", {"fi"});
  in.set_rebase_times(true);
  Seal* seal = in.mutable_seal();
  seal->set_fill_from_header(true);
  *seal->mutable_payload() = payload;
  seal->set_signer(EE);
  in.mutable_outer()->set_signer(EE);
  return in;
}

void Envelopes() {
  v1::Payload note;
  note.set_kind("note");
  note.set_subject("hello");
  note.set_body("a note from ee to fi");
  note.set_content_type("text/plain; charset=utf-8");
  WriteProto("envelope", "note", ValidEnvelope(1, note));
  uint64_t id = 10;
  for (const std::string& kind : MessageKinds()) {
    if (kind == "note") continue;
    WriteProto("envelope", "kind-" + kind,
               ValidEnvelope(id++, PayloadOf(kind)));
  }
  EnvelopeInput multi = ValidEnvelope(2, note);
  *multi.mutable_header() = HeaderFor(2, "ee", {"fi", "lv"});
  multi.mutable_seal()->add_encrypt_to(FI);
  multi.mutable_seal()->add_encrypt_to(LV);
  multi.mutable_outer()->set_batch_size(5);
  multi.mutable_outer()->set_batch_index(3);
  WriteProto("envelope", "two-recipients-batch", multi);
  EnvelopeInput relay = ValidEnvelope(3, note);
  *relay.mutable_header() = HeaderFor(3, "ee", {"lv"});
  relay.mutable_seal()->clear_encrypt_to();
  relay.mutable_seal()->add_encrypt_to(LV);
  relay.set_recipient("lv");
  relay.mutable_envelope()->mutable_routing()->add_trace("ee");
  relay.mutable_envelope()->mutable_routing()->set_deliver_to("lv");
  WriteProto("envelope", "relay-view", relay);
  EnvelopeInput chunks = ValidEnvelope(4, note);
  v1::AttachmentChunkRef* c = chunks.mutable_envelope()->add_chunks();
  c->set_size(48);
  c->set_sha256(std::string(32, 'h'));
  c->set_last(true);
  WriteProto("envelope", "with-chunk-list", chunks);
  // The same, as bytes: an envelope sealed now (its signatures fail with
  // another run's keys, but its structure is a real one).
  EnvelopeInput raw;
  *raw.mutable_envelope() = BuildEnvelope(ValidEnvelope(5, note));
  WriteProto("envelope", "raw-sealed", raw);
}

void Routing() {
  RoutingInput in;
  in.set_peer("ee");
  RoutingInput::Item* relayed = in.add_items();
  relayed->set_origin(EE);
  relayed->add_recipients(LV);
  relayed->mutable_routing()->add_trace("ee");
  relayed->mutable_routing()->set_deliver_to("lv");
  relayed->mutable_routing()->set_hop_count(1);
  RoutingInput::Item* direct = in.add_items();
  direct->set_origin(EE);
  direct->add_recipients(FI);
  direct->mutable_routing()->add_trace("ee");
  WriteProto("routing", "relay-and-direct", in);
  RoutingInput dup = in;
  dup.add_items()->set_duplicate(true);
  WriteProto("routing", "duplicate", dup);
  RoutingInput back;
  back.set_peer("lv");
  RoutingInput::Item* item = back.add_items();
  item->set_origin(LV);
  item->add_recipients(EE);
  item->mutable_routing()->add_trace("lv");
  item->mutable_routing()->set_deliver_to("ee");
  RouteConfig* routes = back.mutable_routes();
  routes->add_direct("ee");
  routes->add_direct("lv");
  (*routes->mutable_via())["ua"] = "lv";
  auto* pair = routes->add_relay();
  pair->set_origin("lv");
  pair->set_destination("ee");
  auto* q = routes->add_queries();
  q->set_origin("ua");
  q->set_destination("ee");
  WriteProto("routing", "via-route", back);
}

v1::ReceiptBody Body(uint64_t id, const std::string& origin,
                     const std::string& recipient, const std::string& outer,
                     v1::Verdict verdict) {
  v1::ReceiptBody b;
  b.set_version(std::string(kReceiptVersion));
  b.set_message_id(MessageIdFor(id));
  b.set_origin(origin);
  b.set_recipient(recipient);
  b.set_outer_digest(outer);
  b.set_time_unix_ms(0);
  b.set_verdict(verdict);
  b.set_audit_head(std::string(8, '\0') + std::string(32, 'a'));
  return b;
}

void Receipts() {
  ReceiptInput in;
  in.set_signer(LV);
  in.set_recipient(LV);
  in.set_origin(FI);
  in.set_message_id(MessageIdFor(1));
  in.set_outer_digest(Sha256("outer"));
  in.set_inner_digest(Sha256("inner"));
  for (v1::Verdict v : {v1::ACCEPTED, v1::REFUSED, v1::DEFERRED}) {
    ReceiptSpec* s = in.add_receipts();
    *s->mutable_body() = Body(1, "fi", "lv", Sha256("outer"), v);
    if (v == v1::ACCEPTED) s->mutable_body()->set_inner_digest(Sha256("inner"));
    if (v == v1::REFUSED) {
      s->mutable_body()->set_outer_digest(Sha256("altered"));
      s->mutable_body()->set_refusal(v1::REFUSAL_BAD_SIGNATURE);
      s->mutable_body()->set_reason("outer signature: no");
    }
    s->set_sign(true);
    s->set_rebase_time(true);
  }
  std::vector<std::string> leaves;
  for (int i = 0; i < 7; ++i) leaves.push_back(MerkleLeafHash(Sha256("l")));
  in.set_leaf(leaves[3]);
  in.set_index(3);
  in.set_count(7);
  for (const std::string& h : MerklePath(leaves, 3)) in.add_path(h);
  in.set_leaves(7);
  WriteProto("receipt", "batch-of-three", in);
  ReceiptInput forged = in;
  forged.set_signer(EE);
  WriteProto("receipt", "wrong-signer", forged);
}

void ChunkLists() {
  const std::string dir = ScratchDir("seed-chunks");
  ChunkListInput in;
  for (uint32_t a = 0; a < 2; ++a) {
    auto enc = ChunkEncryptor::Create(absl::StrCat(dir, "/", a),
                                      std::string(32, 'k'), a, 64);
    (*enc)->Write(std::string(a == 0 ? 150 : 10, 'x')).IgnoreError();
    auto summary = (*enc)->Finish();
    for (const ChunkInfo& c : summary->chunks) {
      v1::AttachmentChunkRef* r = in.add_refs();
      r->set_attachment(a);
      r->set_index(c.index);
      r->set_size(c.size);
      r->set_sha256(c.sha256);
      r->set_last(c.last);
    }
  }
  in.set_max_total_bytes(1 << 20);
  WriteProto("chunk_list", "two-attachments", in);
  ChunkListInput empty;
  v1::AttachmentChunkRef* r = empty.add_refs();
  r->set_size(16);
  r->set_sha256(std::string(32, 's'));
  r->set_last(true);
  WriteProto("chunk_list", "empty-attachment", empty);
}

void ChunkFrames() {
  ChunkFrameInput in;
  in.set_plaintext(std::string(200, 'p') + "the end");
  in.set_chunk_plain_bytes(63);
  in.set_attachment_index(1);
  WriteProto("chunk_frame", "four-chunks", in);
  ChunkFrameInput t = in;
  auto* tamper = t.add_tamper();
  tamper->set_chunk(1);
  tamper->set_offset(5);
  tamper->set_xor_(1);
  Frame* f = t.add_frames();
  f->set_attachment(0);
  f->set_index(0);
  f->set_data(std::string(48, 'c'));
  f = t.add_frames();
  f->set_attachment(1);
  f->set_index(2);
  f->set_data(std::string(16, 'd'));
  WriteProto("chunk_frame", "tampered-and-frames", t);
  ChunkFrameInput swap = in;
  swap.add_tamper()->set_swap_with_next(true);
  swap.set_flip_last(true);
  WriteProto("chunk_frame", "swapped", swap);
}

void Federation() {
  FederationInput in;
  FederationRequest* ex = in.add_requests();
  ex->set_peer(EE);
  v1::Payload note;
  note.set_kind("note");
  note.set_body("hi");
  *ex->add_envelopes() = ValidEnvelope(10, note);
  *ex->add_envelopes() = ValidEnvelope(11, PayloadOf("referral"));
  ex->mutable_exchange()->set_batch_seq(1);
  FederationRequest* ret = in.add_requests();
  ret->set_peer(LV);
  ret->set_signer(LV);
  ret->mutable_returns();
  ReceiptSpec* s = ret->add_receipts();
  *s->mutable_body() = Body(kSentId, "fi", "lv", SentDigest(), v1::ACCEPTED);
  s->mutable_body()->set_inner_digest(SentInnerDigest());
  s->set_sign(true);
  s->set_rebase_time(true);
  s = ret->add_receipts();
  *s->mutable_body() =
      Body(kRelayedId, "ee", "lv", RelayedDigest(), v1::REFUSED);
  s->set_sign(true);
  s->set_rebase_time(true);
  FederationRequest* chunk = in.add_requests();
  chunk->set_peer(EE);
  chunk->mutable_chunk()->set_origin("ee");
  chunk->mutable_chunk()->set_message_id(MessageIdFor(12));
  chunk->mutable_chunk()->set_data(std::string(48, 'c'));
  FederationRequest* query = in.add_requests();
  query->set_peer(EE);
  query->mutable_query()->set_origin("ee");
  query->mutable_query()->set_message_id(MessageIdFor(12));
  FederationRequest* witness = in.add_requests();
  witness->set_peer(LV);
  witness->mutable_witness()->set_limit(8);
  WriteProto("federation", "all-requests", in);

  // An envelope with a chunk list, its chunk first.
  FederationInput att;
  FederationRequest* put = att.add_requests();
  put->set_peer(EE);
  put->mutable_chunk()->set_origin("ee");
  put->mutable_chunk()->set_message_id(MessageIdFor(13));
  put->mutable_chunk()->set_data(std::string(40, 'z'));
  FederationRequest* send = att.add_requests();
  send->set_peer(EE);
  EnvelopeInput env = ValidEnvelope(13, note);
  v1::AttachmentChunkRef* ref = env.mutable_envelope()->add_chunks();
  ref->set_size(40);
  ref->set_sha256(Sha256(std::string(40, 'z')));
  ref->set_last(true);
  v1::Attachment* a = env.mutable_seal()->mutable_payload()->add_attachments();
  a->set_name("a.txt");
  a->set_size(24);
  a->set_sha256(std::string(32, 's'));
  a->set_key(std::string(32, 'k'));
  a->set_chunk_count(1);
  *send->add_envelopes() = env;
  WriteProto("federation", "attachment", att);
}

void Configs() {
  const World& w = GetWorld();
  v1::NodeConfig c = testing::TestPki::Config(
      w.node(FI), {w.node(EE), w.node(LV)}, {7001, 7003}, w.ca,
      "/var/lib/kontor", "/run/kontor/fi.sock", 7002);
  std::string text;
  google::protobuf::TextFormat::PrintToString(c, &text);
  Write("config", "testpki", text);
  // As deploy/federation.sh writes them (ee, fi, lv; lv reached via fi).
  const std::string federation =
      "# Node fi of the loopback federation.\n"
      "node_id: \"fi\"\n"
      "data_dir: \"data\"\n"
      "listen_address: \"127.0.0.1:7002\"\n"
      "local_socket: \"/tmp/kontor-fi.sock\"\n"
      "tls { cert: \"tls.crt\" key: \"tls.key\" }\n"
      "signing { cert: \"signing.crt\" key: \"signing.key\" }\n"
      "encryption { cert: \"encryption.crt\" key: \"encryption.key\" }\n"
      "trusted_cas {\n"
      "  cert: \"../pki/ca/federation-ca.crt\"\n"
      "  crl: \"../pki/ca/federation-ca.crl.pem\"\n"
      "  allowed_node_ids: \"ee\"\n"
      "  allowed_node_ids: \"fi\"\n"
      "  allowed_node_ids: \"lv\"\n"
      "}\n"
      "peers { id: \"ee\" address: \"127.0.0.1:7001\" signing_certs: "
      "\"../pki/ee/signing.crt\" encryption_cert: \"../pki/ee/encryption.crt\" "
      "}\n"
      "peers { id: \"lv\" address: \"127.0.0.1:7003\" signing_certs: "
      "\"../pki/lv/signing.crt\" encryption_cert: \"../pki/lv/encryption.crt\" "
      "accept_kinds: \"note\" send_kinds: \"referral\" }\n"
      "peers { id: \"ua\" signing_certs: \"../pki/ua/signing.crt\" "
      "encryption_cert: \"../pki/ua/encryption.crt\" }\n"
      "routes { destination: \"ua\" via: \"lv\" }\n"
      "relay { origin: \"ee\" destination: \"lv\" }\n"
      "relay { origin: \"lv\" destination: \"ee\" }\n"
      "limits { max_message_bytes: 4194304 max_clock_skew_seconds: 300 "
      "expiry_seconds_by_kind { key: \"alert\" value: 86400 } }\n"
      "retention { default_days: 365 days_by_kind { key: \"note\" value: 30 } "
      "}\n"
      "operator_api { listen_address: \"127.0.0.1:7102\" ca: \"op-ca.crt\" "
      "crl: \"op-ca.crl.pem\" }\n"
      "backoff { initial_ms: 500 max_ms: 60000 }\n";
  Write("config", "federation", federation);
}

void Payloads() {
  kinds::TemplateOptions opts;
  opts.now_ms = kTemplateNow;
  for (const std::string& kind : MessageKinds()) {
    auto json = kinds::TemplateJson(kind, opts);
    if (!json.ok()) continue;
    Write("payload_json", kind, *json);
    Write("template", kind, kind + "\n\n\n");
    v1::Payload p;
    if (kinds::ParsePayloadJson(*json, &p).ok()) {
      WriteProto("payload", kind, p);
    }
  }
  kinds::TemplateOptions reply;
  reply.now_ms = kTemplateNow;
  reply.case_ref = "EE-TRM-2026-0999";
  reply.in_reply_to = MessageIdFor(1);
  auto json = kinds::TemplateJson("referral.response", reply);
  if (json.ok()) Write("payload_json", "referral.response-reply", *json);
  Write("template", "reply",
        "referral.response\nEE-TRM-2026-0999\n" + MessageIdFor(1) + "\n7");
}

void Exports() {
  ExportInput in;
  in.set_sent(false);
  in.mutable_payload()->set_kind("note");
  in.mutable_payload()->set_body("evidence");
  in.set_payload_json("{\n  \"kind\": \"note\"\n}\n");
  ExportInput::Receipt* r = in.add_receipts();
  r->set_peer(FI);
  r->set_fill(true);
  r->mutable_body()->set_version("kontor-rcpt-v1");
  r->mutable_body()->set_outer_digest(Sha256("outer"));
  r->mutable_body()->set_time_unix_ms(GetWorld().now_ms);
  r->mutable_signature()->set_signature("sig");
  r->mutable_signature()->set_leaf_index(0);
  r->mutable_signature()->set_leaf_count(1);
  WriteProto("export", "received", in);
  ExportInput sent = in;
  sent.set_sent(true);
  ExportInput::Receipt* lv = sent.mutable_receipts(0);
  lv->set_peer(LV);
  lv->mutable_signature()->set_leaf_index(2);
  lv->mutable_signature()->set_leaf_count(5);
  for (int i = 0; i < 3; ++i) lv->mutable_signature()->add_path(Sha256("p"));
  WriteProto("export", "sent-batch", sent);
}

// libFuzzer dictionaries: every field name (and JSON name) of a message
// tree, its enum value names, and `extra` words.
void CollectNames(const Descriptor* d, std::set<std::string>* words,
                  std::set<const Descriptor*>* seen) {
  if (!seen->insert(d).second) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    words->insert(f->name());
    words->insert(f->json_name());
    if (f->enum_type() != nullptr) {
      for (int k = 0; k < f->enum_type()->value_count(); ++k) {
        words->insert(f->enum_type()->value(k)->name());
      }
    }
    if (f->message_type() != nullptr)
      CollectNames(f->message_type(), words, seen);
  }
}

void Dict(const std::string& name, const Descriptor* d,
          const std::vector<std::string>& extra) {
  std::set<std::string> words(extra.begin(), extra.end());
  std::set<const Descriptor*> seen;
  if (d != nullptr) CollectNames(d, &words, &seen);
  fs::create_directories(g_out + "/dict");
  std::ofstream out(absl::StrCat(g_out, "/dict/", name, ".dict"));
  out << "# Written by fuzz_seed_gen (tests/fuzz/seed_gen.cc).\n";
  for (const std::string& w : words) {
    std::string escaped;
    for (char c : w) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b >= 0x7f) {
        escaped += absl::StrFormat("\\x%02X", b);
        continue;
      }
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    out << '"' << escaped << "\"\n";
  }
}

void Dicts() {
  std::vector<std::string> kinds = MessageKinds();
  std::vector<std::string> config_words = {"{",
                                           "}",
                                           ":",
                                           "\"",
                                           "#",
                                           "true",
                                           "false",
                                           "\"ee\"",
                                           "\"*\"",
                                           "\"127.0.0.1:7000\"",
                                           "\"/dev/zero\"",
                                           "\"/dev/urandom\"",
                                           "\"/\"",
                                           "\"..\"",
                                           "key:",
                                           "value:",
                                           "[",
                                           "]",
                                           "<",
                                           ">",
                                           ",",
                                           ";"};
  for (const auto& k : kinds) config_words.push_back("\"" + k + "\"");
  Dict("config", v1::NodeConfig::descriptor(), config_words);
  std::vector<std::string> json_words = {"//",
                                         "{",
                                         "}",
                                         "[",
                                         "]",
                                         ":",
                                         ",",
                                         "\"",
                                         "null",
                                         "true",
                                         "false",
                                         "\\u",
                                         "\\ud800",
                                         "\\udc00",
                                         "\\u202e",
                                         "1e999",
                                         "-0",
                                         "\xef\xbb\xbf",
                                         MessageIdFor(1),
                                         "2026-11-22",
                                         "2026-11-22T10:00:00Z"};
  for (const auto& k : kinds) json_words.push_back(k);
  Dict("payload_json", v1::Payload::descriptor(), json_words);
  Dict("template", nullptr, kinds);
}

}  // namespace
}  // namespace kontor::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seed_gen OUT_DIR\n");
    return 2;
  }
  kontor::fuzz::g_out = argv[1];
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::Envelopes();
  kontor::fuzz::Routing();
  kontor::fuzz::Receipts();
  kontor::fuzz::ChunkLists();
  kontor::fuzz::ChunkFrames();
  kontor::fuzz::Federation();
  kontor::fuzz::Configs();
  kontor::fuzz::Payloads();
  kontor::fuzz::Exports();
  kontor::fuzz::Dicts();
  return 0;
}
