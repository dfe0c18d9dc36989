#include "daemon/config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/status_macros.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace kontor {
namespace {

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty()) {
      first = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
    }
  }
  void AddWarning(int, int, const std::string&) override {}
  std::string first;
};

std::string Resolve(const std::string& base, const std::string& path) {
  if (path.empty() || path[0] == '/' || base.empty()) return path;
  return base + "/" + path;
}

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

bool ValidHostPort(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return false;
  }
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
  }
  const std::string digits = address.substr(colon + 1);
  if (digits.size() > 5) return false;  // std::stoi would throw past INT_MAX
  int port = std::stoi(digits);
  return port >= 0 && port <= 65535;
}

// Whether two paths name the same file: the same path once normalized, the
// same inode, or the same bytes (a copy of a federation CA is one too).
bool SameFile(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  if (fs::path(a).lexically_normal() == fs::path(b).lexically_normal()) {
    return true;
  }
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;
  // Contents are compared only for regular files of a certificate's size: a
  // path may name /dev/zero, a FIFO or a huge file, never to be read whole
  // (found by tests/fuzz/config_fuzz).
  constexpr std::uintmax_t kMaxCompared = 1 << 20;
  if (!fs::is_regular_file(a, ec) || !fs::is_regular_file(b, ec)) return false;
  const std::uintmax_t size = fs::file_size(a, ec);
  if (ec || size == 0 || size > kMaxCompared || fs::file_size(b, ec) != size ||
      ec) {
    return false;
  }
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::ostringstream sa, sb;
  sa << fa.rdbuf();
  sb << fb.rdbuf();
  return !sa.str().empty() && sa.str() == sb.str();
}

absl::Status CheckKeyPair(const v1::KeyPairFiles& kp, absl::string_view name) {
  if (kp.cert().empty())
    return FieldError(absl::StrCat(name, ".cert"), "required");
  if (kp.key().empty())
    return FieldError(absl::StrCat(name, ".key"), "required");
  return absl::OkStatus();
}

void ResolveKeyPair(const std::string& base, v1::KeyPairFiles* kp) {
  kp->set_cert(Resolve(base, kp->cert()));
  kp->set_key(Resolve(base, kp->key()));
}

// The node itself: its id, where it keeps its state, where it listens.
absl::Status CheckNode(v1::NodeConfig& c, const std::string& base_dir) {
  if (c.node_id().empty()) return FieldError("node_id", "required");
  if (!IsValidNodeId(c.node_id())) {
    return FieldError("node_id",
                      absl::StrCat("'", Printable(c.node_id()),
                                   "' is not a node id (e.g. \"ee\" or "
                                   "\"ee.border\")"));
  }
  if (c.data_dir().empty()) return FieldError("data_dir", "required");
  // The backends kontord has (store/open.h, which validates again).
  if (!c.store().backend().empty() && c.store().backend() != "sqlite") {
    return FieldError(
        "store.backend",
        absl::StrCat("'", Printable(c.store().backend()),
                     "' is not a store backend (one of: sqlite)"));
  }
  c.set_data_dir(Resolve(base_dir, c.data_dir()));
  if (c.listen_address().empty())
    return FieldError("listen_address", "required");
  if (!ValidHostPort(c.listen_address())) {
    return FieldError(
        "listen_address",
        absl::StrCat("'", Printable(c.listen_address()), "' is not host:port"));
  }
  if (c.local_socket().empty()) return FieldError("local_socket", "required");
  c.set_local_socket(Resolve(base_dir, c.local_socket()));
  if (c.local_socket().size() > kMaxUnixSocketPath) {
    return FieldError("local_socket",
                      absl::StrCat("path is ", c.local_socket().size(),
                                   " bytes; unix socket paths are limited to ",
                                   kMaxUnixSocketPath));
  }
  return absl::OkStatus();
}

// Its key pairs: TLS, signing, encryption and earlier encryption keys.
absl::Status CheckKeys(v1::NodeConfig& c, const std::string& base_dir) {
  for (auto [kp, name] : {std::pair{c.mutable_tls(), "tls"},
                          std::pair{c.mutable_signing(), "signing"},
                          std::pair{c.mutable_encryption(), "encryption"}}) {
    if (auto s = CheckKeyPair(*kp, name); !s.ok()) return s;
    ResolveKeyPair(base_dir, kp);
  }
  for (int i = 0; i < c.old_encryption_size(); ++i) {
    const std::string name = absl::StrCat("old_encryption[", i, "]");
    if (auto s = CheckKeyPair(c.old_encryption(i), name); !s.ok()) return s;
    ResolveKeyPair(base_dir, c.mutable_old_encryption(i));
  }
  return absl::OkStatus();
}

