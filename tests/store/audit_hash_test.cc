// The audit record hash and head encoding (daemon/store/audit.h): pure
// functions, the same whichever backend stores the chain, so these run once
// and not per backend. The chain a backend keeps is checked against the
// same independent computation (audit_reference.h) in
// conformance_audit_test.cc.

#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "daemon/store/audit.h"
#include "gtest/gtest.h"
#include "tests/store/audit_reference.h"

namespace kontor {
namespace {

using testing::IndependentHash;

AuditRecord KnownRecord() {
  AuditRecord r;
  r.seq = 7;
  r.time_ms = 1700000000123;
  r.entry = AuditEntry{"consult", "user:anna", "01HXYZ",     "ee",
                       "fi",      "referral",  "Art. 8 LED", ""};
  r.prev = std::string(32, '\x5a');
  return r;
}

TEST(AuditHashTest, KnownAnswer) {
  const AuditRecord r = KnownRecord();
  // Computed a third way too (Python hashlib, struct.pack('>Q'/'>I')).
  EXPECT_EQ(absl::BytesToHexString(AuditRecordHash(r)),
            "4cfb15554476770dc310cb3a99bfacd76c08b03976231544cc64e9efad335c22");
  EXPECT_EQ(AuditRecordHash(r), IndependentHash(r));
}

TEST(AuditHashTest, MatchesAnIndependentComputationForUnusualValues) {
  AuditRecord r;
  r.seq = 0x0102030405060708ULL;  // every byte of the u64 distinct
  r.time_ms = -1;                 // encoded as its u64 (all ones)
  r.entry = AuditEntry{"", std::string("a\0b", 3), "\xc3\xa4", "", "",
                       "", std::string(300, 'p'),  "detail"};
  r.prev = std::string(32, '\0');
  EXPECT_EQ(AuditRecordHash(r), IndependentHash(r));
  EXPECT_EQ(AuditRecordHash(r).size(), 32u);
}

TEST(AuditHashTest, EveryFieldAndFieldBoundariesCount) {
  const AuditRecord base = KnownRecord();
  const std::string h = AuditRecordHash(base);
  std::set<std::string> seen = {h};
  auto changed = [&](auto mutate) {
    AuditRecord r = base;
    mutate(r);
    return AuditRecordHash(r);
  };
  std::vector<std::string> variants = {
      changed([](AuditRecord& r) { r.seq = 8; }),
      changed([](AuditRecord& r) { r.time_ms += 1; }),
      changed([](AuditRecord& r) { r.entry.action = "collect"; }),
      changed([](AuditRecord& r) { r.entry.actor = "user:anne"; }),
      changed([](AuditRecord& r) { r.entry.message_id += "x"; }),
      changed([](AuditRecord& r) { r.entry.origin = "lv"; }),
      changed([](AuditRecord& r) { r.entry.peer = "lv"; }),
      changed([](AuditRecord& r) { r.entry.kind = "note"; }),
      changed([](AuditRecord& r) { r.entry.purpose = "Art. 9"; }),
      changed([](AuditRecord& r) { r.entry.detail = "x"; }),
      changed([](AuditRecord& r) { r.prev[31] ^= 1; }),
      // The same bytes split differently between two fields.
      changed([](AuditRecord& r) {
        r.entry.origin = "e";
        r.entry.peer = "efi";
      }),
      // The hash itself is not an input.
  };
  for (const std::string& v : variants) {
    EXPECT_TRUE(seen.insert(v).second) << absl::BytesToHexString(v);
  }
  AuditRecord with_hash = base;
  with_hash.hash = "anything";
  EXPECT_EQ(AuditRecordHash(with_hash), h);
}

TEST(AuditHeadTest, EncodeDecodeRoundTrip) {
  EXPECT_EQ(GenesisHash(), std::string(32, '\0'));
  AuditHead head{0x0102030405060708ULL, std::string(32, '\x7f')};
  head.hash[0] = '\0';
  const std::string bytes = EncodeAuditHead(head);
  ASSERT_EQ(bytes.size(), 40u);
  EXPECT_EQ(bytes.substr(0, 8),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  EXPECT_EQ(bytes.substr(8), head.hash);
  auto back = DecodeAuditHead(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->seq, head.seq);
  EXPECT_EQ(back->hash, head.hash);

  auto empty = DecodeAuditHead(EncodeAuditHead({0, GenesisHash()}));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->seq, 0u);
  EXPECT_EQ(empty->hash, GenesisHash());

  auto max = DecodeAuditHead(EncodeAuditHead({UINT64_MAX, GenesisHash()}));
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->seq, UINT64_MAX);
}

TEST(AuditHeadTest, DecodeRejectsWrongLengths) {
  for (size_t n : {0, 1, 8, 32, 39, 41, 72}) {
    EXPECT_FALSE(DecodeAuditHead(std::string(n, '\x01')).has_value()) << n;
  }
  EXPECT_TRUE(DecodeAuditHead(std::string(40, '\x01')).has_value());
}

std::vector<AuditRecord> ThreeRecords() {
  return ChainAudit(
      {0, GenesisHash()},
      {{{"submit", "user:anna", "m1", "", "fi", "note", "", ""}, 1},
       {{"show", "user:anna", "m1", "", "", "", "case", ""}, 2},
       {{"erase", "kontord", "m1", "", "", "note", "", ""}, 3}});
}

TEST(AuditChainTest, ChainNumbersLinksAndHashesFromTheHead) {
  const std::vector<AuditRecord> chain = ThreeRecords();
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].seq, 1u);
  EXPECT_EQ(chain[0].prev, GenesisHash());
  EXPECT_EQ(chain[2].seq, 3u);
  EXPECT_EQ(chain[2].time_ms, 3);
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(chain[i].hash, AuditRecordHash(chain[i])) << i;
    if (i > 0) EXPECT_EQ(chain[i].prev, chain[i - 1].hash) << i;
  }
  // Appending later continues the same chain.
  const auto more =
      ChainAudit({chain[2].seq, chain[2].hash},
                 {{{"ack", "user:bo", "m1", "", "", "", "", ""}, 4}});
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].seq, 4u);
  EXPECT_EQ(more[0].prev, chain[2].hash);
  EXPECT_TRUE(ChainAudit({7, GenesisHash()}, {}).empty());
}

