#include "daemon/server/node.h"

#include <fcntl.h>
#include <grp.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/app/audit_verify.h"
#include "daemon/attachment/files.h"
#include "daemon/common/log.h"
#include "daemon/store/open.h"
#include "daemon/web/metrics_server.h"

namespace kontor {
namespace {

constexpr int64_t kCallTimeoutMs = 30000;
// Attachment chunks nobody needs any more are looked for this often.
constexpr absl::Duration kHousekeepingEvery = absl::Minutes(10);
// Envelope overhead over the payload (CMS structures, header, signatures).
constexpr uint64_t kEnvelopeOverhead = 64 * 1024;

// Server reflection (grpc.reflection.v1alpha): on the local API, so that
// integrators and grpc_cli-style tools discover it; not on the federation
// port, which need not tell peers what it serves. Linking gRPC's reflection
// library registers the plugin for every server; this option decides per
// server (exactly one plugin, or none).
class Reflection final : public grpc::ServerBuilderOption {
 public:
  explicit Reflection(bool on) : on_(on) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    const std::string name =
        grpc::reflection::ProtoServerReflectionPlugin().name();
    plugins->erase(
        std::remove_if(plugins->begin(), plugins->end(),
                       [&](const auto& p) { return p->name() == name; }),
        plugins->end());
    if (on_) {
      plugins->push_back(
          std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  const bool on_;
};

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// True if something accepts connections on the unix socket `path`.
bool SocketInUse(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool in_use =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return in_use;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Create(v1::NodeConfig config,
                                                   const Clock* clock) {
  std::unique_ptr<Node> node(new Node(std::move(config), clock));
  if (auto s = node->Init(); !s.ok()) return s;
  return node;
}

absl::Status Node::Init() {
  auto identity = LoadIdentity(config_, clock_);
  if (!identity.ok()) return identity.status();
  identity_ = std::move(*identity);

  if (auto s = MakeDir(config_.data_dir()); !s.ok()) return s;
  // One kontord per data directory.
  const std::string lock_path = config_.data_dir() + "/kontord.lock";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", config_.data_dir(),
                     " is in use by another kontord (", lock_path, ")"));
  }
  StoreOptions store_options;
  store_options.data_dir = config_.data_dir();
  store_options.metrics = &metrics_;
  if (auto backend = ParseStoreBackend(config_.store().backend());
      backend.ok()) {
    store_options.backend = *backend;
  } else {
    return backend.status();
  }
  auto store = OpenStore(store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  // Attachments uploaded more than a day ago that no message took.
  if (auto stale =
          store_->DropStaleUploads(clock_->NowUnixMs() - 24LL * 3600 * 1000);
      stale.ok()) {
    const AttachmentDirs dirs(config_.data_dir());
    for (const std::string& id : *stale) RemoveTree(dirs.Upload(id));
    if (!stale->empty()) {
      KLOG(Info, "node") << "removed " << stale->size()
                         << " unused attachment upload(s) older than a day";
    }
  }

  const auto& limits = config_.limits();
  const uint64_t max_envelope = limits.max_message_bytes() + kEnvelopeOverhead;
  sealer_ = std::make_unique<Sealer>(config_.node_id(), identity_.signer,
                                     identity_.directory.get());
  opener_ = std::make_unique<Opener>(
      config_.node_id(), identity_.decryption_keys, identity_.directory.get(),
      clock_, int64_t{limits.max_clock_skew_seconds()} * 1000, max_envelope,
      limits.max_recipients() != 0 ? limits.max_recipients()
                                   : kDefaultMaxRecipients);
  std::vector<PeerEndpoint> endpoints;
  std::vector<std::string> peer_ids;
  for (const auto& p : config_.peers()) {
    // A peer whose certificates are not trusted gets no loop and no
    // channel; what is queued for it stays queued.
    // A peer without an address is reached through a relay (routes).
    if (identity_.unusable_peers.count(p.id()) || p.address().empty()) {
      continue;
    }
    endpoints.push_back(PeerEndpoint{p.id(), p.address()});
    peer_ids.push_back(p.id());
  }
  std::map<std::string, std::string> via;
  for (const auto& r : config_.routes()) via[r.destination()] = r.via();
  std::set<std::pair<std::string, std::string>> relay;
  for (const auto& r : config_.relay())
    relay.emplace(r.origin(), r.destination());
  Routes routes(std::set<std::string>(peer_ids.begin(), peer_ids.end()), via,
                relay);
  OutboxOptions options;
  options.initial_backoff_ms = config_.backoff().initial_ms();
  options.max_backoff_ms = config_.backoff().max_ms();
  options.max_batch = limits.max_batch();
  options.max_batch_bytes = std::max<uint64_t>(8 << 20, max_envelope);
  options.data_dir = config_.data_dir();
  options.metrics = &metrics_;
  options.routes = routes;
  grpc_limit_ =
      static_cast<int>(options.max_batch_bytes + max_envelope + (1 << 20));
  link_ = std::make_unique<GrpcPeerLink>(
      endpoints,
      TlsMaterial{identity_.tls_cert_pem, identity_.tls_key_pem,
                  identity_.trust->RootsPem()},
      identity_.trust, clock_, grpc_limit_, kCallTimeoutMs);
  outbox_ = std::make_unique<Outbox>(config_.node_id(), peer_ids, store_.get(),
                                     link_.get(), identity_.directory.get(),
                                     clock_, options);
  StagingOptions staging;
  staging.data_dir = config_.data_dir();
  staging.max_bytes_per_peer = limits.max_staged_bytes_per_peer() != 0
                                   ? limits.max_staged_bytes_per_peer()
                                   : 2 * limits.max_attachment_bytes();
  staging.min_free_bytes = limits.min_free_bytes() != 0
                               ? limits.min_free_bytes()
                               : DefaultMinFreeBytes(config_.data_dir());
  staging.ttl_ms =
      int64_t{limits.staged_chunk_hours() != 0 ? limits.staged_chunk_hours()
                                               : 24} *
      3600 * 1000;
  ReceiverOptions receiving;
  receiving.node_id = config_.node_id();
  receiving.store = store_.get();
  receiving.opener = opener_.get();
  receiving.signer = identity_.signer;
  receiving.clock = clock_;
  receiving.routes = routes;
  receiving.directory = identity_.directory.get();
  receiving.notify = [this](const std::string& hop) { outbox_->Notify(hop); };
  receiving.policy = PeerPolicyOf(config_);
  receiving.max_attachment_bytes = limits.max_attachment_bytes();
  receiving.staging = staging;
  receiving.metrics = &metrics_;
  auto receiver = Receiver::Create(std::move(receiving));
  if (!receiver.ok()) return receiver.status();
  receiver_ = std::move(*receiver);
  if (auto s = receiver_->RecoverStaging(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("staged attachment chunks in ",
                                     config_.data_dir(), ": ", s.message()));
  }
  AppOptions app;
  app.config = &config_;
  app.store = store_.get();
  app.sealer = sealer_.get();
  app.outbox = outbox_.get();
  app.clock = clock_;
  app.metrics = &metrics_;
  app.cert_info = [this](const std::string& peer) {
    PeerCertInfo info;
    info.crl_next_update_ms = identity_.trust->CrlNextUpdateMsFor(peer);
    if (const auto* keys = identity_.directory->Find(peer)) {
      for (const auto& c : keys->signing) {
        info.signing_not_after_ms =
            std::max(info.signing_not_after_ms, c->not_after_unix_ms());
      }
      info.encryption_not_after_ms = keys->encryption->not_after_unix_ms();
    }
    return info;
  };
  app.own_certs =
      OwnCertInfo{identity_.tls_cert->not_after_unix_ms(),
                  identity_.signer->certificate()->not_after_unix_ms(),
                  identity_.decryption_keys[0].cert->not_after_unix_ms()};
  app.unusable_peers = identity_.unusable_peers;
  app.signer = identity_.signer;
  app.witness_peers = peer_ids;
  app.witness = [this](const std::string& peer) {
    return link_->Witness(peer, 64);
  };
  app_ = std::make_unique<App>(std::move(app));
  watch_hub_ = std::make_unique<WatchHub>(store_.get());
  local_service_ = std::make_unique<LocalService>(app_.get(), watch_hub_.get());
  if (auto s =
          SignAuditHead(store_.get(), *identity_.signer, clock_->NowUnixMs());
      !s.ok()) {
    KLOG(Warning, "audit") << "cannot sign the audit head: " << s.message();
  }
  FederationOptions federation;
  federation.peers = std::set<std::string>(peer_ids.begin(), peer_ids.end());
  federation.max_batch = limits.max_batch();
  federation.max_calls_per_peer =
      limits.max_streams_per_peer() != 0 ? limits.max_streams_per_peer() : 16;
  federation.on_contact = [this](const std::string& peer) {
    outbox_->PeerContact(peer);
  };
  federation.metrics = &metrics_;
  federation_service_ =
      std::make_unique<FederationService>(receiver_.get(), federation);
  RegisterGauges();
  return absl::OkStatus();
}

absl::Status Node::StartOperatorApi() {
  const auto& op = config_.operator_api();
  if (identity_.operator_trust == nullptr) {
    return absl::FailedPreconditionError(
        "operator_api: the operator CA is not loaded");
  }
  grpc::ServerBuilder b;
  // Every call's client certificate is checked against the operator CA and
  // its CRL (operator_auth.h).
  b.AddListeningPort(
      op.listen_address(),
      OperatorServerCredentials(identity_.tls_cert_pem, identity_.tls_key_pem,
                                identity_.operator_trust, clock_),
      &operator_port_);
  b.RegisterService(local_service_.get());
  b.SetOption(std::make_unique<Reflection>(true));
  b.SetMaxReceiveMessageSize(grpc_limit_);
  b.SetMaxSendMessageSize(grpc_limit_);
  operator_server_ = b.BuildAndStart();
  if (!operator_server_ || operator_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", op.listen_address(),
                     " (operator_api.listen_address): address in use or not "
                     "available"));
  }
  KLOG(Info, "node") << "operator API (mTLS, operator CA"
                     << (op.crl().empty() ? ", NO CRL" : " and its CRL")
                     << ") on " << op.listen_address();
  return absl::OkStatus();
}

absl::Status Node::Start() {
  // grpc.health.v1.Health on both endpoints (SERVING while running), for
  // load balancers and supervisors.
  grpc::EnableDefaultHealthCheckService(true);
  std::set<std::string> peers;
  for (const auto& p : config_.peers()) {
    if (!identity_.unusable_peers.count(p.id()) && !p.address().empty()) {
      peers.insert(p.id());
    }
  }

  grpc::ServerBuilder fed;
  fed.AddListeningPort(
      config_.listen_address(),
      FederationServerCredentials(
          TlsMaterial{identity_.tls_cert_pem, identity_.tls_key_pem,
                      identity_.trust->RootsPem()},
          identity_.trust, peers, clock_),
      &federation_port_);
  fed.RegisterService(federation_service_.get());
  fed.SetOption(std::make_unique<Reflection>(false));
  fed.SetMaxReceiveMessageSize(grpc_limit_);
  fed.SetMaxSendMessageSize(grpc_limit_);
  // Connections are re-handshaken at least this often, so a peer whose
  // certificate is no longer trusted is cut off.
  fed.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 3600 * 1000);
  fed.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 60 * 1000);
  federation_server_ = fed.BuildAndStart();
  if (!federation_server_ || federation_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen_address(),
                     " (listen_address): address in use or not available"));
  }

  const std::string& socket_path = config_.local_socket();
  struct stat st;
  if (lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "local_socket: ", socket_path, " exists and is not a socket"));
    }
    if (SocketInUse(socket_path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "local_socket: ", socket_path, " is in use by another process"));
    }
    unlink(socket_path.c_str());
  }
  grpc::ServerBuilder local;
  local.AddListeningPort("unix:" + socket_path,
                         grpc::InsecureServerCredentials());
  local.RegisterService(local_service_.get());
  local.SetOption(std::make_unique<Reflection>(true));
  local.SetMaxReceiveMessageSize(grpc_limit_);
  local.SetMaxSendMessageSize(grpc_limit_);
  // The socket is created with at most 0660 (then set exactly below), so
  // there is no moment in which others could connect. umask is per process:
  // the outbox has not started yet and gRPC's threads create no files.
  const mode_t old_umask = umask(0117);
  local_server_ = local.BuildAndStart();
  umask(old_umask);
  if (!local_server_) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on unix socket ", socket_path));
  }
  if (chmod(socket_path.c_str(), 0660) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot chmod ", socket_path, ": ", strerror(errno)));
  }
  if (!config_.local_socket_group().empty()) {
    struct group* g = getgrnam(config_.local_socket_group().c_str());
    if (g == nullptr || chown(socket_path.c_str(), -1, g->gr_gid) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("local_socket_group: cannot give the socket to group '",
                       config_.local_socket_group(), "'"));
    }
  }
  if (!config_.operator_api().listen_address().empty()) {
    if (auto s = StartOperatorApi(); !s.ok()) return s;
  }
  if (!config_.metrics().listen_address().empty()) {
    auto server = MetricsServer::Start(
        config_.metrics().listen_address(), &metrics_, [this]() -> std::string {
          return serving_.load() ? "" : "node is not serving";
        });
    if (!server.ok()) return server.status();
    metrics_server_ = std::move(*server);
    metrics_port_ = metrics_server_->port();
  }
  outbox_->Start();
  serving_.store(true);
  audit_signer_ = std::thread([this] {
    const int64_t every_ms =
        int64_t{config_.audit_sign_seconds() > 0 ? config_.audit_sign_seconds()
                                                 : 600} *
        1000;
    const int64_t hour_ms = 3600 * 1000;
    const int64_t housekeeping_ms =
        absl::ToInt64Milliseconds(kHousekeepingEvery);
    int64_t next_purge = clock_->MonotonicMs();
    // The first round right after start, off the start's path.
    Housekeeping();
    int64_t next_housekeeping = clock_->MonotonicMs() + housekeeping_ms;
    while (!clock_->WaitForNotification(
        stop_audit_, std::min({every_ms, hour_ms, housekeeping_ms}))) {
      if (clock_->MonotonicMs() >= next_housekeeping) {
        next_housekeeping = clock_->MonotonicMs() + housekeeping_ms;
        Housekeeping();
      }
      if (clock_->MonotonicMs() >= next_purge) {
        next_purge = clock_->MonotonicMs() + hour_ms;
        if (auto p = app_->PurgeExpired(std::string(kAuditNodeActor), false);
            !p.ok()) {
          KLOG(Warning, "retention")
              << "purge failed: " << p.status().message();
        }
      }
      if (auto s = SignAuditHead(store_.get(), *identity_.signer,
                                 clock_->NowUnixMs());
          !s.ok()) {
        KLOG(Warning, "audit") << "cannot sign the audit head: " << s.message();
      }
    }
  });
  KLOG(Info, "node") << "node " << config_.node_id() << " up: federation on "
                     << config_.listen_address() << " (port "
                     << federation_port_ << "), local API on " << socket_path
                     << ", " << config_.peers_size() << " peer(s)";
  return absl::OkStatus();
}