// The operator API: its own CA (never a federation CA) and CRL.
absl::Status CheckOperatorApi(v1::NodeConfig& c, const std::string& base_dir) {
  if (c.has_operator_api()) {
    auto* op = c.mutable_operator_api();
    if (!op->listen_address().empty() && !ValidHostPort(op->listen_address())) {
      return FieldError("operator_api.listen_address",
                        absl::StrCat("'", Printable(op->listen_address()),
                                     "' is not host:port"));
    }
    if (!op->listen_address().empty() && op->ca().empty()) {
      return FieldError("operator_api.ca",
                        "required: the operator CA's certificate");
    }
    op->set_ca(Resolve(base_dir, op->ca()));
    op->set_crl(Resolve(base_dir, op->crl()));
    for (const auto& ca : c.trusted_cas()) {
      if (!op->ca().empty() &&
          SameFile(Resolve(base_dir, ca.cert()), op->ca())) {
        return FieldError("operator_api.ca",
                          "is a federation CA (trusted_cas); a peer node's "
                          "certificate is never a local user");
      }
    }
    if (!op->listen_address().empty() && op->crl().empty() &&
        !op->allow_missing_crl()) {
      return FieldError(
          "operator_api.crl",
          "required: the operator CA's CRL (PEM), so that a revoked operator "
          "certificate is refused (or allow_missing_crl: true to accept "
          "operator certificates without revocation checks)");
    }
  }
  return absl::OkStatus();
}

// Metrics listener, audit signing interval, retention per kind.
absl::Status CheckMonitoringAndRetention(v1::NodeConfig& c) {
  if (!c.metrics().listen_address().empty() &&
      !ValidHostPort(c.metrics().listen_address())) {
    return FieldError("metrics.listen_address",
                      absl::StrCat("'", Printable(c.metrics().listen_address()),
                                   "' is not host:port"));
  }
  if (c.audit_sign_seconds() == 0) c.set_audit_sign_seconds(600);
  for (const auto& [kind, days] : c.retention().days_by_kind()) {
    if (!IsMessageKind(kind)) {
      return FieldError(
          "retention.days_by_kind",
          absl::StrCat("'", Printable(kind), "' is not a message kind (one of ",
                       absl::StrJoin(MessageKinds(), ", "), ")"));
    }
    if (days == 0 || days > 36500) {
      return FieldError("retention.days_by_kind",
                        absl::StrCat(kind, ": 1 to 36500 days"));
    }
  }
  if (c.retention().default_days() > 36500) {
    return FieldError("retention.default_days", "at most 36500 days");
  }
  return absl::OkStatus();
}

// Trusted CAs: each names the node ids it may certify.
absl::Status CheckTrustedCas(v1::NodeConfig& c, const std::string& base_dir) {
  for (int i = 0; i < c.trusted_cas_size(); ++i) {
    auto* ca = c.mutable_trusted_cas(i);
    const std::string name = absl::StrCat("trusted_cas[", i, "]");
    if (ca->cert().empty()) return FieldError(name + ".cert", "required");
    ca->set_cert(Resolve(base_dir, ca->cert()));
    ca->set_crl(Resolve(base_dir, ca->crl()));
    if (ca->allowed_node_ids_size() == 0) {
      return FieldError(name + ".allowed_node_ids",
                        "list the node ids this CA may certify (or \"*\")");
    }
    for (const std::string& id : ca->allowed_node_ids()) {
      if (id != "*" && !IsValidNodeId(id)) {
        return FieldError(
            name + ".allowed_node_ids",
            absl::StrCat("'", Printable(id), "' is not a node id"));
      }
    }
  }
  return absl::OkStatus();
}

