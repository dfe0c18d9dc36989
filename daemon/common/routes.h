#ifndef KONTOR_DAEMON_COMMON_ROUTES_H_
#define KONTOR_DAEMON_COMMON_ROUTES_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kontor {

// At most this many authenticated hops (origin included) before an envelope
// is refused as looping or misrouted.
inline constexpr size_t kMaxHops = 8;

// Where envelopes go and which relayed ones are accepted (config `peers`
// with an address, `routes`, `relay`). Immutable once built; a reload builds
// a new one.
class Routes {
 public:
  Routes() = default;
  // `direct`: peers with an address. `via`: destination → next hop.
  // `relay`: (origin, destination) pairs this node relays.
  Routes(std::set<std::string> direct, std::map<std::string, std::string> via,
         std::set<std::pair<std::string, std::string>> relay);

  // The peer to hand an envelope for `destination` to; empty if none.
  std::string NextHop(const std::string& destination) const;
  // Destinations whose envelopes go through `hop` (itself first if direct).
  std::vector<std::string> DestinationsVia(const std::string& hop) const;
  // May the authenticated peer `peer` hand us envelopes originated by
  // `origin`? Yes for its own, and for an `origin` routed via `peer` (the
  // way our own envelopes and receipts to `origin` go too).
  bool IngressAllowed(const std::string& origin, const std::string& peer) const;
  bool RelayAllowed(const std::string& origin,
                    const std::string& destination) const;
  bool relays() const { return !relay_.empty(); }

 private:
  std::set<std::string> direct_;
  std::map<std::string, std::string> via_;
  std::set<std::pair<std::string, std::string>> relay_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_ROUTES_H_
