#ifndef KONTOR_DAEMON_SERVER_NODE_H_
#define KONTOR_DAEMON_SERVER_NODE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "daemon/api/local_service.h"
#include "daemon/app/app.h"
#include "daemon/app/watch.h"
#include "daemon/common/clock.h"
#include "daemon/inbox/receiver.h"
#include "daemon/metrics/metrics.h"
#include "daemon/outbox/outbox.h"
#include "daemon/server/identity.h"
#include "daemon/store/store.h"
#include "daemon/transport/federation_service.h"
#include "daemon/transport/peer_link.h"
#include "daemon/web/metrics_server.h"
#include "kontor/v1/config.pb.h"

namespace kontor {

// The composition root: one running Kontor node. Create() loads and checks
// everything (exit code 2 material); Start() binds and runs (exit code 1
// material).
class Node {
 public:
  static absl::StatusOr<std::unique_ptr<Node>> Create(v1::NodeConfig config,
                                                      const Clock* clock);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  absl::Status Start();
  // Stops accepting, finishes in-flight calls (bounded), stops the outbox.
  void Shutdown();
  // Removes attachment chunks nobody needs: staged ones whose envelope
  // never came (limits.staged_chunk_hours), and those of messages sent or
  // relayed whose deliveries all settled. At start and every 10 minutes.
  void Housekeeping();

  int federation_port() const { return federation_port_; }
  int metrics_port() const { return metrics_port_; }
  Metrics* metrics() { return &metrics_; }
  int operator_port() const { return operator_port_; }
  const v1::NodeConfig& config() const { return config_; }
  Store* store() { return store_.get(); }

 private:
  Node(v1::NodeConfig config, const Clock* clock)
      : config_(std::move(config)), clock_(clock) {}
  absl::Status Init();
  absl::Status StartOperatorApi();
  // Gauges read when scraped (queues, backoff, certificates, CRLs).
  void RegisterGauges();

  v1::NodeConfig config_;
  const Clock* clock_;
  // First: everything below reports into it.
  Metrics metrics_;
  int lock_fd_ = -1;
  NodeIdentity identity_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sealer> sealer_;
  std::unique_ptr<Opener> opener_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<GrpcPeerLink> link_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<App> app_;
  std::unique_ptr<WatchHub> watch_hub_;
  std::unique_ptr<LocalService> local_service_;
  std::unique_ptr<FederationService> federation_service_;
  std::unique_ptr<grpc::Server> federation_server_;
  std::unique_ptr<grpc::Server> local_server_;
  std::unique_ptr<grpc::Server> operator_server_;
  std::thread audit_signer_;
  absl::Notification stop_audit_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::atomic<bool> serving_{false};
  int metrics_port_ = 0;
  int federation_port_ = 0;
  int operator_port_ = 0;
  int grpc_limit_ = 0;  // gRPC message size limit, both ways
  bool shut_down_ = false;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_SERVER_NODE_H_