void Node::RegisterGauges() {
  Metrics* m = &metrics_;
  m->GetGauge("kontor_build_info", "Kontor version", {{"version", "0.1.0"}})
      .Set(1);
  auto expiry = [m](const std::string& node, const std::string& purpose) {
    return m->GetGauge("kontor_certificate_expiry_timestamp_seconds",
                       "When a certificate this node uses expires (Unix "
                       "time), by node and purpose",
                       {{"node", node}, {"purpose", purpose}});
  };
  expiry(config_.node_id(), "tls")
      .Set(identity_.tls_cert->not_after_unix_ms() / 1000.0);
  expiry(config_.node_id(), "signing")
      .Set(identity_.signer->certificate()->not_after_unix_ms() / 1000.0);
  expiry(config_.node_id(), "encryption")
      .Set(identity_.decryption_keys[0].cert->not_after_unix_ms() / 1000.0);
  // Queue depth, oldest message, backoff, peer certificates and CRLs: read
  // when scraped.
  std::vector<std::string> recipients;
  for (const auto& p : config_.peers()) recipients.push_back(p.id());
  m->OnCollect([this, m, recipients, expiry] {
    const int64_t now = clock_->NowUnixMs();
    for (const std::string& peer : recipients) {
      const MetricLabels l = {{"peer", peer}};
      if (auto q = store_->PeerQueue(peer); q.ok()) {
        m->GetGauge("kontor_queue_depth",
                    "Deliveries queued for a recipient (not settled)", l)
            .Set(static_cast<double>(q->depth));
        m->GetGauge("kontor_queue_oldest_age_seconds",
                    "Age of the oldest queued delivery to a recipient "
                    "(0: none)",
                    l)
            .Set(q->oldest_created_ms > 0
                     ? std::max<int64_t>(0, now - q->oldest_created_ms) / 1000.0
                     : 0);
      }
      if (auto ps = store_->GetPeerState(peer); ps.ok()) {
        m->GetGauge("kontor_peer_backoff_failures",
                    "Failed exchanges with a peer since its last success", l)
            .Set(ps->failures);
      }
      if (const auto* keys = identity_.directory->Find(peer)) {
        int64_t signing = 0;
        for (const auto& c : keys->signing) {
          signing = std::max(signing, c->not_after_unix_ms());
        }
        expiry(peer, "signing").Set(signing / 1000.0);
        expiry(peer, "encryption")
            .Set(keys->encryption->not_after_unix_ms() / 1000.0);
      }
      if (const int64_t crl = identity_.trust->CrlNextUpdateMsFor(peer);
          crl > 0) {
        m->GetGauge("kontor_crl_next_update_timestamp_seconds",
                    "When the CRL of the CA that certifies a peer must be "
                    "renewed (Unix time)",
                    l)
            .Set(crl / 1000.0);
      }
      if (ChunkStaging* staging = receiver_->staging()) {
        m->GetGauge("kontor_staged_chunk_bytes",
                    "Attachment chunk bytes a peer sent ahead of envelopes "
                    "not accepted yet",
                    l)
            .Set(static_cast<double>(staging->staged_bytes(peer)));
      }
    }
    m->GetGauge("kontor_inbox_last_seq",
                "Sequence number of the newest inbox message")
        .Set(static_cast<double>(store_->MaxInboxSeq()));
  });
}

