#ifndef KONTOR_TESTS_STORE_AUDIT_REFERENCE_H_
#define KONTOR_TESTS_STORE_AUDIT_REFERENCE_H_

#include <openssl/sha.h>

#include <cstdint>
#include <string>

#include "daemon/store/audit.h"

namespace kontor::testing {

// The record hash computed here, apart from the store's code, straight from
// its definition: SHA-256 of "kontor-audit-v1" || u64be(seq) ||
// u64be(time_ms) || for each field u32be(len) || bytes || prev.
inline std::string IndependentHash(const AuditRecord& r) {
  std::string in = "kontor-audit-v1";
  unsigned char be8[8];
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i)
      be8[i] = static_cast<unsigned char>(v >> (56 - 8 * i));
    in.append(reinterpret_cast<const char*>(be8), 8);
  };
  auto field = [&](const std::string& f) {
    const uint32_t n = static_cast<uint32_t>(f.size());
    const unsigned char be4[4] = {static_cast<unsigned char>(n >> 24),
                                  static_cast<unsigned char>(n >> 16),
                                  static_cast<unsigned char>(n >> 8),
                                  static_cast<unsigned char>(n)};
    in.append(reinterpret_cast<const char*>(be4), 4);
    in += f;
  };
  u64(r.seq);
  u64(static_cast<uint64_t>(r.time_ms));
  const AuditEntry& e = r.entry;
  field(e.action);
  field(e.actor);
  field(e.message_id);
  field(e.origin);
  field(e.peer);
  field(e.kind);
  field(e.purpose);
  field(e.detail);
  in += r.prev;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

}  // namespace kontor::testing

#endif  // KONTOR_TESTS_STORE_AUDIT_REFERENCE_H_
