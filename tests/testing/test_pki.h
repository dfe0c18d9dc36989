#ifndef KONTOR_TESTS_TESTING_TEST_PKI_H_
#define KONTOR_TESTS_TESTING_TEST_PKI_H_

#include <memory>
#include <string>
#include <vector>

#include "daemon/crypto/certificate.h"
#include "daemon/crypto/primitives.h"
#include "kontor/v1/config.pb.h"

namespace kontor::testing {

// Makes certificates with OpenSSL's API for tests: CAs, node certificates
// with any node id, key usage and validity, and CRLs. Files are written under
// a directory of the test's own.
class TestPki {
 public:
  struct Ca {
    std::string name;
    std::shared_ptr<PrivateKey> key;
    CertificatePtr cert;
    std::string cert_path;
    std::string crl_path;
    std::vector<long> revoked;  // serials
  };
  struct KeyPair {
    std::shared_ptr<PrivateKey> key;
    CertificatePtr cert;
    std::string cert_path;
    std::string key_path;
  };
  struct Node {
    std::string id;
    KeyPair tls, signing, encryption;
  };

  explicit TestPki(std::string dir);

  const std::string& dir() const { return dir_; }
  Ca MakeCa(const std::string& name);
  // Issues a certificate for urn:kontor:node:<node_id> (no URI SAN if
  // node_id is empty) with the usage of `purpose`, valid from now+from_s to
  // now+to_s seconds.
  KeyPair Issue(Ca& ca, const std::string& node_id, KeyPurpose purpose,
                long from_s = -3600, long to_s = 365 * 86400,
                const std::string& file_tag = "");
  Node MakeNode(Ca& ca, const std::string& node_id);
  // Rewrites the CA's CRL with the given serials revoked, next update in
  // `next_update_s` seconds.
  void WriteCrl(Ca& ca, long next_update_s = 30 * 86400);
  void Revoke(Ca& ca, const Certificate& cert);

  // A node config for `self` talking to `peers`, all certified by `ca`.
  static v1::NodeConfig Config(const Node& self, const std::vector<Node>& peers,
                               const std::vector<int>& peer_ports, const Ca& ca,
                               const std::string& data_dir,
                               const std::string& socket, int port);

 private:
  std::string dir_;
  long next_serial_ = 1000;
};

// A free TCP port on 127.0.0.1 (bound and released).
int FreePort();
// A fresh directory under /tmp with a short path, removed with everything
// in it when the process exits (kept if KONTOR_KEEP_TMP is set).
std::string TempDir(const std::string& tag);

// A whole file's bytes ("" if it cannot be read), and a file written (or
// replaced) with `data`.
std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data);

}  // namespace kontor::testing

#endif  // KONTOR_TESTS_TESTING_TEST_PKI_H_
