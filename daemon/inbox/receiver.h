#ifndef KONTOR_DAEMON_INBOX_RECEIVER_H_
#define KONTOR_DAEMON_INBOX_RECEIVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/common/clock.h"
#include "daemon/envelope/envelope.h"
#include "daemon/store/store.h"

namespace kontor {

// The receive path (DESIGN.md §2): authenticated peer → dedup on (origin, id)
// → outer signature → decrypt and inner signature → durable inbox → signed
// receipt. A receipt therefore always attests a whole, authentic message.
// Thread-safe.
class Receiver {
 public:
  Receiver(std::string node_id, Store* store, const Opener* opener,
           std::shared_ptr<const EcdsaSigner> signer, const Clock* clock);

  // Handles one batch from the authenticated peer `peer`. Returns one
  // serialized, signed Receipt per envelope (ACCEPTED or a permanent
  // REFUSED), in order, after everything accepted is durable. An error
  // (e.g. the store is unavailable) means nothing is promised: the sender
  // must retry the whole batch.
  absl::StatusOr<std::vector<std::string>> Receive(
      const std::string& peer, const std::vector<v1::Envelope>& envelopes);

 private:
  std::string node_id_;
  Store* store_;
  const Opener* opener_;
  std::shared_ptr<const EcdsaSigner> signer_;
  const Clock* clock_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_INBOX_RECEIVER_H_
