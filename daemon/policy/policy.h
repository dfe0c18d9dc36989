#ifndef KONTOR_DAEMON_POLICY_POLICY_H_
#define KONTOR_DAEMON_POLICY_POLICY_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kontor {

// Who may send, see and do what (DESIGN.md §1, §3): the rules of local users
// and their roles, written once for every front end (the gRPC local API, the
// console). Plain functions of their arguments; no I/O.
//
// Local users: an operator certificate from the operator CA names the user
// and one role (api/operator_auth.h); the unix socket is local
// administration.
enum class Role { kCoordinator, kLiaison, kSystem, kAdmin };

struct Caller {
  std::string id;  // "user:<id>", or "local-admin" on the unix socket
  Role role = Role::kAdmin;
};

absl::string_view RoleName(Role role);
std::optional<Role> ParseRole(absl::string_view name);

// Which kinds a role works with: it may send them and read them.
//   coordinator: referrals (TRM) and notes;
//   liaison:     intelligence, incidents, sitreps, alerts and notes;
//   system:      every kind (national systems syncing unattended);
//   admin:       every kind.
// restriction.update and erase.notice belong to both domains.
bool RoleMayUseKind(Role role, absl::string_view kind);
// Only liaison officers, systems and admins send flash.
bool RoleMaySendFlash(Role role);
// Seeing other users' sent messages and the whole outbox, cancel/retry of
// others' messages, the audit log, purge.
bool RoleIsAdmin(Role role);
// The kinds of RoleMayUseKind, for error messages.
std::vector<std::string> KindsOfRole(Role role);

// What decides who may see a message this node holds.
struct MessageView {
  bool sent = false;      // sent from this node (else received)
  std::string submitter;  // the local user who sent it (sent only)
  std::string kind;
};

// The one rule of visibility, used by every call that names or lists
// messages: whether `caller` may learn anything about the message (its
// content, its metadata, that it exists at all). Admins see everything;
// others see the messages they sent, and received messages of the kinds
// their role works with. A message a caller may not see is answered
// exactly as an id this node does not know, by every call and every error.
bool MaySee(const Caller& caller, const MessageView& m);

// Per-peer policy (config `peers { accept_kinds send_kinds }`): the kinds
// each peer may send this node, and the kinds this node may send it. A peer
// not in a map is not restricted; a peer in it, only to the kinds listed
// (none, if the set is empty: PeerPolicyOf puts only peers with a list).
class PeerPolicy {
 public:
  using KindsByPeer = std::map<std::string, std::set<std::string>>;
  PeerPolicy() = default;
  PeerPolicy(KindsByPeer accept, KindsByPeer send)
      : accept_(std::move(accept)), send_(std::move(send)) {}

  // OK, or kInvalidArgument saying that `peer` does not take `kind` from
  // this node (naming the config field): a refusal at submit.
  absl::Status MaySendTo(const std::string& peer,
                         const std::string& kind) const;
  // Whether a message of `kind` from `origin` is accepted here (else it is
  // refused for good, signed: REFUSAL_POLICY).
  bool MayAcceptFrom(const std::string& origin, const std::string& kind) const;

 private:
  KindsByPeer accept_;
  KindsByPeer send_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_POLICY_POLICY_H_
