#include "daemon/api/roles.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"

namespace kontor {
namespace {

constexpr absl::string_view kUserPrefix = "urn:kontor:user:";
constexpr absl::string_view kRolePrefix = "urn:kontor:role:";

bool ValidUserId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

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

absl::StatusOr<Caller> OperatorFromCertificate(const Certificate& cert) {
  if (!cert.node_id().empty()) {
    return absl::PermissionDeniedError(
        "a node certificate is not a local user");
  }
  std::string user;
  std::optional<Role> role;
  int users = 0, roles = 0;
  for (const std::string& uri : cert.uris()) {
    if (absl::StartsWith(uri, kUserPrefix)) {
      user = uri.substr(kUserPrefix.size());
      ++users;
    } else if (absl::StartsWith(uri, kRolePrefix)) {
      role = ParseRole(absl::string_view(uri).substr(kRolePrefix.size()));
      ++roles;
    } else if (absl::StartsWith(uri, "urn:kontor:")) {
      return absl::PermissionDeniedError(absl::StrCat(
          "operator certificate has an unexpected name ", Printable(uri, 80)));
    }
  }
  if (users != 1 || !ValidUserId(user)) {
    return absl::PermissionDeniedError(
        "operator certificate must name one user (urn:kontor:user:<id>, "
        "lower-case letters, digits, . - _)");
  }
  if (roles != 1 || !role.has_value()) {
    return absl::PermissionDeniedError(
        "operator certificate must name one role (urn:kontor:role: "
        "coordinator, liaison, system or admin)");
  }
  return Caller{absl::StrCat("user:", user), *role};
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

std::vector<std::string> KindsOfRole(Role role) {
  std::vector<std::string> out;
  for (const std::string& k : MessageKinds()) {
    if (RoleMayUseKind(role, k)) out.push_back(k);
  }
  return out;
}

}  // namespace kontor
