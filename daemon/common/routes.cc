#include "daemon/common/routes.h"

namespace kontor {

Routes::Routes(std::set<std::string> direct,
               std::map<std::string, std::string> via,
               std::set<std::pair<std::string, std::string>> relay)
    : direct_(std::move(direct)),
      via_(std::move(via)),
      relay_(std::move(relay)) {}

std::string Routes::NextHop(const std::string& destination) const {
  auto it = via_.find(destination);
  if (it != via_.end()) return it->second;
  return direct_.count(destination) ? destination : std::string();
}

std::vector<std::string> Routes::DestinationsVia(const std::string& hop) const {
  std::vector<std::string> out;
  if (direct_.count(hop) && via_.count(hop) == 0) out.push_back(hop);
  for (const auto& [dest, next] : via_) {
    if (next == hop) out.push_back(dest);
  }
  return out;
}

bool Routes::IngressAllowed(const std::string& origin,
                            const std::string& peer) const {
  if (origin == peer) return true;
  auto it = via_.find(origin);
  return it != via_.end() && it->second == peer;
}

bool Routes::RelayAllowed(const std::string& origin,
                          const std::string& destination) const {
  return relay_.count({origin, destination}) > 0;
}

}  // namespace kontor
