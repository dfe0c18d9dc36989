#include "daemon/common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "daemon/common/log.h"

namespace kontor {
namespace {

struct CrashConfig {
  std::string name;
  long long at_hit = 1;
  std::atomic<long long> hits{0};
};

CrashConfig* LoadConfig() {
  const char* env = std::getenv("KONTOR_CRASH_AT");
  if (env == nullptr || *env == '\0') return nullptr;
  auto* config = new CrashConfig();
  std::string spec(env);
  auto colon = spec.find(':');
  config->name = spec.substr(0, colon);
  if (colon != std::string::npos &&
      !absl::SimpleAtoi(spec.substr(colon + 1), &config->at_hit)) {
    config->at_hit = 1;
  }
  return config;
}

}  // namespace

void CrashPoint(absl::string_view name) {
  static CrashConfig* config = LoadConfig();
  if (config == nullptr || config->name != name) return;
  if (config->hits.fetch_add(1) + 1 < config->at_hit) return;
  KLOG(Warning, "crash") << "crash point " << name << " reached: SIGKILL";
  raise(SIGKILL);
  _exit(137);
}

}  // namespace kontor
