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
#include "daemon/crypto/tls_policy.h"
#include "daemon/server/identity.h"
#include "daemon/server/node.h"
#include "daemon/server/runner.h"
#include "daemon/store/check.h"
#include "daemon/store/open.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void Usage(FILE* out) {
  fprintf(out,
          "usage: kontord --config FILE [--check-config | --check-store] "
          "[--verbose]\n"
          "\n"
          "Runs one Kontor node: signs, encrypts and relays messages to peer\n"
          "nodes over mutual TLS, with a durable outbox and signed receipts.\n"
          "\n"
          "  --config FILE     node configuration (protobuf text format,\n"
          "                    schema kontor.v1.NodeConfig in proto/)\n"
          "  --check-config    load and check the config, certificates and\n"
          "                    keys, then exit: 0 valid, 2 invalid\n"
          "  --check-store     check the store files of the config's data_dir\n"
          "                    (kontor.db, kontor.keys, their write-ahead\n"
          "                    logs; SQLite's integrity_check) without\n"
          "                    changing them: 0 sound, 1 damaged, 2 usage\n"
          "  --verbose         debug logging\n"
          "  --help, --version\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config\n"
          "and every certificate, key and CRL it names (also done when those\n"
          "files change, checked every reload_check_seconds). A bad new\n"
          "config is refused with the reason and the running one stays.\n"
          "Fault tests may set\n"
          "KONTOR_CRASH_AT=POINT[:N] to die at a named crash point.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  bool check_store = false;
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
    } else if (arg == "--check-store") {
      check_store = true;
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
  if (check_store) {
    const std::string db = kontor::SqliteStorePath(config->data_dir());
    const kontor::StoreFilesCheck check =
        kontor::CheckStoreFiles(db, /*full=*/true);
    for (const std::string& n : check.notes) printf("note: %s\n", n.c_str());
    for (const std::string& p : check.problems) {
      printf("DAMAGED: %s\n", p.c_str());
    }
    if (!check.ok()) {
      fprintf(stderr, "kontord: %s\n",
              std::string(kontor::DamageStatus(db, check).message()).c_str());
      return kExitFailed;
    }
    printf("%s: store sound (%s and its key file)\n", config_path.c_str(),
           db.c_str());
    return kExitOk;
  }
  if (check_only) {
    auto identity = kontor::LoadIdentity(*config, clock, /*strict=*/true);
    if (!identity.ok()) {
      fprintf(stderr, "kontord: %s: %s\n", config_path.c_str(),
              std::string(identity.status().message()).c_str());
      return kExitUsage;
    }
    printf("%s: ok (node %s, %d peer(s))\n", config_path.c_str(),
           config->node_id().c_str(), config->peers_size());
    return kExitOk;
  }

  // TLS 1.2+, the server's cipher order, AEAD with forward secrecy, for
  // every TLS context made from now on (gRPC has no API for these).
  if (auto s = kontor::ApplyTlsPolicy(); !s.ok()) {
    fprintf(stderr, "kontord: %s\n", std::string(s.message()).c_str());
    return kExitFailed;
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

  kontor::NodeRunner runner(config_path, clock);
  if (auto s = runner.Start(); !s.ok()) {
    fprintf(stderr, "kontord: %s\n", std::string(s.message()).c_str());
    KLOG(Error, "node") << "cannot start: " << s.message();
    return s.code() == absl::StatusCode::kInvalidArgument ||
                   s.code() == absl::StatusCode::kNotFound
               ? kExitUsage
               : kExitFailed;
  }
  for (;;) {
    const int64_t wait_ms = runner.check_interval_ms();
    timespec timeout{static_cast<time_t>(wait_ms / 1000),
                     static_cast<long>((wait_ms % 1000) * 1000000)};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGHUP) {
      runner.Reload("SIGHUP");
    } else if (sig == SIGTERM || sig == SIGINT) {
      KLOG(Info, "node") << "signal " << sig << ": shutting down";
      break;
    } else if (runner.FilesChanged()) {
      runner.Reload("config or certificate files changed");
    }
  }
  runner.Shutdown();
  return kExitOk;
}
