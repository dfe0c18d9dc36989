// Local users and their roles (daemon/policy/policy.h, api/operator_auth.h):
// role names, which kinds each role works with, and the user of an operator
// certificate, made here with OpenSSL's API.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <set>

#include "daemon/api/operator_auth.h"
#include "daemon/common/kinds.h"
#include "daemon/policy/policy.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

constexpr Role kAllRoles[] = {Role::kCoordinator, Role::kLiaison, Role::kSystem,
                              Role::kAdmin};

TEST(RolesTest, NamesRoundTrip) {
  EXPECT_EQ(RoleName(Role::kCoordinator), "coordinator");
  EXPECT_EQ(RoleName(Role::kLiaison), "liaison");
  EXPECT_EQ(RoleName(Role::kSystem), "system");
  EXPECT_EQ(RoleName(Role::kAdmin), "admin");
  for (Role r : kAllRoles) {
    auto parsed = ParseRole(RoleName(r));
    ASSERT_TRUE(parsed.has_value()) << RoleName(r);
    EXPECT_EQ(*parsed, r);
  }
  for (const char* bad : {"", "Admin", "ADMIN", " admin", "admin ", "root",
                          "coordinators", "liaison\n"}) {
    EXPECT_FALSE(ParseRole(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(RolesTest, KindsByRole) {
  const std::set<std::string> referral = {"referral.consult", "referral",
                                          "referral.response", "case.update",
                                          "consent.update"};
  const std::set<std::string> intelligence = {
      "intel.report",    "intel.request", "intel.response",
      "incident.report", "sitrep",        "alert"};
  const std::set<std::string> shared = {"note", "restriction.update",
                                        "erase.notice"};
  // The table covers every kind there is.
  std::set<std::string> all;
  for (const auto* s : {&referral, &intelligence, &shared}) {
    all.insert(s->begin(), s->end());
  }
  EXPECT_EQ(
      all, std::set<std::string>(MessageKinds().begin(), MessageKinds().end()));
  for (const std::string& k : MessageKinds()) {
    SCOPED_TRACE(k);
    const bool is_referral = referral.count(k) > 0;
    const bool is_intel = intelligence.count(k) > 0;
    const bool is_shared = shared.count(k) > 0;
    EXPECT_EQ(RoleMayUseKind(Role::kCoordinator, k), is_referral || is_shared);
    EXPECT_EQ(RoleMayUseKind(Role::kLiaison, k), is_intel || is_shared);
    EXPECT_TRUE(RoleMayUseKind(Role::kSystem, k));
    EXPECT_TRUE(RoleMayUseKind(Role::kAdmin, k));
  }
  // Spelled out, as DESIGN says it.
  for (const char* k :
       {"referral.consult", "referral", "referral.response", "case.update",
        "consent.update", "note", "restriction.update", "erase.notice"}) {
    EXPECT_TRUE(RoleMayUseKind(Role::kCoordinator, k)) << k;
  }
  for (const char* k : {"intel.report", "intel.request", "intel.response",
                        "incident.report", "sitrep", "alert"}) {
    EXPECT_FALSE(RoleMayUseKind(Role::kCoordinator, k)) << k;
    EXPECT_TRUE(RoleMayUseKind(Role::kLiaison, k)) << k;
  }
  for (const char* k : {"referral.consult", "referral", "referral.response",
                        "case.update", "consent.update"}) {
    EXPECT_FALSE(RoleMayUseKind(Role::kLiaison, k)) << k;
  }
  for (const char* k : {"note", "restriction.update", "erase.notice"}) {
    EXPECT_TRUE(RoleMayUseKind(Role::kLiaison, k)) << k;
  }
}

TEST(RolesTest, UnknownKindIsNeverAllowed) {
  for (Role r : kAllRoles) {
    for (const char* k :
         {"", "gossip", "Note", "referral.x", "referrals", "intel", "note "}) {
      EXPECT_FALSE(RoleMayUseKind(r, k)) << RoleName(r) << " '" << k << "'";
    }
  }
}

TEST(RolesTest, KindsOfRoleListsWhatRoleMayUseKindAllows) {
  EXPECT_EQ(KindsOfRole(Role::kCoordinator),
            (std::vector<std::string>{"note", "referral.consult", "referral",
                                      "referral.response", "case.update",
                                      "consent.update", "restriction.update",
                                      "erase.notice"}));
  EXPECT_EQ(KindsOfRole(Role::kLiaison),
            (std::vector<std::string>{"note", "intel.report", "intel.request",
                                      "intel.response", "incident.report",
                                      "sitrep", "alert", "restriction.update",
                                      "erase.notice"}));
  EXPECT_EQ(KindsOfRole(Role::kSystem), MessageKinds());
  EXPECT_EQ(KindsOfRole(Role::kAdmin), MessageKinds());
}

TEST(RolesTest, FlashAndAdmin) {
  EXPECT_FALSE(RoleMaySendFlash(Role::kCoordinator));
  EXPECT_TRUE(RoleMaySendFlash(Role::kLiaison));
  EXPECT_TRUE(RoleMaySendFlash(Role::kSystem));
  EXPECT_TRUE(RoleMaySendFlash(Role::kAdmin));
  EXPECT_FALSE(RoleIsAdmin(Role::kCoordinator));
  EXPECT_FALSE(RoleIsAdmin(Role::kLiaison));
  EXPECT_FALSE(RoleIsAdmin(Role::kSystem));
  EXPECT_TRUE(RoleIsAdmin(Role::kAdmin));
}

// ------------------------------------------------- operator certificates

struct Name {
  int type;  // GEN_URI, GEN_DNS, GEN_EMAIL
  std::string value;
};

// A self-signed P-256 certificate with exactly these subject alternative
// names (none: no SAN extension). OperatorFromCertificate does not check
// the chain; the operator port's TLS does.
CertificatePtr MakeCert(const std::vector<Name>& names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  EXPECT_NE(key, nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("operator"),
                             -1, -1, 0);
  X509_set_issuer_name(x, subject);
  X509_set_pubkey(x, key);
  if (!names.empty()) {
    GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
    for (const Name& n : names) {
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      ASN1_STRING_set(s, n.value.data(), static_cast<int>(n.value.size()));
      GENERAL_NAME* g = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(g, n.type, s);
      sk_GENERAL_NAME_push(gens, g);
    }
    EXPECT_EQ(
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT),
        1);
    GENERAL_NAMES_free(gens);
  }
  EXPECT_GT(X509_sign(x, key, EVP_sha256()), 0);
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  EXPECT_GT(len, 0);
  auto cert =
      Certificate::FromDer(std::string(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  X509_free(x);
  EVP_PKEY_free(key);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? *cert : nullptr;
}

CertificatePtr WithUris(const std::vector<std::string>& uris) {
  std::vector<Name> names;
  for (const std::string& u : uris) names.push_back({GEN_URI, u});
  return MakeCert(names);
}

absl::StatusOr<Caller> CallerOf(const std::vector<std::string>& uris) {
  CertificatePtr cert = WithUris(uris);
  if (cert == nullptr) return absl::InternalError("no certificate");
  return OperatorFromCertificate(*cert);
}

TEST(OperatorCertificateTest, UserAndRole) {
  auto c = CallerOf({"urn:kontor:user:anna", "urn:kontor:role:coordinator"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, "user:anna");
  EXPECT_EQ(c->role, Role::kCoordinator);
  // In any order, every role.
  for (Role r : kAllRoles) {
    auto d = CallerOf({"urn:kontor:role:" + std::string(RoleName(r)),
                       "urn:kontor:user:b.o-r_1s"});
    ASSERT_TRUE(d.ok()) << RoleName(r) << ": " << d.status();
    EXPECT_EQ(d->id, "user:b.o-r_1s");
    EXPECT_EQ(d->role, r);
  }
  // 64 characters is the longest user id.
  auto longest = CallerOf(
      {"urn:kontor:user:" + std::string(64, 'a'), "urn:kontor:role:admin"});
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_EQ(longest->id, "user:" + std::string(64, 'a'));
}

TEST(OperatorCertificateTest, OtherNamesBesideTheKontorOnesAreIgnored) {
  auto cert = MakeCert({{GEN_DNS, "ops.example.org"},
                        {GEN_URI, "urn:kontor:user:anna"},
                        {GEN_EMAIL, "anna@example.org"},
                        {GEN_URI, "https://example.org/anna"},
                        {GEN_URI, "urn:kontor:role:liaison"}});
  ASSERT_NE(cert, nullptr);
  auto c = OperatorFromCertificate(*cert);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, "user:anna");
  EXPECT_EQ(c->role, Role::kLiaison);
}

TEST(OperatorCertificateTest, WhatIsNotOneUserWithOneRoleIsDenied) {
  const std::string anna = "urn:kontor:user:anna";
  const std::string coord = "urn:kontor:role:coordinator";
  const std::vector<std::vector<std::string>> denied = {
      {},                                        // no SAN at all
      {anna},                                    // no role
      {coord},                                   // no user
      {anna, coord, "urn:kontor:role:liaison"},  // two roles
      {anna, coord, coord},                      // the same role twice
      {anna, "urn:kontor:role:root"},            // unknown role
      {anna, "urn:kontor:role:Admin"},           // roles are lower case
      {anna, "urn:kontor:role:"},                // empty role
      {anna, "urn:kontor:user:boris", coord},    // two users
      {anna, anna, coord},                       // the same user twice
      {"urn:kontor:user:Anna", coord},           // upper case
      {"urn:kontor:user:a b", coord},            // a space
      {"urn:kontor:user:", coord},               // empty user
      {"urn:kontor:user:anna/x", coord},         // a slash
      {"urn:kontor:user:" + std::string(65, 'a'), coord},  // too long
      {anna, coord, "urn:kontor:node:ee"},                 // a node certificate
      {anna, coord, "urn:kontor:node:EE"},                 // a node URI, bad id
      {anna, coord, "urn:kontor:node:ee", "urn:kontor:node:fi"},  // two nodes
      {anna, coord, "urn:kontor:xyz:anything"},  // unknown kontor name
      {anna, coord, "urn:kontor:"},
  };
  for (const auto& uris : denied) {
    std::string what;
    for (const auto& u : uris) what += u + " ";
    auto c = CallerOf(uris);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kPermissionDenied)
        << what << "-> "
        << (c.ok() ? c->id : std::string(c.status().message()));
  }
}

TEST(OperatorCertificateTest, ANodeCertificateIsNeverALocalUser) {
  auto cert = WithUris({"urn:kontor:node:ee"});
  ASSERT_NE(cert, nullptr);
  ASSERT_EQ(cert->node_id(), "ee");
  auto c = OperatorFromCertificate(*cert);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(c.status().message().find("node"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace kontor
