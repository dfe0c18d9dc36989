#include "daemon/app/evidence.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "daemon/common/ids.h"
#include "daemon/crypto/cms.h"
#include "daemon/crypto/ossl.h"
#include "daemon/crypto/primitives.h"
#include "daemon/envelope/receipt.h"
#include "kontor/v1/envelope.pb.h"
#include "kontor/v1/kinds.pb.h"

namespace kontor {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Every PEM block of `type` ("CERTIFICATE", "X509 CRL") in `pem`, as DER.
std::vector<std::string> PemBlocksToDer(const std::string& pem, bool crl) {
  std::vector<std::string> out;
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  for (;;) {
    unsigned char* der = nullptr;
    int len = 0;
    if (crl) {
      X509_CRL* c = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
      if (c == nullptr) break;
      len = i2d_X509_CRL(c, &der);
      X509_CRL_free(c);
    } else {
      X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
      if (c == nullptr) break;
      len = i2d_X509(c, &der);
      X509_free(c);
    }
    if (len > 0) out.emplace_back(reinterpret_cast<char*>(der), len);
    OPENSSL_free(der);
  }
  ossl::ErrorString();  // the end of the input is an "error"
  return out;
}

void AddFile(const std::string& path, const char* type, int64_t now_ms,
             std::vector<EvidenceItem>* out,
             std::vector<std::string>* problems) {
  if (path.empty()) return;
  std::string pem;
  if (!ReadFile(path, &pem)) {
    problems->push_back(absl::StrCat("cannot read ", path));
    return;
  }
  const bool crl = std::string(type) == "crl";
  std::vector<std::string> ders = PemBlocksToDer(pem, crl);
  if (ders.empty()) problems->push_back(absl::StrCat(path, ": no PEM ", type));
  for (std::string& d : ders) {
    out->push_back(EvidenceItem{type, std::move(d), now_ms});
  }
}

using CrlPtr = ossl::Crl;

CrlPtr CrlFromDer(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return CrlPtr(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
}

std::string CrlToPem(X509_CRL* crl) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

// ASN1_TIME compared with a Unix time in seconds: <0, 0, >0.
int CompareTime(const ASN1_TIME* t, int64_t unix_s) {
  if (t == nullptr) return 1;
  ossl::Asn1Time at(ASN1_TIME_set(nullptr, static_cast<time_t>(unix_s)));
  int day = 0, sec = 0;
  if (!at || ASN1_TIME_diff(&day, &sec, at.get(), t) != 1) return 1;
  if (day > 0 || sec > 0) return 1;
  if (day < 0 || sec < 0) return -1;
  return 0;
}

struct Archive {
  std::vector<CertificatePtr> certs;
  std::vector<std::shared_ptr<X509_CRL>> crls;
};

Archive Load(const std::vector<EvidenceItem>& evidence) {
  Archive a;
  for (const EvidenceItem& e : evidence) {
    if (e.type == "cert") {
      auto c = Certificate::FromDer(e.der);
      if (c.ok()) a.certs.push_back(*c);
    } else if (e.type == "crl") {
      CrlPtr c = CrlFromDer(e.der);
      if (c) a.crls.emplace_back(c.release(), X509_CRL_free);
    }
  }
  ossl::ErrorString();
  return a;
}

bool SelfSigned(const Certificate& c) {
  return X509_check_issued(c.x509(), c.x509()) == X509_V_OK;
}

// What an openssl check of `leaf` at `unix_s` needs: the chain above it
// (untrusted intermediates, the root as trust anchor) and the CRL of its
// issuer in force at that time (newest lastUpdate <= t < nextUpdate).
struct Trust {
  std::vector<CertificatePtr> intermediates;
  CertificatePtr root;
  std::shared_ptr<X509_CRL> crl;
  std::string missing;  // why there is no chain or no CRL
};

Trust TrustFor(const Archive& a, const Certificate& leaf, int64_t unix_s) {
  Trust t;
  const Certificate* at = &leaf;
  const Certificate* issuer_of_leaf = nullptr;
  for (int depth = 0; depth < 6; ++depth) {
    const Certificate* issuer = nullptr;
    for (const CertificatePtr& c : a.certs) {
      if (c->der() != at->der() &&
          X509_check_issued(c->x509(), at->x509()) == X509_V_OK) {
        issuer = c.get();
        if (SelfSigned(*c)) break;
      }
    }
    if (issuer == nullptr) break;
    if (issuer_of_leaf == nullptr) issuer_of_leaf = issuer;
    for (const CertificatePtr& c : a.certs) {
      if (c.get() == issuer) {
        if (SelfSigned(*c)) {
          t.root = c;
        } else {
          t.intermediates.push_back(c);
        }
      }
    }
    if (t.root) break;
    at = issuer;
  }
  if (!t.root) {
    t.missing =
        absl::StrCat("no archived CA certificate issued ", leaf.subject());
    return t;
  }
  int64_t best = 0;
  for (const auto& crl : a.crls) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()),
                      X509_get_subject_name(issuer_of_leaf->x509())) != 0 ||
        X509_CRL_verify(crl.get(), issuer_of_leaf->public_key()) != 1) {
      continue;
    }
    const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl.get());
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    if (CompareTime(last, unix_s) > 0) continue;  // issued later
    if (next == nullptr || CompareTime(next, unix_s) <= 0) continue;
    int64_t last_s = 0;
    {
      struct tm tm;
      if (ASN1_TIME_to_tm(last, &tm) == 1) last_s = timegm(&tm);
    }
    if (!t.crl || last_s > best) {
      t.crl = crl;
      best = last_s;
    }
  }
  ossl::ErrorString();
  if (!t.crl) {
    t.missing = absl::StrCat("no CRL of ", issuer_of_leaf->subject(),
                             " in force at that time was archived: "
                             "revocation is not checked");
  }
  return t;
}

