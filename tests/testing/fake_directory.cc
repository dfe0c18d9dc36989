#include "tests/testing/fake_directory.h"

namespace kontor::testing {

std::shared_ptr<const EcdsaSigner> SignerOf(const TestPki::Node& n) {
  auto key = PrivateKey::FromFile(n.signing.key_path);
  return std::shared_ptr<const EcdsaSigner>(
      std::move(*EcdsaSigner::New(std::move(*key), n.signing.cert)));
}

std::vector<DecryptionKey> DecryptionKeysOf(const TestPki::Node& n) {
  auto key = PrivateKey::FromFile(n.encryption.key_path);
  return {
      {std::shared_ptr<const PrivateKey>(std::move(*key)), n.encryption.cert}};
}

}  // namespace kontor::testing
