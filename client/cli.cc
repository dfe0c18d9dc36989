#include "client/cli.h"

#include <grpc/support/log.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/json.h"
#include "daemon/common/ids.h"
#include "daemon/common/text.h"

namespace kontor {
namespace cli {
namespace {

bool IsUnixTarget(const Options& o) {
  return o.node.rfind("unix:", 0) == 0 || o.node.find('/') != std::string::npos;
}

// The address part of a gRPC connection error ("ipv4:127.0.0.1:5000: ..."),
// or "".
std::string AddressIn(const std::string& message) {
  for (const char* scheme : {"ipv4:", "ipv6:", "unix:"}) {
    const size_t at = message.find(scheme);
    if (at == std::string::npos) continue;
    size_t end = message.find(": ", at + strlen(scheme));
    if (end == std::string::npos) end = message.size();
    return message.substr(at + strlen(scheme), end - at - strlen(scheme));
  }
  return "";
}

Failure F(int code, std::string message) {
  return Failure{code, std::move(message)};
}

}  // namespace

int Fail(int code, const std::string& message) {
  fprintf(stderr, "kontor: %s\n", Safe(message, 2000).c_str());
  return code;
}

int ExitCodeFor(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return kUsage;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return kTransient;
    default:
      return kFailed;
  }
}

bool IsTransient(const grpc::Status& s) { return ExitCodeFor(s) == kTransient; }

int RpcFail(const grpc::Status& s, const Options& o) {
  const Failure f = Describe(s, o);
  return Fail(f.code, f.message);
}

bool ShouldRetry(const grpc::Status& s, const Options& o) {
  return !s.ok() && Describe(s, o).code == kTransient;
}

Failure Describe(const grpc::Status& s, const Options& o) {
  const std::string& m = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    const std::string lower = absl::AsciiStrToLower(m);
    const std::string at = AddressIn(m);
    const std::string where = at.empty() ? o.node : at;
    if (absl::StrContains(lower, "connection refused")) {
      return F(kTransient,
               absl::StrCat("node ", o.node,
                            " is not reachable (connection refused at ", where,
                            "): is kontord running? (retry later)"));
    }
    if (absl::StrContains(lower, "no such file")) {
      return F(kTransient, absl::StrCat("node ", o.node,
                                        " is not running (no socket at ", where,
                                        "): start kontord, or check --node / "
                                        "KONTOR_NODE"));
    }
    if (absl::StrContains(lower, "permission denied")) {
      return F(kUsage, absl::StrCat("no permission to use the socket ", where,
                                    " (it is for the node's admin group)"));
    }
    // Over TCP, a handshake that fails is the certificates, not an outage:
    // retrying cannot help.
    if (!IsUnixTarget(o)) {
      if (absl::StrContains(lower, "certificate verify failed")) {
        // This side could not verify the node.
        return F(kUsage, absl::StrCat("--ca ", o.ca,
                                      " does not trust the certificate of "
                                      "the node at ",
                                      where,
                                      " (give the CA of its TLS certificate: "
                                      "the federation CA)"));
      }
      // A TLS alert about the certificate: the node refused this one. (A
      // connection merely closed is not that: a node restarting closes
      // them too, and is retried.)
      if (absl::StrContains(lower, "alert") &&
          (absl::StrContains(lower, "certificate") ||
           absl::StrContains(lower, "unknown ca") ||
           absl::StrContains(lower, "handshake failure") ||
           absl::StrContains(lower, "access denied"))) {
        return F(kUsage,
                 absl::StrCat("the node at ", where,
                              " refused the operator certificate ", o.cert,
                              " during the TLS handshake (not issued by its "
                              "operator CA, expired, or not for client "
                              "authentication)"));
      }
      if (absl::StrContains(lower, "empty address list") ||
          absl::StrContains(lower, "secure subchannel")) {
        return F(kUsage, absl::StrCat("cannot set up TLS with --cert ", o.cert,
                                      " --key ", o.key, " --ca ", o.ca,
                                      ": the key does not belong to the "
                                      "certificate, or a file is not PEM"));
      }
    }
    if (absl::StrContains(lower, "dns") ||
        absl::StrContains(lower, "resolve")) {
      return F(kUsage,
               absl::StrCat("cannot resolve the node address ", o.node));
    }
    if (!IsUnixTarget(o) && (absl::StrContains(lower, "handshake") ||
                             absl::StrContains(lower, "socket closed"))) {
      return F(kTransient,
               absl::StrCat("node ", o.node, " closed the connection (",
                            Printable(m, 200),
                            "); retry later. If it keeps doing so, check "
                            "--cert and --ca"));
    }
    return F(kTransient, absl::StrCat("node ", o.node, " unavailable: ", m,
                                      " (retry later)"));
  }
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    // The node's per-call check of the operator certificate refused it and
    // says why ("operator certificate refused: ..."): not an outage.
    return F(kUsage, m);
  }
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return F(kTransient,
             absl::StrCat("node ", o.node, " did not answer in time (", m,
                          "); retry later"));
  }
  return F(ExitCodeFor(s), m);
}

