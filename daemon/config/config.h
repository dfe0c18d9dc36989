#ifndef KONTOR_DAEMON_CONFIG_CONFIG_H_
#define KONTOR_DAEMON_CONFIG_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "kontor/v1/config.pb.h"

namespace kontor {

// Reads a node config (protobuf text format), fills in defaults, makes every
// path absolute (relative to the config file's directory) and validates it.
// Errors name the offending field, e.g. "peers[1].id: 'FI' is not a node id".
// Does not open certificates or keys: the node does that and reports errors
// with the field name too.
absl::StatusOr<v1::NodeConfig> LoadConfig(const std::string& path);

// The same, for a config already in memory; `base_dir` resolves paths.
absl::StatusOr<v1::NodeConfig> ParseConfig(const std::string& text,
                                           const std::string& base_dir);

inline constexpr size_t kMaxUnixSocketPath = 107;

}  // namespace kontor

#endif  // KONTOR_DAEMON_CONFIG_CONFIG_H_
