#include "daemon/server/runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/log.h"
#include "daemon/config/config.h"
#include "daemon/server/identity.h"

namespace kontor {
namespace {

constexpr int64_t kDefaultCheckMs = 30000;

std::vector<std::string> FilesOf(const v1::NodeConfig& c) {
  std::vector<std::string> files = {
      c.tls().cert(),    c.tls().key(),         c.signing().cert(),
      c.signing().key(), c.encryption().cert(), c.encryption().key()};
  for (const auto& k : c.old_encryption()) {
    files.push_back(k.cert());
    files.push_back(k.key());
  }
  for (const auto& ca : c.trusted_cas()) {
    files.push_back(ca.cert());
    if (!ca.crl().empty()) files.push_back(ca.crl());
  }
  for (const auto& p : c.peers()) {
    for (const auto& s : p.signing_certs()) files.push_back(s);
    files.push_back(p.encryption_cert());
  }
  // The operator CA and its CRL: a re-issued CRL is taken up by a reload.
  if (!c.operator_api().ca().empty()) files.push_back(c.operator_api().ca());
  if (!c.operator_api().crl().empty()) files.push_back(c.operator_api().crl());
  return files;
}

// What a reload may not change (it needs a restart of kontord).
std::string ImmutableChange(const v1::NodeConfig& a, const v1::NodeConfig& b) {
  if (a.node_id() != b.node_id()) return "node_id";
  if (a.data_dir() != b.data_dir()) return "data_dir";
  if (a.listen_address() != b.listen_address()) return "listen_address";
  if (a.local_socket() != b.local_socket()) return "local_socket";
  return "";
}

}  // namespace

NodeRunner::NodeRunner(std::string config_path, const Clock* clock)
    : config_path_(std::move(config_path)), clock_(clock) {}

NodeRunner::~NodeRunner() { Shutdown(); }

std::string NodeRunner::Fingerprint(const v1::NodeConfig& config) const {
  std::string out;
  std::vector<std::string> files = FilesOf(config);
  files.insert(files.begin(), config_path_);
  for (const std::string& f : files) {
    struct stat st {};
    struct stat lst {};
    // The file as read (through symlinks) and the name itself (a link
    // pointed elsewhere).
    const bool ok = stat(f.c_str(), &st) == 0;
    const bool lok = lstat(f.c_str(), &lst) == 0;
    // ctime too: it cannot be set back (`cp -p`, `touch -r`).
    auto ts = [](const timespec& t) {
      return absl::StrCat(t.tv_sec, ".", t.tv_nsec);
    };
    absl::StrAppend(&out, f, ":", ok ? st.st_ino : 0, ":", ok ? st.st_size : -1,
                    ":", ok ? ts(st.st_mtim) : "", ":",
                    ok ? ts(st.st_ctim) : "", ":", lok ? lst.st_ino : 0, ":",
                    lok ? ts(lst.st_ctim) : "", ";");
  }
  return out;
}

absl::Status NodeRunner::StartWith(const v1::NodeConfig& config) {
  auto node = Node::Create(config, clock_);
  if (!node.ok()) return node.status();
  if (auto s = (*node)->Start(); !s.ok()) {
    return absl::Status(s.code() == absl::StatusCode::kInvalidArgument
                            ? absl::StatusCode::kUnavailable
                            : s.code(),
                        s.message());
  }
  node_ = std::move(*node);
  config_ = config;
  return absl::OkStatus();
}

absl::Status NodeRunner::Start() {
  auto config = LoadConfig(config_path_);
  if (!config.ok()) return config.status();
  fingerprint_ = Fingerprint(*config);
  return StartWith(*config);
}

int64_t NodeRunner::check_interval_ms() const {
  return config_.reload_check_seconds() > 0
             ? int64_t{config_.reload_check_seconds()} * 1000
             : kDefaultCheckMs;
}

bool NodeRunner::FilesChanged() {
  // The new config may name other files: look at those of the file as it
  // is now if it parses, else at the running ones.
  auto current = LoadConfig(config_path_);
  return Fingerprint(current.ok() ? *current : config_) != fingerprint_;
}

void NodeRunner::Reload(const std::string& why) {
  auto config = LoadConfig(config_path_);
  fingerprint_ = Fingerprint(config.ok() ? *config : config_);
  auto refuse = [&](const std::string& reason) {
    KLOG(Error, "node") << "reload refused: " << reason
                        << " (the running config stays)";
  };
  if (!config.ok()) return refuse(std::string(config.status().message()));
  if (std::string field = ImmutableChange(config_, *config); !field.empty()) {
    return refuse(absl::StrCat(field, " cannot change on reload; restart ",
                               "kontord to change it"));
  }
  // Everything the new node needs, checked before the running one stops.
  auto identity = LoadIdentity(*config, clock_);
  if (!identity.ok()) return refuse(std::string(identity.status().message()));

  KLOG(Info, "node") << "reloading (" << why << ")";
  node_.reset();  // shuts down: servers, outbox, store, data_dir lock
  if (auto s = StartWith(*config); !s.ok()) {
    KLOG(Error, "node") << "cannot start with the new config: " << s.message()
                        << "; going back to the previous one";
    if (auto back = StartWith(config_); !back.ok()) {
      KLOG(Error, "node") << "cannot start with the previous config either: "
                          << back.message();
      _exit(1);  // let the supervisor restart us
    }
    return;
  }
  KLOG(Info, "node") << "reloaded: " << config->peers_size() << " peer(s), "
                     << identity->unusable_peers.size() << " unusable";
}

void NodeRunner::Shutdown() {
  if (node_) node_->Shutdown();
  node_.reset();
}

}  // namespace kontor