std::string TrustPem(const Trust& t) {
  std::string pem = t.root->ToPem();
  if (t.crl) pem += CrlToPem(t.crl.get());
  return pem;
}

std::string ChainPem(const Certificate& leaf, const Trust& t) {
  std::string pem = leaf.ToPem();
  for (const CertificatePtr& c : t.intermediates) pem += c->ToPem();
  return pem;
}

std::string Iso(int64_t unix_s) {
  std::string s = FormatRfc3339Ms(unix_s * 1000);
  // "....T10:44:56.000Z" -> "....T10:44:56Z"
  if (s.size() > 5 && s.compare(s.size() - 5, 5, ".000Z") == 0) {
    s = s.substr(0, s.size() - 5) + "Z";
  }
  return s;
}

// `s` as one sh word: single-quoted, each ' written as '\''.
std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

// The certificate in `file` names node `node` (URI SAN), so the signature
// checked with it is that node's.
std::string SanCheck(const std::string& file, const std::string& node) {
  return absl::StrCat("openssl x509 -noout -ext subjectAltName -in ", file,
                      " | tr -d ' ' | tr ',' '\\n' | grep -qxF ",
                      ShellQuote(absl::StrCat("URI:urn:kontor:node:", node)));
}

// `echo` of `text`, quoted for sh whatever it holds.
std::string Echo(absl::string_view text) {
  return absl::StrCat("echo ", ShellQuote(text));
}

// Protobuf descriptors as .proto text: what protoc needs to decode the
// signed bytes without Kontor's sources.
std::vector<ExportFile> ProtoFiles() {
  std::vector<ExportFile> out;
  for (const google::protobuf::FileDescriptor* f :
       {v1::InnerContent::descriptor()->file(),
        v1::Referral::descriptor()->file()}) {
    out.push_back(
        ExportFile{absl::StrCat("proto/", f->name()), f->DebugString()});
  }
  return out;
}

}  // namespace

