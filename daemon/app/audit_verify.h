#ifndef KONTOR_DAEMON_APP_AUDIT_VERIFY_H_
#define KONTOR_DAEMON_APP_AUDIT_VERIFY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/crypto/primitives.h"
#include "daemon/store/store.h"
#include "kontor/v1/local.pb.h"

namespace kontor {

inline constexpr absl::string_view kAuditHeadLabel = "kontor-audit-head-v1";

// Signs the current audit chain head with the node's signing key and keeps
// it (DESIGN.md §7): at intervals and on shutdown. Nothing is signed when
// the head has not moved since the last signed one.
absl::Status SignAuditHead(Store* store, const EcdsaSigner& signer,
                           int64_t now_ms);

// Asks a peer for the receipts this node signed that it holds (serialized
// Receipts); each carries this node's audit head at that time.
using WitnessFetch = std::function<absl::StatusOr<std::vector<std::string>>(
    const std::string& peer)>;

// `kontor audit verify`: recomputes the chain; checks every signed head
// (signature and that the chain still holds it); asks each of `peers` for
// its witnesses (unless `fetch` is empty) and checks that the chain holds
// each head at its seq, with the same hash. A truncated or rewritten log
// shows as a head the chain no longer has.
absl::StatusOr<v1::AuditVerifyResponse> VerifyAudit(
    Store* store, const std::string& node_id, const EcdsaSigner& signer,
    const std::vector<std::string>& peers, const WitnessFetch& fetch);

}  // namespace kontor

#endif  // KONTOR_DAEMON_APP_AUDIT_VERIFY_H_
