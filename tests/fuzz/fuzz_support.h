// What the fuzz targets share: a test PKI with real keys (so that inputs can
// be signed and sealed by the harness and get past signature checks), the
// "fixups" that turn a structured input into real envelopes and receipts,
// and scratch directories.
#ifndef KONTOR_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define KONTOR_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/common/clock.h"
#include "daemon/common/routes.h"
#include "daemon/envelope/envelope.h"
#include "daemon/inbox/receiver.h"
#include "daemon/store/store.h"
#include "fuzz_inputs.pb.h"
#include "kontor/v1/envelope.pb.h"
#include "tests/fuzz/proto_mutator.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor::fuzz {

// Nodes ee, fi, lv of one federation CA, and xx of a CA nobody trusts;
// `directory` knows ee, fi and lv. fi is the node under test. Built once
// per process, on first use; `now_ms` is the harness's "now" (certificates
// are valid from an hour before it to a year after).
struct World {
  std::string dir;  // scratch root of this process
  std::unique_ptr<testing::TestPki> pki;
  testing::TestPki::Ca ca, other_ca;
  testing::TestPki::Node nodes[4];  // by Node: EE, FI, LV, XX
  std::shared_ptr<const EcdsaSigner> signers[4];
  std::vector<DecryptionKey> decryption[4];
  testing::FakeDirectory directory;
  int64_t now_ms = 0;

  const testing::TestPki::Node& node(Node n) const { return nodes[Index(n)]; }
  const std::string& id(Node n) const { return nodes[Index(n)].id; }
  const EcdsaSigner& signer(Node n) const { return *signers[Index(n)]; }
  static int Index(Node n) { return n >= EE && n <= XX ? n : EE; }
};
const World& GetWorld();

// Call first in LLVMFuzzerInitialize: logs off (KONTOR_FUZZ_LOG=1 keeps
// Kontor's and protobuf's), dictionary words for the proto mutator.
void InitFuzzing();

// A fresh, empty directory under this process's scratch root.
std::string ScratchDir(const std::string& tag);
// Removes a directory tree (best effort).
void RemoveAll(const std::string& dir);

// a + b without signed overflow (saturating).
int64_t AddSat(int64_t a, int64_t b);

// The envelope `in` describes: its header, ciphertext and outer signature
// replaced as asked, made with the world's real keys. Nothing else is made
// up: what the input says (ids, times, recipients) is what is sent.
// `map_id` (optional) rewrites the header's message id first.
using IdMap = std::function<std::string(const std::string&)>;
v1::Envelope BuildEnvelope(const EnvelopeInput& in,
                           const IdMap& map_id = nullptr);

// The receipts `specs` describe; those marked `sign` are signed in one batch
// by `signer` over their exact body bytes.
// `map_id` (optional) rewrites the message id of the bodies given.
std::vector<v1::Receipt> BuildReceipts(
    const google::protobuf::RepeatedPtrField<ReceiptSpec>& specs, Node signer,
    const IdMap& map_id = nullptr);

// A message id (UUID text form) made from `n`, the same for the same n.
std::string MessageIdFor(uint64_t n);

// The node under test of the receiver targets: fi, with a store in a
// scratch directory of its own (removed on destruction), a clock at the
// harness's now + an offset, and routes from a RouteConfig (when it says
// nothing: peers ee and lv direct, fi relaying ee <-> lv).
//
// Opening a store costs ~10 ms here, so one node serves many inputs
// (Shared(), made anew every 256 inputs) and each input works with message
// ids of its own (Prepare()), so that what earlier inputs stored does not
// change what a later one sees.
struct TestNode {
  std::string dir;
  FakeClock clock{0};
  std::unique_ptr<Store> store;
  std::unique_ptr<Opener> opener;
  std::unique_ptr<Receiver> receiver;
  int notified = 0;
  ~TestNode();

  static TestNode& Shared();
  // Configures the node for the next input and stores, under fresh ids,
  // one message fi sent to lv (sent_id) and one fi relays from ee to lv
  // (relayed_id), so that returned receipts have something to settle.
  // `accept_kinds`: the kinds each origin may send (peers accept_kinds).
  void Prepare(const RouteConfig& routes, int64_t clock_offset_ms,
               uint64_t max_attachment_bytes,
               PeerPolicy::KindsByPeer accept_kinds = {});
  // A message id of this input: the same for the same n within it.
  std::string Id(uint64_t n) const;
  // MessageIdFor(n) for n < 256 (the ids the seeds use) as Id(n); any other
  // id unchanged.
  std::string MapId(const std::string& id) const;
  std::string sent_id, relayed_id;
  uint64_t input = 0;
};
Routes MakeRoutes(const RouteConfig& routes);
// Placeholders an input uses for TestNode's stored messages (replaced by
// their ids of the input), and those messages' digests.
inline constexpr uint64_t kSentId = 1;
inline constexpr uint64_t kRelayedId = 2;
std::string SentDigest();
std::string SentInnerDigest();
std::string RelayedDigest();

// Reference checks for text shown to people: well-formed UTF-8 (no
// overlong forms, surrogates or code points past U+10FFFF), and that
// besides (with `newlines`) '\n' and '\t' no control character, C1 control
// or bidi/invisible format character (U+200E/F, U+202A-E, U+2066-9, U+061C,
// U+FEFF) is left in it.
bool WellFormedUtf8(absl::string_view text);
bool SafeForTerminal(absl::string_view text, bool newlines);

// With KONTOR_FUZZ_PRINT set: prints what became of an input (a verdict,
// a refusal), to see what a seed or a crash input reaches.
void Note(absl::string_view what);

// Aborts (a fuzzer finding) with `what` when `ok` is false: for invariants
// the harness checks beyond "does not crash".
void Require(bool ok, const char* what);

}  // namespace kontor::fuzz

#endif  // KONTOR_TESTS_FUZZ_FUZZ_SUPPORT_H_
