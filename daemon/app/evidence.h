#ifndef KONTOR_DAEMON_APP_EVIDENCE_H_
#define KONTOR_DAEMON_APP_EVIDENCE_H_

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

// A recipient's receipt of an erase order that names the exported message.
struct ExportErasure {
  std::string order_id;      // the erase.notice / consent.update
  std::string order_digest;  // SHA-256 of the order's inner CMS
  ExportReceipt receipt;
};

struct ExportInput {
  std::string node_id;   // this node
  KnownMessage message;  // with inner_signed (the message as sent), or
                         // erased (purged_ms) with inner_digest
  std::vector<ExportReceipt> receipts;
  std::vector<EvidenceItem> evidence;  // the archive
  std::string payload_json;            // the payload, for people
  // An erased message: how (for the README), and the erase orders' receipts
  // that confirm it.
  std::string erased_how;
  std::vector<ExportErasure> erasures;
};

// An evidence bundle (`kontor export`): the inner CMS SignedData as sent,
// the recipients' signed receipts with their Merkle paths, the signers'
// certificates, the CA certificates and the CRLs in force at the time of
// each signature, the .proto files, and a README whose commands (the same
// as verify.sh) check all of it with openssl alone, at the time of each
// signature (-attime), so they hold after a rotation.
// A message whose content was erased exports what remains: the receipts
// (they name the SHA-256 of the signed message), and the recipients' signed
// confirmations that they erased it (receipts of erase orders).
// kFailedPrecondition if there is nothing to verify it with.
absl::StatusOr<std::vector<ExportFile>> BuildExport(const ExportInput& in);

}  // namespace kontor

#endif  // KONTOR_DAEMON_APP_EVIDENCE_H_
