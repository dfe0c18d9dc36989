#ifndef KONTOR_DAEMON_SERVER_RUNNER_H_
#define KONTOR_DAEMON_SERVER_RUNNER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "daemon/common/clock.h"
#include "daemon/server/node.h"
#include "kontor/v1/config.pb.h"

namespace kontor {

// Runs the node of a config file and replaces it when the config, or any
// certificate, key or CRL file it names, changes (SIGHUP or a periodic look
// at the files). A reload validates everything first: a bad new config is
// refused with the reason in the log and the running node is not touched.
// A good one replaces the node in-process (stores closed and reopened,
// servers rebound, peers re-handshaken so a revoked one is cut off). Not
// thread-safe: one thread drives it.
class NodeRunner {
 public:
  NodeRunner(std::string config_path, const Clock* clock);
  ~NodeRunner();

  // Loads, checks and starts. kInvalidArgument/kNotFound: the config or its
  // files are wrong (exit code 2); other codes: cannot run (exit code 1).
  absl::Status Start();
  // Reloads if valid (see above); `why` goes to the log.
  void Reload(const std::string& why);
  // Whether the config file or a file it names changed since the last load
  // (attempted or not).
  bool FilesChanged();
  void Shutdown();

  int64_t check_interval_ms() const;

 private:
  std::string Fingerprint(const v1::NodeConfig& config) const;
  absl::Status StartWith(const v1::NodeConfig& config);

  const std::string config_path_;
  const Clock* clock_;
  v1::NodeConfig config_;  // of the running node
  std::unique_ptr<Node> node_;
  std::string fingerprint_;  // of the files at the last load
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_SERVER_RUNNER_H_