// Peers: ids, addresses, certificates, the kinds they send and take.
absl::Status CheckPeers(v1::NodeConfig& c, const std::string& base_dir) {
  std::set<std::string> seen;
  for (int i = 0; i < c.peers_size(); ++i) {
    auto* p = c.mutable_peers(i);
    const std::string name = absl::StrCat("peers[", i, "]");
    if (!IsValidNodeId(p->id())) {
      return FieldError(name + ".id", absl::StrCat("'", Printable(p->id()),
                                                   "' is not a node id"));
    }
    if (p->id() == c.node_id()) {
      return FieldError(name + ".id", "a node is not its own peer");
    }
    if (!seen.insert(p->id()).second) {
      return FieldError(name + ".id",
                        absl::StrCat("peer '", p->id(), "' is listed twice"));
    }
    if (!p->address().empty() && !ValidHostPort(p->address())) {
      return FieldError(
          name + ".address",
          absl::StrCat("'", Printable(p->address()), "' is not host:port"));
    }
    if (p->signing_certs_size() == 0) {
      return FieldError(name + ".signing_certs", "at least one is required");
    }
    for (auto& f : *p->mutable_signing_certs()) f = Resolve(base_dir, f);
    if (p->encryption_cert().empty()) {
      return FieldError(name + ".encryption_cert", "required");
    }
    p->set_encryption_cert(Resolve(base_dir, p->encryption_cert()));
    for (const char* field : {"accept_kinds", "send_kinds"}) {
      const auto& kinds = std::string(field) == "accept_kinds"
                              ? p->accept_kinds()
                              : p->send_kinds();
      for (int k = 0; k < kinds.size(); ++k) {
        if (!IsMessageKind(kinds[k])) {
          return FieldError(
              absl::StrCat(name, ".", field, "[", k, "]"),
              absl::StrCat("'", Printable(kinds[k]),
                           "' is not a message kind (one of ",
                           absl::StrJoin(MessageKinds(), ", "), ")"));
        }
      }
    }
  }
  return absl::OkStatus();
}

// Routes and relay rules: every node named is a peer, every route goes
// through a peer that has an address, and a peer without an address has a
// route.
absl::Status CheckRoutesAndRelay(v1::NodeConfig& c) {
  std::map<std::string, const v1::PeerConfig*> peer_by_id;
  for (const auto& p : c.peers()) peer_by_id[p.id()] = &p;
  std::set<std::string> routed;
  for (int i = 0; i < c.routes_size(); ++i) {
    const auto& r = c.routes(i);
    const std::string name = absl::StrCat("routes[", i, "]");
    if (peer_by_id.count(r.destination()) == 0) {
      return FieldError(name + ".destination",
                        absl::StrCat("'", Printable(r.destination()),
                                     "' is not a configured peer"));
    }
    auto via = peer_by_id.find(r.via());
    if (via == peer_by_id.end() || via->second->address().empty()) {
      return FieldError(name + ".via",
                        absl::StrCat("'", Printable(r.via()),
                                     "' is not a peer with an address"));
    }
    if (r.via() == r.destination()) {
      return FieldError(name + ".via", "must differ from destination");
    }
    if (!routed.insert(r.destination()).second) {
      return FieldError(
          name + ".destination",
          absl::StrCat("a route to '", r.destination(), "' is listed twice"));
    }
  }
  for (int i = 0; i < c.peers_size(); ++i) {
    if (c.peers(i).address().empty() && routed.count(c.peers(i).id()) == 0) {
      return FieldError(absl::StrCat("peers[", i, "].address"),
                        "required (or a route to this peer in routes)");
    }
  }
  std::set<std::pair<std::string, std::string>> relay_pairs;
  for (int i = 0; i < c.relay_size(); ++i) {
    const auto& r = c.relay(i);
    const std::string name = absl::StrCat("relay[", i, "]");
    for (const auto& [field, id] :
         {std::make_pair(".origin", r.origin()),
          std::make_pair(".destination", r.destination())}) {
      if (peer_by_id.count(id) == 0) {
        return FieldError(
            name + field,
            absl::StrCat("'", Printable(id), "' is not a configured peer"));
      }
    }
    if (r.origin() == r.destination()) {
      return FieldError(name + ".destination", "must differ from origin");
    }
    if (!relay_pairs.emplace(r.origin(), r.destination()).second) {
      return FieldError(name, absl::StrCat(r.origin(), " -> ", r.destination(),
                                           " is listed twice"));
    }
  }
  return absl::OkStatus();
}

