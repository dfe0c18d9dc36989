#include "tests/testing/test_pki.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"

namespace kontor::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(absl::StrCat("test pki: ", what));
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  Check(static_cast<bool>(out), "write");
}

std::string KeyPem(EVP_PKEY* key) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                           nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

std::string CertPem(X509* x) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

TestPki::TestPki(std::string dir) : dir_(std::move(dir)) {}

TestPki::Ca TestPki::MakeCa(const std::string& name) {
  Ca ca;
  ca.name = name;
  ca.key = std::shared_ptr<PrivateKey>(PrivateKey::GenerateP256());
  ossl::X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), next_serial_++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -30L * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 86400);
  X509_NAME* n = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(
      n, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), n);
  X509_set_pubkey(x.get(), ca.key->pkey());
  AddExt(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExt(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExt(x.get(), x.get(), NID_subject_key_identifier, "hash");
  Check(X509_sign(x.get(), ca.key->pkey(), EVP_sha256()) > 0, "sign CA");
  const std::string pem = CertPem(x.get());
  auto parsed = Certificate::FromPem(pem);
  Check(parsed.ok(), "parse CA");
  ca.cert = *parsed;
  ca.cert_path = absl::StrCat(dir_, "/", name, ".crt");
  ca.crl_path = absl::StrCat(dir_, "/", name, ".crl.pem");
  WriteFile(ca.cert_path, pem);
  WriteCrl(ca);
  return ca;
}

TestPki::KeyPair TestPki::Issue(Ca& ca, const std::string& node_id,
                                KeyPurpose purpose, long from_s, long to_s,
                                const std::string& file_tag) {
  KeyPair kp;
  kp.key = std::shared_ptr<PrivateKey>(PrivateKey::GenerateP256());
  ossl::X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), next_serial_++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), to_s);
  const std::string cn = node_id.empty() ? "nobody" : node_id;
  X509_NAME* n = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(ca.cert->x509()));
  X509_set_pubkey(x.get(), kp.key->pkey());
  switch (purpose) {
    case KeyPurpose::kTls:
      AddExt(x.get(), ca.cert->x509(), NID_key_usage,
             "critical,digitalSignature,keyAgreement");
      AddExt(x.get(), ca.cert->x509(), NID_ext_key_usage,
             "serverAuth,clientAuth");
      break;
    case KeyPurpose::kSigning:
      AddExt(x.get(), ca.cert->x509(), NID_key_usage,
             "critical,digitalSignature,nonRepudiation");
      break;
    case KeyPurpose::kEncryption:
      AddExt(x.get(), ca.cert->x509(), NID_key_usage, "critical,keyAgreement");
      break;
  }
  std::string san =
      purpose == KeyPurpose::kTls ? "DNS:localhost,IP:127.0.0.1" : "";
  if (!node_id.empty()) {
    san = absl::StrCat("URI:", NodeUri(node_id), san.empty() ? "" : ",", san);
  }
  if (!san.empty()) {
    AddExt(x.get(), ca.cert->x509(), NID_subject_alt_name, san.c_str());
  }
  AddExt(x.get(), ca.cert->x509(), NID_subject_key_identifier, "hash");
  AddExt(x.get(), ca.cert->x509(), NID_authority_key_identifier, "keyid");
  Check(X509_sign(x.get(), ca.key->pkey(), EVP_sha256()) > 0, "sign");
  const std::string pem = CertPem(x.get());
  auto parsed = Certificate::FromPem(pem);
  Check(parsed.ok(), "parse cert");
  kp.cert = *parsed;
  const char* kind = purpose == KeyPurpose::kTls       ? "tls"
                     : purpose == KeyPurpose::kSigning ? "signing"
                                                       : "encryption";
  const std::string base =
      absl::StrCat(dir_, "/", cn, "-", ca.name, "-", kind, file_tag);
  kp.cert_path = base + ".crt";
  kp.key_path = base + ".key";
  WriteFile(kp.cert_path, pem);
  WriteFile(kp.key_path, KeyPem(kp.key->pkey()));
  return kp;
}