std::vector<EvidenceItem> EvidenceFromConfig(
    const v1::NodeConfig& config, std::vector<std::string>* problems) {
  std::vector<EvidenceItem> out;
  AddFile(config.signing().cert(), "cert", 0, &out, problems);
  for (const auto& ca : config.trusted_cas()) {
    AddFile(ca.cert(), "cert", 0, &out, problems);
    AddFile(ca.crl(), "crl", 0, &out, problems);
  }
  for (const auto& p : config.peers()) {
    for (const std::string& c : p.signing_certs()) {
      AddFile(c, "cert", 0, &out, problems);
    }
  }
  return out;
}

namespace {

// What one receipt of an export must say.
struct ReceiptWant {
  std::string message_id;
  std::string origin;
  // The SHA-256 the receipt's inner_digest must equal, and the verify.sh
  // variable that holds it in hex.
  std::string digest;
  std::string digest_var = "digest";
  // For an erase order's receipt: the message it must list as erased
  // (field 13), else empty.
  std::string erased;
};

// Adds the files and the verify.sh steps that check one signed receipt
// (its leading fields, its inner digest, its Merkle path and signature,
// its signer's certificate at the time). False, with a note, if it cannot
// be shown.
bool AddReceipt(const Archive& archive, const ExportReceipt& r,
                const ReceiptWant& want, int* step,
                std::vector<ExportFile>* files, std::vector<std::string>* sh,
                std::vector<std::string>* notes) {
  v1::Receipt receipt;
  v1::ReceiptBody body;
  if (!receipt.ParseFromString(r.receipt) ||
      !body.ParseFromString(receipt.body()) || body.verdict() != v1::ACCEPTED ||
      body.message_id() != want.message_id || body.origin() != want.origin ||
      body.inner_digest() != want.digest ||
      body.SerializeAsString() != receipt.body()) {
    notes->push_back(absl::StrCat("the receipt of ", r.peer, " for ",
                                  want.message_id,
                                  " is not an acceptance naming signed "
                                  "content; not exported"));
    return false;
  }
  int erased_at = -1;
  for (int i = 0; i < body.erased_size(); ++i) {
    if (body.erased(i) == want.erased) erased_at = i;
  }
  if (!want.erased.empty() && erased_at < 0) return false;
  CertificatePtr rsigner;
  for (const CertificatePtr& c : archive.certs) {
    if (c->node_id() == body.recipient() &&
        c->key_id() == receipt.signature().signer_key_id()) {
      rsigner = c;
      break;
    }
  }
  if (!rsigner) {
    notes->push_back(absl::StrCat("no archived certificate of ", r.peer,
                                  " holds the key of its receipt"));
    return false;
  }
  const std::string p = want.erased.empty()
                            ? absl::StrCat("receipt-", body.recipient())
                            : absl::StrCat("erasure-", body.recipient(), "-",
                                           want.message_id.substr(0, 8));
  const int64_t at_s = body.time_unix_ms() / 1000;
  const Trust rt = TrustFor(archive, *rsigner, at_s);
  if (!rt.root) {
    notes->push_back(rt.missing);
    return false;
  }
  files->push_back(ExportFile{p + ".body", receipt.body()});
  files->push_back(ExportFile{p + ".sig", receipt.signature().signature()});
  files->push_back(ExportFile{p + "-signer.pem", ChainPem(*rsigner, rt)});
  files->push_back(ExportFile{p + "-trust.pem", TrustPem(rt)});
  if (want.erased.empty()) {
    sh->push_back(Echo(absl::StrCat(
        (*step)++, ". ", body.recipient(),
        "'s receipt names this message and its signed content (SHA-256 of "
        "the signed message)")));
  } else {
    sh->push_back(Echo(absl::StrCat(
        (*step)++, ". ", body.recipient(), "'s receipt of erase order ",
        want.message_id, " confirms it erased ", want.erased)));
  }
  // Its first fields (version, message id, origin, recipient, outer
  // digest, time, verdict ACCEPTED) as exact bytes at its start, and the
  // inner digest field (tag 0x62, 32 bytes) at a byte boundary.
  v1::ReceiptBody lead;
  lead.set_version(body.version());
  lead.set_message_id(body.message_id());
  lead.set_origin(body.origin());
  lead.set_recipient(body.recipient());
  lead.set_outer_digest(body.outer_digest());
  lead.set_time_unix_ms(body.time_unix_ms());
  lead.set_verdict(body.verdict());
  const std::string lead_bytes = lead.SerializeAsString();
  sh->push_back(absl::StrCat(
      "test \"$(head -c ", lead_bytes.size(), " ", p,
      ".body | od -An -v -tx1 | tr -d ' \\n')\" = ", HexEncode(lead_bytes)));
  // The inner digest field (12: tag 0x62, 32 bytes) at its exact offset:
  // right after fields 1..11 in the standard encoding.
  v1::ReceiptBody upto12 = body;
  upto12.clear_inner_digest();
  upto12.clear_erased();
  upto12.clear_erase_kept();
  sh->push_back(absl::StrCat(
      "test \"$(tail -c +", upto12.SerializeAsString().size() + 1, " ", p,
      ".body | head -c 34 | od -An -v -tx1 | tr -d ' \\n')\" = \"6220$",
      want.digest_var, "\""));
  if (!want.erased.empty()) {
    // The erased ids (field 13) come right after the fields up to 12 in
    // the standard encoding: the listed id at its exact offset.
    v1::ReceiptBody before = body;
    before.clear_erased();
    before.clear_erase_kept();
    v1::ReceiptBody upto = before;
    for (int i = 0; i < erased_at; ++i) upto.add_erased(body.erased(i));
    v1::ReceiptBody one;
    one.add_erased(want.erased);
    const std::string entry = one.SerializeAsString();
    sh->push_back(absl::StrCat(
        "test \"$(tail -c +", upto.SerializeAsString().size() + 1, " ", p,
        ".body | head -c ", entry.size(),
        " | od -An -v -tx1 | tr -d ' \\n')\" ", "= ", HexEncode(entry)));
  }
  sh->push_back(Echo(absl::StrCat(
      (*step)++, ". ", body.recipient(), "'s signature over its receipt (leaf ",
      receipt.signature().leaf_index() + 1, " of a batch of ",
      receipt.signature().leaf_count(), ": leaf, path, root)")));
  sh->push_back(
      absl::StrCat("openssl dgst -sha256 -binary ", p, ".body > ", p, ".hash"));
  sh->push_back(absl::StrCat("{ printf '\\000'; cat ", p,
                             ".hash; } | openssl dgst -sha256 -binary > ", p,
                             ".node"));
  uint64_t index = receipt.signature().leaf_index();
  uint64_t count = receipt.signature().leaf_count();
  int used = 0;
  while (count > 1) {
    const uint64_t sibling = index ^ 1;
    if (sibling < count && used < receipt.signature().path_size()) {
      const std::string name = absl::StrCat(p, ".path", used);
      files->push_back(ExportFile{name, receipt.signature().path(used)});
      ++used;
      const std::string pair = index % 2 == 0
                                   ? absl::StrCat(p, ".node ", name)
                                   : absl::StrCat(name, " ", p, ".node");
      sh->push_back(absl::StrCat("{ printf '\\001'; cat ", pair,
                                 "; } | openssl dgst -sha256 -binary > ", p,
                                 ".next && mv ", p, ".next ", p, ".node"));
    }
    index /= 2;
    count = (count + 1) / 2;
  }
  sh->push_back(absl::StrCat("{ printf '", kReceiptBatchLabel, "\\000'; cat ",
                             p, ".node; } > ", p, ".signed"));
  sh->push_back(SanCheck(p + "-signer.pem", body.recipient()));
  sh->push_back(absl::StrCat("openssl x509 -in ", p, "-signer.pem -pubkey ",
                             "-noout > ", p, "-signer.pub"));
  sh->push_back(absl::StrCat("openssl dgst -sha256 -verify ", p,
                             "-signer.pub -signature ", p, ".sig ", p,
                             ".signed"));
  sh->push_back(
      Echo(absl::StrCat((*step)++, ". ", body.recipient(),
                        "'s signing certificate, as at ", Iso(at_s))));
  sh->push_back(absl::StrCat(
      "openssl verify -attime ", at_s, " -CAfile ", p, "-trust.pem -untrusted ",
      p, "-signer.pem", rt.crl ? " -crl_check" : "", " ", p, "-signer.pem"));
  if (!rt.crl) notes->push_back(rt.missing);
  return true;
}

const char kReceiptFilesHelp[] =
    "- `receipt-PEER.body`, `.sig`, `.pathN`: a recipient's signed receipt "
    "(protobuf `kontor.v1.ReceiptBody`), its ECDSA signature and the Merkle "
    "path to the signed batch root (leaf = SHA-256(0x00 || SHA-256(body)), "
    "node = SHA-256(0x01 || left || right), signed: \"";

// What is left to prove of a message whose content was erased: the
// recipients' receipts (they name the SHA-256 of the signed message as it
// was), and the recipients' signed confirmations that they erased it.
absl::StatusOr<std::vector<ExportFile>> BuildErasedExport(
    const ExportInput& in) {
  const KnownMessage& m = in.message;
  if (m.inner_digest.size() != 32) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the content of ", m.message_id, " was erased at ",
        FormatRfc3339Ms(m.purged_ms),
        " and this node kept no digest of it; there is nothing to export"));
  }
  const Archive archive = Load(in.evidence);
  const std::string origin_id = m.sent ? in.node_id : m.origin;
  std::vector<ExportFile> files;
  std::vector<std::string> sh;
  std::vector<std::string> notes;
  sh.push_back(Echo(absl::StrCat("Message ", m.message_id, " from ", origin_id,
                                 ": its content was erased at ",
                                 FormatRfc3339Ms(m.purged_ms),
                                 "; what it was is named by its SHA-256:")));
  sh.push_back(absl::StrCat("digest=", HexEncode(m.inner_digest)));
  sh.push_back("echo \"$digest\"");
  int step = 1;
  size_t receipts = 0, confirmations = 0;
  for (const ExportReceipt& r : in.receipts) {
    ReceiptWant want;
    want.message_id = m.message_id;
    want.origin = origin_id;
    want.digest = m.inner_digest;
    if (AddReceipt(archive, r, want, &step, &files, &sh, &notes)) ++receipts;
  }
  for (const ExportErasure& e : in.erasures) {
    ReceiptWant want;
    want.message_id = e.order_id;
    want.origin = origin_id;
    want.erased = m.message_id;
    // The order's own receipt names the order's content, not this one's.
    want.digest = e.order_digest;
    sh.push_back(absl::StrCat("order_digest=", HexEncode(e.order_digest)));
    want.digest_var = "order_digest";
    if (AddReceipt(archive, e.receipt, want, &step, &files, &sh, &notes)) {
      ++confirmations;
    }
  }
  sh.push_back(Echo("all checks passed"));
  const std::string script = absl::StrCat(absl::StrJoin(sh, "\n"), "\n");
  files.push_back(ExportFile{
      "verify.sh",
      absl::StrCat("#!/bin/sh\n# Evidence of Kontor message ", m.message_id,
                   " (content erased): run inside this directory (sh "
                   "verify.sh).\nset -e\n",
                   script)});
  std::string readme = absl::StrCat(
      "# Evidence: Kontor message ", m.message_id, " (content erased)\n\n",
      "Origin ", origin_id, ", created ", Iso(m.created_ms / 1000),
      ". Its content was erased at ", FormatRfc3339Ms(m.purged_ms), " (",
      in.erased_how.empty() ? "after its retention, or by an erase order"
                            : in.erased_how,
      "): the signed message is gone everywhere it was erased, and cannot "
      "be shown. What remains proves, with openssl alone, what was sent (by "
      "its SHA-256, `digest` in verify.sh), to whom and when, and that it "
      "was erased:\n\n",
      "- ", receipts,
      " recipient receipt(s): each recipient signed that it "
      "accepted this message, naming the SHA-256 of the signed message it "
      "opened (field `inner_digest`, tag 0x62).\n",
      "- ", confirmations,
      " erasure confirmation(s): each recipient signed, "
      "in its receipt of the erase order, that it erased this message "
      "(field `erased`, 13).\n\n",
      kReceiptFilesHelp, kReceiptBatchLabel,
      "\" 0x00 root). `erasure-PEER-ID.*`: the same for the receipt of an "
      "erase order.\n\n",
      "Run inside this directory (the same commands are in `verify.sh`); "
      "any failing command stops it:\n\n```sh\nset -e\n",
      script, "```\n");
  if (!notes.empty()) {
    readme += "\nNot covered:\n\n";
    for (const std::string& n : notes) readme += absl::StrCat("- ", n, "\n");
  }
  files.push_back(ExportFile{"README.md", readme});
  for (ExportFile& f : ProtoFiles()) files.push_back(std::move(f));
  return files;
}

}  // namespace

