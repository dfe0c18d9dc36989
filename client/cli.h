#ifndef KONTOR_CLIENT_CLI_H_
#define KONTOR_CLIENT_CLI_H_

// What every `kontor` command shares: options, exit codes, errors, the
// connection to the node, argument parsing, and text for the terminal.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "kontor/v1/local.grpc.pb.h"

namespace kontor {
namespace cli {

namespace v1 = ::kontor::v1;

// Exit codes (DESIGN.md §10).
inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;
inline constexpr int kNotFound = 3;
inline constexpr int kTransient = 75;

inline constexpr int kCallTimeoutSeconds = 30;

struct Options {
  std::string node;
  std::string cert, key, ca;
  bool json = false;
  std::string command;
  std::vector<std::string> args;
};

// Prints "kontor: MESSAGE" (one line, made safe) on stderr; returns `code`.
int Fail(int code, const std::string& message);
// The exit code for a call's status.
int ExitCodeFor(const grpc::Status& s);
bool IsTransient(const grpc::Status& s);
// A failed call in words a person can act on, with its exit code: a node
// that is not running or not reachable (75), an operator certificate the
// node refused or a node certificate --ca does not trust (2: retrying cannot
// help), otherwise the node's own message and the code for its status.
struct Failure {
  int code;
  std::string message;
};
Failure Describe(const grpc::Status& s, const Options& o);
// Fail() with Describe().
int RpcFail(const grpc::Status& s, const Options& o);
// Whether trying the same call again later may succeed (Describe's code is
// 75).
bool ShouldRetry(const grpc::Status& s, const Options& o);

// A channel to the node of `o` (unix socket, or host:port with the operator
// certificate); null with *error set if the options cannot work.
std::unique_ptr<v1::Local::Stub> Connect(const Options& o, std::string* error);
void SetDeadline(grpc::ClientContext* c, int seconds = kCallTimeoutSeconds);

// The message as the CLI's JSON (client/json.h), one line.
void PrintJson(const google::protobuf::Message& m);

// Text that came from the node, much of it from peers, on its way to the
// terminal (common/text.h TerminalSafe): one line, at most `max` bytes.
std::string Safe(absl::string_view text, size_t max = 400);
// A message body (or a rendered payload): newlines and tabs kept, every
// other control character shown escaped -- unless standard output is a
// regular file (`kontor show ID > file`), which gets the bytes as sent.
std::string SafeBody(absl::string_view text);

std::string PriorityName(v1::Priority p);
// RFC 3339 UTC, or "-" for 0.
std::string TimeOrDash(int64_t unix_ms);
int64_t NowUnixMs();

// Parses "--flag value" / "--flag=value" / "--switch" arguments.
class Args {
 public:
  Args(std::vector<std::string> args, std::vector<std::string> switches);
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  std::string Get(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Every value of a flag given more than once, in order.
  std::vector<std::string> GetAll(const std::string& name) const;
  // Error text if a flag is not among `known`, or a value is missing.
  std::string Check(const std::vector<std::string>& known) const;

 private:
  bool IsSwitch(const std::string& name) const;
  std::vector<std::string> switches_;
  std::map<std::string, std::string> flags_;
  std::map<std::string, std::vector<std::string>> all_;
  std::vector<std::string> positional_;
  std::string error_;
};

// Reads a file (or stdin for "-") whole; false if it cannot.
bool ReadInput(const std::string& path, std::string* out);

}  // namespace cli
}  // namespace kontor

#endif  // KONTOR_CLIENT_CLI_H_