AuditCheck Check(const std::vector<AuditRecord>& records) {
  AuditChainCheck check;
  for (const AuditRecord& r : records) {
    if (!check.Add(r)) break;
  }
  return check.check();
}

TEST(AuditChainTest, CheckFindsTheFirstRecordThatDoesNotFit) {
  std::vector<AuditRecord> chain = ThreeRecords();
  AuditCheck ok = Check(chain);
  EXPECT_EQ(ok.first_bad_seq, 0u);
  EXPECT_EQ(ok.records, 3u);
  EXPECT_EQ(ok.head.seq, 3u);
  EXPECT_EQ(ok.head.hash, chain[2].hash);

  auto missing = chain;
  missing.erase(missing.begin() + 1);
  AuditCheck m = Check(missing);
  EXPECT_EQ(m.first_bad_seq, 2u);
  EXPECT_NE(m.problem.find("record 2 is missing"), std::string::npos);
  EXPECT_EQ(m.head.seq, 1u);

  auto altered = chain;
  altered[1].entry.purpose = "other";
  AuditCheck a = Check(altered);
  EXPECT_EQ(a.first_bad_seq, 2u);
  EXPECT_NE(a.problem.find("altered"), std::string::npos);

  // Rehashed after the change: the next record no longer links to it.
  altered[1].hash = AuditRecordHash(altered[1]);
  AuditCheck r = Check(altered);
  EXPECT_EQ(r.first_bad_seq, 3u);
  EXPECT_NE(r.problem.find("does not link"), std::string::npos);
}

}  // namespace
}  // namespace kontor
