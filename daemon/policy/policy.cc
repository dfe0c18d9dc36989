#include "daemon/policy/policy.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"

namespace kontor {

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coordinator";
    case Role::kLiaison:
      return "liaison";
    case Role::kSystem:
      return "system";
    case Role::kAdmin:
      return "admin";
  }
  return "admin";
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role r :
       {Role::kCoordinator, Role::kLiaison, Role::kSystem, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

bool RoleMayUseKind(Role role, absl::string_view kind) {
  if (!IsMessageKind(kind)) return false;
  if (role == Role::kAdmin || role == Role::kSystem) return true;
  if (kind == "note" || kind == "restriction.update" ||
      kind == "erase.notice") {
    return true;
  }
  const bool referral = absl::StartsWith(kind, "referral") ||
                        kind == "case.update" || kind == "consent.update";
  return role == Role::kCoordinator ? referral : !referral;
}

bool RoleMaySendFlash(Role role) { return role != Role::kCoordinator; }

bool RoleIsAdmin(Role role) { return role == Role::kAdmin; }

bool MaySee(const Caller& caller, const MessageView& m) {
  if (RoleIsAdmin(caller.role)) return true;
  if (m.sent) return !m.submitter.empty() && m.submitter == caller.id;
  return RoleMayUseKind(caller.role, m.kind);
}

std::vector<std::string> KindsOfRole(Role role) {
  std::vector<std::string> out;
  for (const std::string& k : MessageKinds()) {
    if (RoleMayUseKind(role, k)) out.push_back(k);
  }
  return out;
}

absl::Status PeerPolicy::MaySendTo(const std::string& peer,
                                   const std::string& kind) const {
  auto it = send_.find(peer);
  if (it == send_.end() || it->second.count(kind)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("to: ", peer, " does not take ", kind,
                   " messages from this node (policy: peers ", peer,
                   " send_kinds: ", absl::StrJoin(it->second, ", "), ")"));
}

bool PeerPolicy::MayAcceptFrom(const std::string& origin,
                               const std::string& kind) const {
  auto it = accept_.find(origin);
  return it == accept_.end() || it->second.count(kind) > 0;
}

}  // namespace kontor
