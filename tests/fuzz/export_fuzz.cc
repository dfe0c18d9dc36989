// The evidence bundle (`kontor export`, daemon/app/evidence.cc). Kontor has
// no reader of evidence bundles (they are checked with openssl alone, by
// the README's commands and verify.sh); what comes from outside in one are
// the recipients' receipts, stored as they came, which BuildExport parses
// and turns into files and shell commands.
//
// Input: kontor.fuzz.ExportInput: receipts (raw, or with the fields the
// bundle requires filled in so that it gets past its checks), the message
// sent or received, extra archived "certificates".
// Invariants: every file name is a plain relative path (no "..", no
// absolute path, only [A-Za-z0-9._/-]); verify.sh and README.md are there.
#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/app/evidence.h"
#include "daemon/crypto/cms.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

std::string CrlDer(const std::string& pem_path) {
  // The archive keeps DER; the test PKI writes PEM.
  std::string pem = testing::ReadAll(pem_path);
  const std::string begin = "-----BEGIN X509 CRL-----",
                    end = "-----END X509 CRL-----";
  const size_t b = pem.find(begin), e = pem.find(end);
  if (b == std::string::npos || e == std::string::npos) return "";
  std::string body;
  for (char c : pem.substr(b + begin.size(), e - b - begin.size())) {
    if (c != '\n' && c != '\r') body.push_back(c);
  }
  std::string der;
  absl::Base64Unescape(body, &der);
  return der;
}

bool PlainName(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-' &&
        c != '/') {
      return false;
    }
  }
  return true;
}

void Run(const ExportInput& in) {
  const World& w = GetWorld();
  static const std::string ca_crl = CrlDer(w.ca.crl_path);
  kontor::ExportInput x;
  x.message.message_id = MessageIdFor(7);
  x.message.origin = in.sent() ? "" : "ee";
  x.message.sent = in.sent();
  x.message.created_ms =
      AddSat(w.now_ms, in.created_offset_ms() % (30LL * 86400 * 1000));
  const Node author = in.sent() ? FI : EE;
  v1::InnerContent inner;
  inner.set_version(std::string(kInnerVersion));
  inner.set_suite_id(std::string(kSuiteV1));
  inner.set_message_id(x.message.message_id);
  inner.set_origin(w.id(author));
  inner.add_recipients(in.sent() ? "lv" : "fi");
  inner.set_created_unix_ms(x.message.created_ms);
  inner.set_payload(in.payload().SerializeAsString());
  auto signed_inner = CmsSign(w.signer(author), inner.SerializeAsString());
  Require(signed_inner.ok(), "cannot sign");
  x.message.inner_signed = *signed_inner;
  x.payload_json = in.payload_json();

  x.evidence.push_back(EvidenceItem{"cert", w.ca.cert->der(), 0});
  if (!in.drop_crls()) x.evidence.push_back(EvidenceItem{"crl", ca_crl, 0});
  for (Node n : {EE, FI, LV, XX}) {
    x.evidence.push_back(
        EvidenceItem{"cert", w.node(n).signing.cert->der(), 0});
  }
  for (int i = 0; i < in.extra_evidence_size() && i < 4; ++i) {
    x.evidence.push_back(EvidenceItem{"cert", in.extra_evidence(i), 0});
  }

  for (int i = 0; i < in.receipts_size() && i < 8; ++i) {
    const ExportInput::Receipt& spec = in.receipts(i);
    ExportReceipt er;
    er.peer = w.id(spec.peer());
    if (!spec.fill()) {
      er.receipt = spec.receipt();
    } else {
      v1::ReceiptBody body = spec.body();
      body.set_verdict(v1::ACCEPTED);
      body.set_message_id(x.message.message_id);
      body.set_origin(w.id(author));
      body.set_inner_digest(Sha256(x.message.inner_signed));
      if (body.recipient().empty()) body.set_recipient(er.peer);
      v1::Receipt receipt;
      receipt.set_body(body.SerializeAsString());
      *receipt.mutable_signature() = spec.signature();
      if (receipt.signature().signer_key_id().empty()) {
        receipt.mutable_signature()->set_signer_key_id(
            w.node(spec.peer()).signing.cert->key_id());
      }
      er.receipt = receipt.SerializeAsString();
    }
    x.receipts.push_back(std::move(er));
  }

  auto files = BuildExport(x);
  Note(absl::StrCat("BuildExport: ", files.status().ToString()));
  if (!files.ok()) return;
  bool script = false, readme = false;
  for (const ExportFile& f : *files) {
    Note(f.name);
    Require(PlainName(f.name), "an evidence file name that is not plain");
    script = script || f.name == "verify.sh";
    readme = readme || f.name == "README.md";
  }
  Require(script && readme, "an evidence bundle without verify.sh or README");
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::GetWorld();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::ExportInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::ExportInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
