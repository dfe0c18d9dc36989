#ifndef KONTOR_TESTS_TESTING_FAKE_DIRECTORY_H_
#define KONTOR_TESTS_TESTING_FAKE_DIRECTORY_H_

#include <map>
#include <string>
#include <vector>

#include "daemon/envelope/envelope.h"
#include "tests/testing/test_pki.h"

namespace kontor::testing {

// Certificates by node id, with validity at the time of use checked as the
// real directory does (trust checks are the TrustStore's, tested apart).
class FakeDirectory : public KeyDirectory {
 public:
  void Add(const TestPki::Node& n) {
    signing_[n.id].push_back(n.signing.cert);
    encryption_[n.id] = n.encryption.cert;
  }
  void AddSigning(const std::string& id, CertificatePtr c) {
    signing_[id].push_back(std::move(c));
  }
  absl::StatusOr<CertificatePtr> SigningCert(absl::string_view node_id,
                                             absl::string_view key_id,
                                             int64_t at) const override {
    auto it = signing_.find(std::string(node_id));
    if (it == signing_.end()) return absl::NotFoundError("no such node");
    for (const auto& c : it->second) {
      if (c->key_id() == key_id) {
        if (!c->ValidAt(at)) return absl::UnauthenticatedError("not valid");
        return c;
      }
    }
    return absl::NotFoundError("no such key");
  }
  absl::StatusOr<CertificatePtr> EncryptionCert(
      absl::string_view node_id) const override {
    auto it = encryption_.find(std::string(node_id));
    if (it == encryption_.end()) return absl::NotFoundError("no such node");
    return it->second;
  }

 private:
  std::map<std::string, std::vector<CertificatePtr>> signing_;
  std::map<std::string, CertificatePtr> encryption_;
};

// The signer of a test node's signing key pair.
std::shared_ptr<const EcdsaSigner> SignerOf(const TestPki::Node& n);
// The decryption key of a test node.
std::vector<DecryptionKey> DecryptionKeysOf(const TestPki::Node& n);

}  // namespace kontor::testing

#endif  // KONTOR_TESTS_TESTING_FAKE_DIRECTORY_H_