TestPki::Node TestPki::MakeNode(Ca& ca, const std::string& node_id) {
  Node n;
  n.id = node_id;
  n.tls = Issue(ca, node_id, KeyPurpose::kTls);
  n.signing = Issue(ca, node_id, KeyPurpose::kSigning);
  n.encryption = Issue(ca, node_id, KeyPurpose::kEncryption);
  return n;
}

void TestPki::WriteCrl(Ca& ca, long next_update_s) {
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca.cert->x509()));
  ASN1_TIME* now = ASN1_TIME_adj(nullptr, time(nullptr), 0, -60);
  ASN1_TIME* next = ASN1_TIME_adj(nullptr, time(nullptr), 0, next_update_s);
  X509_CRL_set1_lastUpdate(crl, now);
  X509_CRL_set1_nextUpdate(crl, next);
  for (long serial : ca.revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set(s, serial);
    X509_REVOKED_set_serialNumber(r, s);
    X509_REVOKED_set_revocationDate(r, now);
    X509_CRL_add0_revoked(crl, r);
    ASN1_INTEGER_free(s);
  }
  X509_CRL_sort(crl);
  Check(X509_CRL_sign(crl, ca.key->pkey(), EVP_sha256()) > 0, "sign CRL");
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  WriteFile(ca.crl_path, std::string(data, len));
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  X509_CRL_free(crl);
}

void TestPki::Revoke(Ca& ca, const Certificate& cert) {
  ca.revoked.push_back(ASN1_INTEGER_get(X509_get0_serialNumber(cert.x509())));
  WriteCrl(ca);
}

v1::NodeConfig TestPki::Config(const Node& self, const std::vector<Node>& peers,
                               const std::vector<int>& peer_ports, const Ca& ca,
                               const std::string& data_dir,
                               const std::string& socket, int port) {
  v1::NodeConfig c;
  c.set_node_id(self.id);
  c.set_data_dir(data_dir);
  c.set_listen_address(absl::StrCat("127.0.0.1:", port));
  c.set_local_socket(socket);
  c.mutable_tls()->set_cert(self.tls.cert_path);
  c.mutable_tls()->set_key(self.tls.key_path);
  c.mutable_signing()->set_cert(self.signing.cert_path);
  c.mutable_signing()->set_key(self.signing.key_path);
  c.mutable_encryption()->set_cert(self.encryption.cert_path);
  c.mutable_encryption()->set_key(self.encryption.key_path);
  auto* t = c.add_trusted_cas();
  t->set_cert(ca.cert_path);
  t->set_crl(ca.crl_path);
  t->add_allowed_node_ids(self.id);
  for (size_t i = 0; i < peers.size(); ++i) {
    t->add_allowed_node_ids(peers[i].id);
    auto* p = c.add_peers();
    p->set_id(peers[i].id);
    p->set_address(absl::StrCat("127.0.0.1:", peer_ports[i]));
    p->add_signing_certs(peers[i].signing.cert_path);
    p->set_encryption_cert(peers[i].encryption.cert_path);
  }
  c.mutable_limits()->set_max_message_bytes(1 << 20);
  c.mutable_limits()->set_max_clock_skew_seconds(300);
  c.mutable_limits()->set_default_expiry_seconds(3600);
  c.mutable_limits()->set_max_batch(64);
  c.mutable_backoff()->set_initial_ms(50);
  c.mutable_backoff()->set_max_ms(1000);
  return c;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

namespace {
std::vector<std::string>* g_temp_dirs = nullptr;

void RemoveTempDirs() {
  if (g_temp_dirs == nullptr || getenv("KONTOR_KEEP_TMP") != nullptr) return;
  for (const std::string& dir : *g_temp_dirs) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}
}  // namespace

std::string TempDir(const std::string& tag) {
  std::string tmpl = absl::StrCat("/tmp/kt-", tag, "-XXXXXX");
  Check(mkdtemp(&tmpl[0]) != nullptr, "mkdtemp");
  if (g_temp_dirs == nullptr) {
    g_temp_dirs = new std::vector<std::string>();
    std::atexit(RemoveTempDirs);
  }
  g_temp_dirs->push_back(tmpl);
  return tmpl;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace kontor::testing
