#include "tests/fuzz/fuzz_support.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/crypto/cms.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "google/protobuf/stubs/logging.h"

namespace kontor::fuzz {
namespace {

std::string& Root() {
  static std::string* root = [] {
    const char* base = std::getenv("KONTOR_FUZZ_TMP");
    std::string b = base != nullptr && *base != '\0' ? base : "";
    struct stat st;
    if (b.empty()) {
      b = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
              ? "/dev/shm"
              : (std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR")
                                                  : "/tmp");
    }
    std::string tmpl = absl::StrCat(b, "/kontor-fuzz-XXXXXX");
    if (mkdtemp(&tmpl[0]) == nullptr) {
      std::perror("kontor fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] {
      if (std::getenv("KONTOR_KEEP_TMP") == nullptr) RemoveAll(Root());
    });
    return new std::string(tmpl);
  }();
  return *root;
}

void NoLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

}  // namespace

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "kontor fuzz: invariant violated: %s\n", what);
  std::abort();
}

namespace {
// Length and code point of the UTF-8 sequence at text[i]; 0 if malformed.
size_t NextCodePoint(absl::string_view text, size_t i, uint32_t* cp) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t n;
  uint32_t min;
  if ((b & 0xe0) == 0xc0) {
    n = 2, min = 0x80, *cp = b & 0x1f;
  } else if ((b & 0xf0) == 0xe0) {
    n = 3, min = 0x800, *cp = b & 0x0f;
  } else if ((b & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, *cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (c & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) {
    return 0;
  }
  return n;
}
}  // namespace

bool WellFormedUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = NextCodePoint(text, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool SafeForTerminal(absl::string_view text, bool newlines) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = NextCodePoint(text, i, &cp);
    if (n == 0) return false;
    i += n;
    if (cp == '\t' || (newlines && cp == '\n')) continue;
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x200e ||
        cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061c || cp == 0xfeff) {
      return false;
    }
  }
  return true;
}

void Note(absl::string_view what) {
  static const bool print = std::getenv("KONTOR_FUZZ_PRINT") != nullptr;
  if (print) {
    std::fprintf(stderr, "kontor fuzz: %.*s\n", static_cast<int>(what.size()),
                 what.data());
  }
}

int64_t AddSat(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max()
                 : std::numeric_limits<int64_t>::min();
  }
  return out;
}

