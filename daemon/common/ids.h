#ifndef KONTOR_DAEMON_COMMON_IDS_H_
#define KONTOR_DAEMON_COMMON_IDS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "daemon/common/text.h"

namespace kontor {

// A node id is a lowercase ISO 3166 alpha-2 code, optionally followed by a dot
// and a unit: "ee", "fi", "ee.border" (DESIGN.md §3).
bool IsValidNodeId(absl::string_view id);

// Canonical lowercase UUID text form (8-4-4-4-12 hex digits).
bool IsValidMessageId(absl::string_view id);

// The URI SAN that certifies a node: "urn:kontor:node:<id>".
std::string NodeUri(absl::string_view node_id);
// Node id from such a URI, or "" if the URI is not of that form.
std::string NodeIdFromUri(absl::string_view uri);

std::string HexEncode(absl::string_view bytes);

// Printable() lives in text.h (included here for its many users).

// "2026-11-22T06:21:51.123Z" (UTC).
std::string FormatRfc3339Ms(int64_t unix_ms);

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_IDS_H_