absl::StatusOr<std::vector<ExportFile>> BuildExport(const ExportInput& in) {
  const KnownMessage& m = in.message;
  if (m.purged_ms != 0) return BuildErasedExport(in);
  if (m.inner_signed.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        m.message_id,
        " was sent before this node kept the signed content of its own "
        "messages; there is nothing to export"));
  }
  const Archive archive = Load(in.evidence);
  const std::string origin = m.sent ? std::string() : m.origin;
  CertificatePtr signer;
  std::string signed_content;
  for (const CertificatePtr& c : archive.certs) {
    if (origin.empty() || c->node_id() == origin) {
      auto content = CmsVerify(m.inner_signed, *c);
      if (content.ok()) {
        signer = c;
        signed_content = std::move(*content);
        break;
      }
    }
  }
  v1::InnerContent inner;
  if (signer && (!inner.ParseFromString(signed_content) ||
                 inner.message_id() != m.message_id ||
                 inner.origin() != signer->node_id())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the signed content of ", m.message_id, " does not name it"));
  }
  if (signer && inner.SerializeAsString() != signed_content) {
    // The checks compare bytes at fixed positions: only the standard
    // encoding (what Kontor writes) says what they read.
    return absl::FailedPreconditionError(absl::StrCat(
        "the signed content of ", m.message_id,
        " is not in the standard protobuf encoding; its fields cannot be "
        "shown byte for byte"));
  }
  if (!signer) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no archived signing certificate verifies ", m.message_id,
        " (the archive holds the certificates this node used or trusted "
        "since it kept one)"));
  }
  const std::string origin_id = signer->node_id();
  const int64_t created_s = m.created_ms / 1000;
  std::vector<ExportFile> files;
  files.push_back(ExportFile{"message.cms", m.inner_signed});
  const Trust origin_trust = TrustFor(archive, *signer, created_s);
  if (!origin_trust.root) {
    return absl::FailedPreconditionError(origin_trust.missing);
  }
  files.push_back(
      ExportFile{"origin-signer.pem", ChainPem(*signer, origin_trust)});
  files.push_back(ExportFile{"trust-origin.pem", TrustPem(origin_trust)});
  if (!in.payload_json.empty()) {
    files.push_back(ExportFile{"content.json", in.payload_json});
  }
  for (ExportFile& f : ProtoFiles()) files.push_back(std::move(f));

  // The fields of the signed content before the payload, as their exact
  // bytes: the signed bytes must begin with them (a positional match, not
  // a search).
  v1::InnerContent head = inner;
  head.clear_payload();
  head.DiscardUnknownFields();
  const std::string content_head = head.SerializeAsString();

  std::vector<std::string> sh;
  std::vector<std::string> notes;
  sh.push_back(Echo(absl::StrCat("1. ", origin_id,
                                 "'s signature over the message, as at ",
                                 Iso(created_s))));
  // -signer writes the certificate that verified: the name check is on
  // that one, whatever else origin-signer.pem holds.
  sh.push_back(absl::StrCat(
      "openssl cms -verify -binary -inform DER -in message.cms -nointern "
      "-certfile origin-signer.pem -CAfile trust-origin.pem -purpose any "
      "-attime ",
      created_s, origin_trust.crl ? " -crl_check" : "",
      " -signer origin-used.pem -out content.bin"));
  sh.push_back("test \"$(grep -c 'BEGIN CERTIFICATE' origin-used.pem)\" = 1");
  sh.push_back(SanCheck("origin-used.pem", origin_id));
  if (!origin_trust.crl) notes.push_back(origin_trust.missing);
  sh.push_back(Echo(absl::StrCat(
      "2. what was signed: message ", m.message_id, " from ", origin_id, " to ",
      absl::StrJoin(inner.recipients(), ","), ", created ",
      FormatRfc3339Ms(inner.created_unix_ms()), ", then its payload")));
  sh.push_back(absl::StrCat("test \"$(head -c ", content_head.size(),
                            " content.bin | od -An -v -tx1 | tr -d ' \\n')\" "
                            "= ",
                            HexEncode(content_head)));
  sh.push_back(
      "if command -v protoc >/dev/null 2>&1; then protoc -I proto --decode "
      "kontor.v1.InnerContent proto/kontor/v1/envelope.proto < content.bin; "
      "fi");
  sh.push_back("digest=$(openssl dgst -sha256 -r message.cms | cut -c1-64)");

  int step = 3;
  size_t exported = 0;
  const std::string inner_digest = Sha256(m.inner_signed);
  for (const ExportReceipt& r : in.receipts) {
    ReceiptWant want;
    want.message_id = m.message_id;
    want.origin = origin_id;
    want.digest = inner_digest;
    if (AddReceipt(archive, r, want, &step, &files, &sh, &notes)) ++exported;
  }
  sh.push_back(Echo("all checks passed"));

  const std::string script = absl::StrCat(absl::StrJoin(sh, "\n"), "\n");
  files.push_back(ExportFile{
      "verify.sh",
      absl::StrCat("#!/bin/sh\n# Evidence of Kontor message ", m.message_id,
                   ": run inside this directory (sh verify.sh).\nset -e\n",
                   script)});
  std::string readme = absl::StrCat(
      "# Evidence: Kontor message ", m.message_id, "\n\n", "Origin ", origin_id,
      ", created ", Iso(created_s), ", ", exported, " signed receipt(s).\n\n",
      "These files prove, with openssl alone, that ", origin_id,
      " signed the content in `message.cms` and that each recipient signed "
      "a receipt naming exactly that content. Each signature is checked as "
      "at the time it was made (`-attime`), against the CA certificate and "
      "the CRL then in force, so the proof holds after certificates are "
      "rotated or expire. Compare the CA certificates in `*trust*.pem` with "
      "the federation CA you know (`openssl x509 -fingerprint -sha256 "
      "-noout -in trust-origin.pem`).\n\n",
      "- `message.cms`: the message as signed (CMS SignedData, DER); its "
      "content is the protobuf `kontor.v1.InnerContent` (see `proto/`), "
      "written to `content.bin` by step 1.\n",
      "- `origin-signer.pem`, `trust-origin.pem`: the signing certificate; "
      "the CA certificate and its CRL at the time.\n",
      kReceiptFilesHelp, kReceiptBatchLabel, "\" 0x00 root).\n",
      "- `content.json`: the payload as Kontor shows it (for reading; the "
      "signed bytes are in content.bin). `message.cms` also holds the keys "
      "of the message's attachments: keep the bundle as you would the "
      "message.\n\n",
      "Each signer's certificate must name its node "
      "(`URI:urn:kontor:node:ID`); the signed fields are compared as exact "
      "bytes at fixed positions (`head -c N | od`), and a receipt's "
      "`inner_digest` (field 12, tag 0x62) must hold SHA-256(message.cms). "
      "Only an acceptance carries that digest.\n\n",
      "Run inside this directory (the same commands are in `verify.sh`); "
      "any failing command stops it:\n\n```sh\nset -e\n",
      script, "```\n");
  if (!notes.empty()) {
    readme += "\nNot covered:\n\n";
    for (const std::string& n : notes) readme += absl::StrCat("- ", n, "\n");
  }
  files.push_back(ExportFile{"README.md", readme});
  return files;
}

}  // namespace kontor
