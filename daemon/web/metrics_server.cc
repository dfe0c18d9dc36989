#include "daemon/web/metrics_server.h"

#include <httplib.h>

#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/log.h"

namespace kontor {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, Metrics* metrics,
    std::function<std::string()> healthy) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.listen_address: '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto impl = std::make_unique<Impl>();
  httplib::Server& s = impl->server;
  // Monitoring needs little: a few threads, short timeouts, small
  // requests; an idle connection is closed after 2 s.
  s.new_task_queue = [] { return new httplib::ThreadPool(4); };
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  s.set_keep_alive_max_count(16);
  s.set_keep_alive_timeout(2);
  s.set_payload_max_length(1024);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which
  // another process could bind the same port and take the scrapes.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& r) {
    r.set_content(metrics->TextExposition(),
                  "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/healthz", [healthy](const httplib::Request&, httplib::Response& r) {
    const std::string why = healthy();
    r.status = why.empty() ? 200 : 503;
    r.set_content(why.empty() ? "ok\n" : why + "\n",
                  "text/plain; charset=utf-8");
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& r) {
    if (r.status == 404) r.set_content("not found\n", "text/plain");
  });
  const int bound = port == 0 ? s.bind_to_any_port(host)
                              : (s.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address,
                     " (metrics.listen_address): address in use or not "
                     "available"));
  }
  impl->thread =
      std::thread([srv = &impl->server] { srv->listen_after_bind(); });
  // Serving before this returns: a stop() that came before the accept loop
  // runs would be lost (cpp-httplib), and the thread would never end.
  for (int i = 0; i < 5000 && !impl->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  KLOG(Info, "node") << "metrics on http://" << address.substr(0, colon) << ":"
                     << bound << "/metrics (and /healthz)";
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(impl), bound));
}

}  // namespace kontor