// Limits and backoff, with their defaults.
absl::Status CheckLimits(v1::NodeConfig& c) {
  auto* l = c.mutable_limits();
  if (l->max_message_bytes() == 0) l->set_max_message_bytes(4u << 20);
  if (l->max_message_bytes() > (64u << 20)) {
    return FieldError("limits.max_message_bytes",
                      "at most 67108864 (64 MiB); larger content goes in "
                      "attachments");
  }
  if (l->max_attachment_bytes() == 0) l->set_max_attachment_bytes(2ULL << 30);
  if (l->max_attachment_bytes() > (64ULL << 30)) {
    return FieldError("limits.max_attachment_bytes",
                      "at most 68719476736 (64 GiB)");
  }
  if (l->max_clock_skew_seconds() == 0) l->set_max_clock_skew_seconds(300);
  if (l->default_expiry_seconds() == 0) {
    l->set_default_expiry_seconds(7 * 24 * 3600);
  }
  for (const auto& [kind, seconds] : l->expiry_seconds_by_kind()) {
    if (!IsMessageKind(kind)) {
      return FieldError(
          "limits.expiry_seconds_by_kind",
          absl::StrCat("'", Printable(kind), "' is not a message kind"));
    }
    if (seconds == 0 || seconds > 90u * 24 * 3600) {
      return FieldError("limits.expiry_seconds_by_kind",
                        absl::StrCat(kind, ": 1 second to 90 days"));
    }
  }
  if (l->default_expiry_seconds() > 90u * 24 * 3600) {
    return FieldError("limits.default_expiry_seconds", "at most 90 days");
  }
  if (l->max_recipients() == 0) l->set_max_recipients(32);
  if (l->max_recipients() > 1024) {
    return FieldError("limits.max_recipients", "at most 1024");
  }
  if (l->max_staged_bytes_per_peer() == 0) {
    l->set_max_staged_bytes_per_peer(2 * l->max_attachment_bytes());
  }
  // A peer must be able to stage one message's attachments whole (their
  // chunk files are a little larger than the plaintext: 16 bytes a MiB).
  const uint64_t one_message =
      l->max_attachment_bytes() + l->max_attachment_bytes() / 32768 + 4096;
  if (l->max_staged_bytes_per_peer() < one_message) {
    return FieldError(
        "limits.max_staged_bytes_per_peer",
        absl::StrCat("at least ", one_message,
                     " (limits.max_attachment_bytes and the chunk overhead): "
                     "else a peer could never send the largest attachment"));
  }
  if (l->max_streams_per_peer() == 0) l->set_max_streams_per_peer(16);
  if (l->max_streams_per_peer() > 256) {
    return FieldError("limits.max_streams_per_peer", "at most 256");
  }
  if (l->staged_chunk_hours() == 0) l->set_staged_chunk_hours(24);
  if (l->max_batch() == 0) l->set_max_batch(64);
  if (l->max_batch() > 1024) {
    return FieldError("limits.max_batch", "at most 1024");
  }
  auto* b = c.mutable_backoff();
  if (b->initial_ms() == 0) b->set_initial_ms(500);
  if (b->max_ms() == 0) b->set_max_ms(3600 * 1000);
  if (b->max_ms() < b->initial_ms()) {
    return FieldError("backoff.max_ms", "must be >= backoff.initial_ms");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::NodeConfig> ParseConfig(const std::string& text,
                                           const std::string& base_dir) {
  v1::NodeConfig c;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &c)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config does not parse: ", errors.first));
  }

  // Section by section, in this order: the first problem is the one
  // reported.
  KONTOR_RETURN_IF_ERROR(CheckNode(c, base_dir));
  KONTOR_RETURN_IF_ERROR(CheckKeys(c, base_dir));
  if (c.trusted_cas_size() == 0) {
    return FieldError("trusted_cas", "at least one trusted CA is required");
  }
  KONTOR_RETURN_IF_ERROR(CheckOperatorApi(c, base_dir));
  KONTOR_RETURN_IF_ERROR(CheckMonitoringAndRetention(c));
  KONTOR_RETURN_IF_ERROR(CheckTrustedCas(c, base_dir));
  KONTOR_RETURN_IF_ERROR(CheckPeers(c, base_dir));
  KONTOR_RETURN_IF_ERROR(CheckRoutesAndRelay(c));
  KONTOR_RETURN_IF_ERROR(CheckLimits(c));
  return c;
}

absl::StatusOr<v1::NodeConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string base;
  auto slash = path.rfind('/');
  if (slash != std::string::npos) base = path.substr(0, slash);
  if (base.empty() || base[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != nullptr) {
      base = base.empty() ? std::string(cwd) : absl::StrCat(cwd, "/", base);
    }
  }
  auto c = ParseConfig(ss.str(), base);
  if (!c.ok()) {
    return absl::Status(c.status().code(),
                        absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

}  // namespace kontor
