#include "daemon/common/kinds.h"

#include <algorithm>

namespace kontor {

const std::vector<std::string>& MessageKinds() {
  static const auto* kinds = new std::vector<std::string>{"note",
                                                          "referral.consult",
                                                          "referral",
                                                          "referral.response",
                                                          "case.update",
                                                          "consent.update",
                                                          "intel.report",
                                                          "intel.request",
                                                          "intel.response",
                                                          "incident.report",
                                                          "sitrep",
                                                          "alert",
                                                          "restriction.update",
                                                          "erase.notice"};
  return *kinds;
}

bool IsMessageKind(absl::string_view kind) {
  const auto& kinds = MessageKinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

}  // namespace kontor