void Node::Housekeeping() {
  if (ChunkStaging* staging = receiver_->staging()) staging->Collect();
  if (auto n = CollectSettledChunks(store_.get(), config_.data_dir(),
                                    clock_->NowUnixMs());
      !n.ok()) {
    KLOG(Warning, "node") << "attachment chunks of settled messages: "
                          << n.status().message();
  }
}

void Node::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  serving_.store(false);
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(3);
  for (grpc::Server* server : {local_server_.get(), federation_server_.get()}) {
    if (server != nullptr && server->GetHealthCheckService() != nullptr) {
      server->GetHealthCheckService()->Shutdown();  // NOT_SERVING from now on
    }
  }
  if (local_service_) local_service_->Stop();
  if (local_server_) local_server_->Shutdown(deadline);
  if (federation_server_) federation_server_->Shutdown(deadline);
  if (link_) link_->CancelAll();  // no waiting out a call's deadline
  if (outbox_) outbox_->Stop();
  if (operator_server_) operator_server_->Shutdown(deadline);
  if (local_server_) unlink(config_.local_socket().c_str());
  if (audit_signer_.joinable()) {
    stop_audit_.Notify();
    audit_signer_.join();
  }
  // The head as it is at shutdown, signed.
  if (store_) {
    if (auto s =
            SignAuditHead(store_.get(), *identity_.signer, clock_->NowUnixMs());
        !s.ok()) {
      KLOG(Warning, "audit") << "cannot sign the audit head: " << s.message();
    }
  }
  KLOG(Info, "node") << "node " << config_.node_id() << " stopped";
}

Node::~Node() {
  Shutdown();
  metrics_server_.reset();
  // Services must outlive the servers that call them; the data_dir lock is
  // released only after the store (and its writer thread) is gone.
  local_server_.reset();
  operator_server_.reset();
  federation_server_.reset();
  outbox_.reset();
  federation_service_.reset();
  local_service_.reset();
  watch_hub_.reset();
  app_.reset();
  receiver_.reset();
  link_.reset();
  store_.reset();
  if (lock_fd_ >= 0) close(lock_fd_);
}

}  // namespace kontor
