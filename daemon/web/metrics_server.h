#ifndef KONTOR_DAEMON_WEB_METRICS_SERVER_H_
#define KONTOR_DAEMON_WEB_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/metrics/metrics.h"

namespace kontor {

// The node's plain-HTTP listener for monitoring (config `metrics`):
//   GET /metrics  the Prometheus text exposition of `metrics`
//   GET /healthz  200 "ok" while `healthy()`, else 503 with the reason
// Meant for loopback or a monitoring network: it serves no message content
// and takes no input. Everything else is 404.
class MetricsServer {
 public:
  // Binds `address` ("host:port"; port 0 picks a free one) and serves on a
  // thread of its own. `healthy` returns "" when healthy, else why not.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, Metrics* metrics,
      std::function<std::string()> healthy);
  ~MetricsServer();  // stops serving
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_WEB_METRICS_SERVER_H_