namespace {
// gRPC's own log lines are for developers; the CLI says what went wrong in
// one line of its own.
void DiscardGrpcLog(gpr_log_func_args*) {}
}  // namespace

std::unique_ptr<v1::Local::Stub> Connect(const Options& o, std::string* error) {
  gpr_set_log_function(DiscardGrpcLog);
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  std::string path = o.node;
  if (path.rfind("unix:", 0) == 0) path = path.substr(5);
  // A path (absolute or relative) is a unix socket; host:port has no '/'.
  if (IsUnixTarget(o)) {
    if (path.size() > 107) {
      *error = absl::StrCat("socket path is ", path.size(),
                            " bytes; unix socket paths are limited to 107");
      return nullptr;
    }
    target = "unix:" + path;
    creds = grpc::InsecureChannelCredentials();
  } else {
    if (o.cert.empty() || o.key.empty() || o.ca.empty()) {
      *error = absl::StrCat("node '", o.node,
                            "' is not a socket path; host:port needs --cert, "
                            "--key and --ca (operator certificate)");
      return nullptr;
    }
    grpc::SslCredentialsOptions ssl;
    if (!ReadInput(o.ca, &ssl.pem_root_certs) ||
        !ReadInput(o.cert, &ssl.pem_cert_chain) ||
        !ReadInput(o.key, &ssl.pem_private_key)) {
      *error = "cannot read --cert, --key or --ca";
      return nullptr;
    }
    target = o.node;
    creds = grpc::SslCredentials(ssl);
  }
  return v1::Local::NewStub(grpc::CreateChannel(target, creds));
}

void SetDeadline(grpc::ClientContext* c, int seconds) {
  c->set_deadline(std::chrono::system_clock::now() +
                  std::chrono::seconds(seconds));
}

void PrintJson(const google::protobuf::Message& m) {
  printf("%s\n", ToJson(ToJsonValue(m), false).c_str());
}

std::string Safe(absl::string_view text, size_t max) {
  return TerminalSafe(text, max, /*multiline=*/false);
}

std::string SafeBody(absl::string_view text) {
  static const bool to_file = [] {
    struct stat st;
    return fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
  }();
  if (to_file) return std::string(text);
  return TerminalSafe(text, SIZE_MAX, /*multiline=*/true);
}

std::string PriorityName(v1::Priority p) {
  switch (p) {
    case v1::FLASH:
      return "flash";
    case v1::URGENT:
      return "urgent";
    default:
      return "routine";
  }
}

std::string TimeOrDash(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return FormatRfc3339Ms(unix_ms);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Args::Args(std::vector<std::string> args, std::vector<std::string> switches)
    : switches_(std::move(switches)) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      positional_.push_back(a);
      continue;
    }
    auto eq = a.find('=');
    std::string name = a.substr(2, eq == std::string::npos ? eq : eq - 2);
    if (eq != std::string::npos) {
      flags_[name] = a.substr(eq + 1);
      all_[name].push_back(flags_[name]);
    } else if (IsSwitch(name)) {
      flags_[name] = "true";
    } else if (i + 1 < args.size()) {
      flags_[name] = args[++i];
      all_[name].push_back(flags_[name]);
    } else {
      error_ = absl::StrCat("--", name, " needs a value");
    }
  }
}

std::string Args::Get(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? "" : it->second;
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  auto it = all_.find(name);
  return it == all_.end() ? std::vector<std::string>() : it->second;
}

std::string Args::Check(const std::vector<std::string>& known) const {
  if (!error_.empty()) return error_;
  for (const auto& [name, value] : flags_) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == name;
    if (!ok) return absl::StrCat("unknown option --", name);
  }
  return "";
}

bool Args::IsSwitch(const std::string& name) const {
  for (const auto& s : switches_) {
    if (s == name) return true;
  }
  return false;
}

bool ReadInput(const std::string& path, std::string* out) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    *out = ss.str();
    return true;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

}  // namespace cli
}  // namespace kontor
