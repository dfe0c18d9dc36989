// kontord: one Kontor node. See DESIGN.md §9-10.
//
//   kontord --config node.textproto           run the node
//   kontord --check-config --config F         validate, exit 0 or 2

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "daemon/common/log.h"
#include "daemon/config/config.h"
#include "daemon/server/identity.h"
#include "daemon/server/node.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void Usage(FILE* out) {
  fprintf(out,
          "usage: kontord --config FILE [--check-config] [--verbose]\n"
          "\n"
          "Runs one Kontor node: signs, encrypts and relays messages to peer\n"
          "nodes over mutual TLS, with a durable outbox and signed receipts.\n"
          "\n"
          "  --config FILE     node configuration (protobuf text format,\n"
          "                    schema kontor.v1.NodeConfig in proto/)\n"
          "  --check-config    load and check the config, certificates and\n"
          "                    keys, then exit: 0 valid, 2 invalid\n"
          "  --verbose         debug logging\n"
          "  --help, --version\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop gracefully. Fault tests may set\n"
          "KONTOR_CRASH_AT=POINT[:N] to die at a named crash point.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      Usage(stdout);
      return kExitOk;
    } else if (arg == "--version") {
      printf("kontord 0.1.0 (envelope kontor-env-v1)\n");
      return kExitOk;
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--verbose") {
      kontor::SetMinLogLevel(kontor::LogLevel::kDebug);
    } else if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(strlen("--config="));
    } else {
      fprintf(stderr, "kontord: unknown argument '%s' (see --help)\n",
              arg.c_str());
      return kExitUsage;
    }
  }
  if (config_path.empty()) {
    fprintf(stderr, "kontord: --config FILE is required (see --help)\n");
    return kExitUsage;
  }

  auto config = kontor::LoadConfig(config_path);
  if (!config.ok()) {
    fprintf(stderr, "kontord: %s\n",
            std::string(config.status().message()).c_str());
    return kExitUsage;
  }
  kontor::Clock* clock = kontor::Clock::Real();
  if (check_only) {
    auto identity = kontor::LoadIdentity(*config, clock);
    if (!identity.ok()) {
      fprintf(stderr, "kontord: %s: %s\n", config_path.c_str(),
              std::string(identity.status().message()).c_str());
      return kExitUsage;
    }
    printf("%s: ok (node %s, %d peer(s))\n", config_path.c_str(),
           config->node_id().c_str(), config->peers_size());
    return kExitOk;
  }

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto node = kontor::Node::Create(*config, clock);
  if (!node.ok()) {
    fprintf(stderr, "kontord: %s\n",
            std::string(node.status().message()).c_str());
    KLOG(Error, "node") << "cannot start: " << node.status().message();
    return node.status().code() == absl::StatusCode::kInvalidArgument ||
                   node.status().code() == absl::StatusCode::kNotFound
               ? kExitUsage
               : kExitFailed;
  }
  if (auto s = (*node)->Start(); !s.ok()) {
    fprintf(stderr, "kontord: %s\n", std::string(s.message()).c_str());
    KLOG(Error, "node") << "cannot start: " << s.message();
    return kExitFailed;
  }
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      KLOG(Warning, "node")
          << "SIGHUP: live reload is not implemented yet; restart to apply "
             "config changes (TLS certificate files are re-read automatically)";
      continue;
    }
    KLOG(Info, "node") << "signal " << sig << ": shutting down";
    break;
  }
  (*node)->Shutdown();
  return kExitOk;
}
