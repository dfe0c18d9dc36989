#include "daemon/common/ids.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace kontor {
namespace {
constexpr absl::string_view kNodeUriPrefix = "urn:kontor:node:";

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexLower(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }
}  // namespace

bool IsValidNodeId(absl::string_view id) {
  if (id.size() < 2 || !IsLower(id[0]) || !IsLower(id[1])) return false;
  if (id.size() == 2) return true;
  if (id[2] != '.' || id.size() == 3 || id.size() > 64) return false;
  for (char c : id.substr(3)) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

bool IsValidMessageId(absl::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
    } else if (!IsHexLower(id[i])) {
      return false;
    }
  }
  return true;
}

std::string NodeUri(absl::string_view node_id) {
  return std::string(kNodeUriPrefix) + std::string(node_id);
}

std::string NodeIdFromUri(absl::string_view uri) {
  if (!absl::StartsWith(uri, kNodeUriPrefix)) return "";
  absl::string_view id = uri.substr(kNodeUriPrefix.size());
  return IsValidNodeId(id) ? std::string(id) : "";
}

std::string HexEncode(absl::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string FormatRfc3339Ms(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

}  // namespace kontor
