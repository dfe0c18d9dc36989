#ifndef KONTOR_DAEMON_API_EXPORT_H_
#define KONTOR_DAEMON_API_EXPORT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/store/store.h"
#include "kontor/v1/config.pb.h"

namespace kontor {

// The certificates and CRLs the config names (this node's signing
// certificate, the trusted CAs and their CRLs, the peers' signing
// certificates), to archive. Files that cannot be read are named in
// `problems` and skipped.
std::vector<EvidenceItem> EvidenceFromConfig(
    const v1::NodeConfig& config, std::vector<std::string>* problems);

struct ExportReceipt {
  std::string peer;     // who signed it
  std::string receipt;  // serialized v1::Receipt
};

struct ExportFile {
  std::string name;  // relative path inside the export directory
  std::string content;
};

struct ExportInput {
  KnownMessage message;  // with inner_signed (the message as sent)
  std::vector<ExportReceipt> receipts;
  std::vector<EvidenceItem> evidence;  // the archive
  std::string payload_json;            // the payload, for people
};

// An evidence bundle (`kontor export`): the inner CMS SignedData as sent,
// the recipients' signed receipts with their Merkle paths, the signers'
// certificates, the CA certificates and the CRLs in force at the time of
// each signature, the .proto files, and a README whose commands (the same
// as verify.sh) check all of it with openssl alone, at the time of each
// signature (-attime), so they hold after a rotation.
// kFailedPrecondition if the content was erased or there is nothing to
// verify it with.
absl::StatusOr<std::vector<ExportFile>> BuildExport(const ExportInput& in);

}  // namespace kontor

#endif  // KONTOR_DAEMON_API_EXPORT_H_