std::string ScratchDir(const std::string& tag) {
  static int n = 0;
  const std::string dir = absl::StrCat(Root(), "/", tag, "-", ++n);
  RemoveAll(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void RemoveAll(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

std::string MessageIdFor(uint64_t n) {
  return absl::StrFormat("%08x-0000-4000-8000-%012x",
                         static_cast<uint32_t>(n >> 32), n & 0xffffffffffffULL);
}

void InitFuzzing() {
  if (std::getenv("KONTOR_FUZZ_LOG") == nullptr) {
    SetMinLogLevel(static_cast<LogLevel>(100));  // above every level
    google::protobuf::SetLogHandler(&NoLog);
  }
  for (const char* w :
       {"ee", "fi", "lv", "xx", "ee.border", "kontor-p256-sha256-a256gcm",
        "kontor-inner-v1", "kontor-rcpt-v1", "text/plain; charset=utf-8",
        "9b21db3e-5795-43e7-bad2-ae731ea4769e", "*", "urn:kontor:node:"}) {
    AddWord(w);
  }
  for (const std::string& kind : MessageKinds()) AddWord(kind);
  AddWord(MessageIdFor(1));
}

const World& GetWorld() {
  static World* world = [] {
    auto* w = new World();
    w->dir = ScratchDir("pki");
    w->now_ms = Clock::Real()->NowUnixMs();
    w->pki = std::make_unique<testing::TestPki>(w->dir);
    w->ca = w->pki->MakeCa("ca");
    w->other_ca = w->pki->MakeCa("other");
    const char* ids[4] = {"ee", "fi", "lv", "xx"};
    for (int i = 0; i < 4; ++i) {
      w->nodes[i] =
          w->pki->MakeNode(i == XX ? w->other_ca : w->ca, std::string(ids[i]));
      w->signers[i] = testing::SignerOf(w->nodes[i]);
      w->decryption[i] = testing::DecryptionKeysOf(w->nodes[i]);
      if (i != XX) w->directory.Add(w->nodes[i]);
    }
    return w;
  }();
  return *world;
}

v1::Envelope BuildEnvelope(const EnvelopeInput& in, const IdMap& map_id) {
  const World& w = GetWorld();
  v1::Envelope env = in.envelope();
  v1::Header header;
  if (in.has_header()) {
    header = in.header();
    if (map_id) header.set_message_id(map_id(header.message_id()));
    if (in.rebase_times()) {
      header.set_created_unix_ms(AddSat(w.now_ms, header.created_unix_ms()));
      header.set_expires_unix_ms(AddSat(w.now_ms, header.expires_unix_ms()));
    }
    env.set_header(header.SerializeAsString());
  } else {
    header.ParseFromString(env.header());
  }
  if (in.has_seal()) {
    const Seal& s = in.seal();
    std::string content = s.raw_inner();
    if (content.empty()) {
      v1::InnerContent inner;
      if (s.fill_from_header()) {
        inner.set_version(std::string(kInnerVersion));
        inner.set_suite_id(header.suite_id());
        inner.set_message_id(header.message_id());
        inner.set_origin(header.origin());
        *inner.mutable_recipients() = header.recipients();
        inner.set_created_unix_ms(header.created_unix_ms());
      }
      inner.MergeFrom(s.inner());
      if (s.has_payload()) inner.set_payload(s.payload().SerializeAsString());
      content = inner.SerializeAsString();
    }
    if (!s.unsigned_()) {
      auto signed_content = CmsSign(w.signer(s.signer()), content);
      if (signed_content.ok()) content = std::move(*signed_content);
    }
    std::vector<CertificatePtr> to;
    for (int i = 0; i < s.encrypt_to_size() && i < 4; ++i) {
      to.push_back(w.node(s.encrypt_to(i)).encryption.cert);
    }
    if (to.empty()) to.push_back(w.node(FI).encryption.cert);
    auto ciphertext = CmsEncrypt(content, to);
    if (ciphertext.ok()) env.set_ciphertext(std::move(*ciphertext));
  }
  if (in.has_outer()) {
    const OuterSign& o = in.outer();
    const uint32_t size =
        o.batch_size() == 0 ? 1 : 1 + (o.batch_size() - 1) % 64;
    const uint32_t index = o.batch_index() % size;
    std::vector<std::string> digests;
    for (uint32_t i = 0; i < size; ++i) {
      digests.push_back(i == index ? OuterDigest(env, header.suite_id())
                                   : Sha256(absl::StrCat("other ", i)));
    }
    auto sigs = SignBatch(w.signer(o.signer()), kEnvelopeBatchLabel, digests);
    if (sigs.ok()) *env.mutable_outer() = (*sigs)[index];
  }
  return env;
}

std::vector<v1::Receipt> BuildReceipts(
    const google::protobuf::RepeatedPtrField<ReceiptSpec>& specs, Node signer,
    const IdMap& map_id) {
  const World& w = GetWorld();
  std::vector<v1::Receipt> out;
  std::vector<size_t> to_sign;
  std::vector<std::string> digests;
  for (const ReceiptSpec& s : specs) {
    v1::Receipt r = s.receipt();
    if (s.has_body()) {
      v1::ReceiptBody body = s.body();
      if (map_id) body.set_message_id(map_id(body.message_id()));
      if (s.rebase_time()) {
        body.set_time_unix_ms(AddSat(w.now_ms, body.time_unix_ms()));
      }
      r.set_body(body.SerializeAsString());
    }
    if (s.sign()) {
      to_sign.push_back(out.size());
      digests.push_back(Sha256(r.body()));
    }
    out.push_back(std::move(r));
  }
  if (!digests.empty()) {
    auto sigs = SignBatch(w.signer(signer), kReceiptBatchLabel, digests);
    if (sigs.ok()) {
      for (size_t k = 0; k < to_sign.size(); ++k) {
        *out[to_sign[k]].mutable_signature() = (*sigs)[k];
      }
    }
  }
  return out;
}

TestNode::~TestNode() {
  receiver.reset();
  opener.reset();
  store.reset();
  RemoveAll(dir);
}

std::string SentDigest() { return Sha256("kontor-fuzz-sent"); }
std::string SentInnerDigest() { return Sha256("kontor-fuzz-sent-inner"); }
std::string RelayedDigest() { return Sha256("kontor-fuzz-relayed"); }

Routes MakeRoutes(const RouteConfig& c) {
  if (c.direct_size() == 0 && c.via_size() == 0 && c.relay_size() == 0) {
    return Routes({"ee", "lv"}, {}, {{"ee", "lv"}, {"lv", "ee"}});
  }
  std::set<std::string> direct(c.direct().begin(), c.direct().end());
  std::map<std::string, std::string> via(c.via().begin(), c.via().end());
  std::set<std::pair<std::string, std::string>> relay;
  for (const auto& p : c.relay()) relay.emplace(p.origin(), p.destination());
  return Routes(std::move(direct), std::move(via), std::move(relay));
}

TestNode& TestNode::Shared() {
  static TestNode* node = nullptr;
  static uint64_t uses = 0;
  if (node == nullptr || ++uses % 256 == 0) {
    delete node;
    node = new TestNode();
    node->dir = ScratchDir("node");
    auto store = Store::Open(node->dir + "/fi.db");
    Require(store.ok(), "cannot open a store");
    node->store = std::move(*store);
    const World& w = GetWorld();
    node->opener = std::make_unique<Opener>(
        "fi", w.decryption[FI], &w.directory, &node->clock, 300000, 1 << 20);
  }
  return *node;
}

std::string TestNode::Id(uint64_t n) const {
  return MessageIdFor((input << 16) | (n & 0xffff));
}

std::string TestNode::MapId(const std::string& id) const {
  static const std::string prefix = MessageIdFor(0).substr(0, 34);
  if (id.size() != 36 || id.compare(0, 34, prefix) != 0) return id;
  uint64_t n = 0;
  for (char c : id.substr(34)) {
    if (!absl::ascii_isxdigit(c)) return id;
    n = n * 16 +
        (absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10);
  }
  return Id(n);
}

void TestNode::Prepare(const RouteConfig& routes, int64_t clock_offset_ms,
                       uint64_t max_attachment_bytes,
                       PeerPolicy::KindsByPeer accept_kinds) {
  const World& w = GetWorld();
  static uint64_t inputs = 0;
  input = ++inputs;
  clock.SetMs(AddSat(w.now_ms, clock_offset_ms));
  ReceiverOptions o;
  o.node_id = "fi";
  o.store = store.get();
  o.opener = opener.get();
  o.signer = w.signers[FI];
  o.clock = &clock;
  o.routes = MakeRoutes(routes);
  o.directory = &w.directory;
  o.notify = [this](const std::string&) { ++notified; };
  o.policy = PeerPolicy(std::move(accept_kinds), {});
  if (max_attachment_bytes > 0) {
    o.max_attachment_bytes = max_attachment_bytes;
    o.staging = DefaultStaging(dir, max_attachment_bytes);
  }
  auto made = Receiver::Create(std::move(o));
  Require(made.ok(), "cannot make the receiver");
  receiver = std::move(*made);

  sent_id = Id(kSentId);
  OutgoingMessage sent;
  sent.id = sent_id;
  sent.recipients = {"lv"};
  sent.priority = v1::ROUTINE;
  sent.created_ms = w.now_ms;
  sent.expires_ms = w.now_ms + 3600 * 1000;
  sent.kind = "note";
  sent.envelope = "sent";
  sent.outer_digest = SentDigest();
  sent.submitter = "fuzz";
  sent.request_hash = Sha256(sent_id);
  sent.inner_signed = "kontor-fuzz-sent-inner";
  Require(store->InsertOutgoing(sent).ok(), "cannot store a sent message");
  relayed_id = Id(kRelayedId);
  RelayedMessage relayed;
  relayed.origin = "ee";
  relayed.message_id = relayed_id;
  relayed.deliver_to = "lv";
  relayed.from_peer = "ee";
  relayed.priority = v1::ROUTINE;
  relayed.created_ms = w.now_ms;
  relayed.expires_ms = w.now_ms + 3600 * 1000;
  relayed.envelope = "relayed";
  relayed.outer_digest = RelayedDigest();
  relayed.custody = "custody";
  relayed.received_ms = w.now_ms;
  std::vector<std::optional<DedupEntry>> existing;
  Require(store->InsertRelayed({relayed}, &existing).ok(),
          "cannot store a relayed message");
}

}  // namespace kontor::fuzz
