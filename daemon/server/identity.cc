#include "daemon/server/identity.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/crypto/primitives.h"

namespace kontor {
namespace {

absl::Status Field(absl::string_view field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

// Loads a certificate and checks it certifies `node_id` for `purpose`.
// `at` < 0: check the chain and revocation but not the validity window
// (old signing keys stay usable for envelopes made while they were valid).
absl::StatusOr<CertificatePtr> LoadNodeCert(const std::string& path,
                                            absl::string_view field,
                                            const std::string& node_id,
                                            KeyPurpose purpose,
                                            const TrustStore& trust, int64_t at,
                                            int64_t now) {
  auto cert = Certificate::FromFile(path);
  if (!cert.ok()) return Field(field, cert.status());
  if ((*cert)->node_id() != node_id) {
    return Field(field, absl::InvalidArgumentError(absl::StrCat(
                            path, " is for node '", (*cert)->node_id(),
                            "', expected '", node_id, "'")));
  }
  auto id = trust.VerifyNodeCertificate(
      **cert, purpose, at < 0 ? (*cert)->not_before_unix_ms() : at, now);
  if (!id.ok()) return Field(field, id.status());
  return *cert;
}

// Private keys should be readable by kontord's user (and group) only.
void WarnIfExposed(const std::string& key_path, absl::string_view field) {
  struct stat st {};
  if (stat(key_path.c_str(), &st) == 0 && (st.st_mode & 0007) != 0) {
    KLOG(Warning, "config")
        << field << ": private key " << key_path
        << " is readable by others (mode " << std::oct << (st.st_mode & 0777)
        << std::dec << "); chmod 600 it";
  }
}

absl::StatusOr<DecryptionKey> LoadDecryptionKey(const v1::KeyPairFiles& files,
                                                absl::string_view field,
                                                const std::string& node_id,
                                                const TrustStore& trust,
                                                int64_t now) {
  auto cert = LoadNodeCert(files.cert(), absl::StrCat(field, ".cert"), node_id,
                           KeyPurpose::kEncryption, trust, -1, now);
  if (!cert.ok()) return cert.status();
  auto key = PrivateKey::FromFile(files.key());
  if (!key.ok()) return Field(absl::StrCat(field, ".key"), key.status());
  WarnIfExposed(files.key(), absl::StrCat(field, ".key"));
  if (!(*key)->Matches(**cert)) {
    return Field(absl::StrCat(field, ".key"),
                 absl::InvalidArgumentError("does not match the certificate"));
  }
  return DecryptionKey{std::shared_ptr<const PrivateKey>(std::move(*key)),
                       *cert};
}

absl::StatusOr<ConfigKeyDirectory::PeerKeys> LoadPeerKeys(
    const v1::NodeConfig& config, int i, const TrustStore& trust, int64_t now) {
  const auto& p = config.peers(i);
  ConfigKeyDirectory::PeerKeys keys;
  for (int j = 0; j < p.signing_certs_size(); ++j) {
    auto c = LoadNodeCert(p.signing_certs(j),
                          absl::StrCat("peers[", i, "].signing_certs[", j, "]"),
                          p.id(), KeyPurpose::kSigning, trust, -1, now);
    if (!c.ok()) return c.status();
    keys.signing.push_back(*c);
  }
  auto e = LoadNodeCert(p.encryption_cert(),
                        absl::StrCat("peers[", i, "].encryption_cert"), p.id(),
                        KeyPurpose::kEncryption, trust, now, now);
  if (!e.ok()) return e.status();
  keys.encryption = *e;
  return keys;
}

}  // namespace

absl::StatusOr<CertificatePtr> ConfigKeyDirectory::SigningCert(
    absl::string_view node_id, absl::string_view key_id,
    int64_t at_unix_ms) const {
  const PeerKeys* keys = Find(std::string(node_id));
  if (keys == nullptr) {
    return absl::NotFoundError(absl::StrCat("'", node_id, "' is not a peer"));
  }
  for (const CertificatePtr& c : keys->signing) {
    if (c->key_id() != key_id) continue;
    if (!c->ValidAt(at_unix_ms)) {
      return absl::UnauthenticatedError(
          absl::StrCat("signing certificate of ", node_id, " is not valid at ",
                       FormatRfc3339Ms(at_unix_ms)));
    }
    return c;
  }
  return absl::NotFoundError(absl::StrCat("no signing key ",
                                          HexEncode(key_id.substr(0, 8)),
                                          " of ", node_id, " is configured"));
}

absl::StatusOr<CertificatePtr> ConfigKeyDirectory::EncryptionCert(
    absl::string_view node_id) const {
  const PeerKeys* keys = Find(std::string(node_id));
  if (keys == nullptr || keys->encryption == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no encryption certificate for '", node_id, "'"));
  }
  return keys->encryption;
}

const ConfigKeyDirectory::PeerKeys* ConfigKeyDirectory::Find(
    const std::string& node_id) const {
  auto it = peers_.find(node_id);
  return it == peers_.end() ? nullptr : &it->second;
}

absl::StatusOr<NodeIdentity> LoadIdentity(const v1::NodeConfig& config,
                                          const Clock* clock, bool strict) {
  const int64_t now = clock->NowUnixMs();
  NodeIdentity id;
  std::vector<TrustedCaFiles> cas;
  for (const auto& ca : config.trusted_cas()) {
    cas.push_back(TrustedCaFiles{
        ca.cert(),
        ca.crl(),
        {ca.allowed_node_ids().begin(), ca.allowed_node_ids().end()},
        ca.allow_missing_crl()});
    if (ca.crl().empty()) {
      KLOG(Warning, "config")
          << "trusted CA " << ca.cert() << " has no CRL: its certificates are "
          << (ca.allow_missing_crl()
                  ? "ACCEPTED without revocation checks (allow_missing_crl)"
                  : "refused");
    }
  }
  auto trust = TrustStore::Load(cas);
  if (!trust.ok()) return Field("trusted_cas", trust.status());
  id.trust = std::move(*trust);
  const std::string& self = config.node_id();

  auto tls = LoadNodeCert(config.tls().cert(), "tls.cert", self,
                          KeyPurpose::kTls, *id.trust, now, now);
  if (!tls.ok()) return tls.status();
  id.tls_cert = *tls;
  auto tls_key = PrivateKey::FromFile(config.tls().key());
  if (!tls_key.ok()) return Field("tls.key", tls_key.status());
  WarnIfExposed(config.tls().key(), "tls.key");
  if (!(*tls_key)->Matches(**tls)) {
    return Field("tls.key",
                 absl::InvalidArgumentError("does not match tls.cert"));
  }
  // TLS serves exactly these bytes (no file watching): a certificate put in
  // place is taken up by a reload, which checks it first.
  id.tls_cert_pem = (*tls)->ToPem();
  {
    std::ifstream in(config.tls().key(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    id.tls_key_pem = ss.str();
  }
  if (auto again = PrivateKey::FromPem(id.tls_key_pem);
      !again.ok() || !(*again)->Matches(**tls)) {
    return Field("tls.key", absl::UnavailableError("changed while loading"));
  }

  auto signing = LoadNodeCert(config.signing().cert(), "signing.cert", self,
                              KeyPurpose::kSigning, *id.trust, now, now);
  if (!signing.ok()) return signing.status();
  auto signing_key = PrivateKey::FromFile(config.signing().key());
  if (!signing_key.ok()) return Field("signing.key", signing_key.status());
  WarnIfExposed(config.signing().key(), "signing.key");
  auto signer = EcdsaSigner::New(std::move(*signing_key), *signing);
  if (!signer.ok()) return Field("signing.key", signer.status());
  id.signer = std::move(*signer);

  auto enc = LoadDecryptionKey(config.encryption(), "encryption", self,
                               *id.trust, now);
  if (!enc.ok()) return enc.status();
  id.decryption_keys.push_back(*enc);
  for (int i = 0; i < config.old_encryption_size(); ++i) {
    auto old = LoadDecryptionKey(config.old_encryption(i),
                                 absl::StrCat("old_encryption[", i, "]"), self,
                                 *id.trust, now);
    if (!old.ok()) return old.status();
    id.decryption_keys.push_back(*old);
  }
  if (id.tls_cert->key_id() == id.signer->certificate()->key_id() ||
      id.tls_cert->key_id() == id.decryption_keys[0].cert->key_id() ||
      id.signer->certificate()->key_id() ==
          id.decryption_keys[0].cert->key_id()) {
    return absl::InvalidArgumentError(
        "tls, signing and encryption must each have their own key");
  }

  std::map<std::string, ConfigKeyDirectory::PeerKeys> peers;
  for (int i = 0; i < config.peers_size(); ++i) {
    const auto& p = config.peers(i);
    auto keys = LoadPeerKeys(config, i, *id.trust, now);
    if (!keys.ok()) {
      if (strict) return keys.status();
      KLOG(Warning, "config")
          << "peer " << p.id() << " is unusable: " << keys.status().message();
      id.unusable_peers[p.id()] = std::string(keys.status().message());
      continue;
    }
    peers[p.id()] = std::move(*keys);
  }
  id.directory = std::make_unique<ConfigKeyDirectory>(std::move(peers));

  const auto& op = config.operator_api();
  if (!op.listen_address().empty()) {
    auto trust = OperatorTrust::Load(op, id.trust->RootsPem());
    if (!trust.ok()) return trust.status();
    id.operator_trust = std::move(*trust);
    const int64_t next = id.operator_trust->crl_next_update_ms();
    if (op.crl().empty()) {
      KLOG(Warning, "config")
          << "operator_api: no CRL: operator certificates are ACCEPTED "
             "without revocation checks (allow_missing_crl)";
    } else if (next < now) {
      const std::string why = absl::StrCat(
          op.crl(), ": CRL out of date since ", FormatRfc3339Ms(next),
          "; every operator certificate is refused until it is re-issued");
      if (strict) {
        return Field("operator_api.crl", absl::InvalidArgumentError(why));
      }
      KLOG(Warning, "config") << "operator_api.crl: " << why;
    }
  }
  return id;
}

}  // namespace kontor
