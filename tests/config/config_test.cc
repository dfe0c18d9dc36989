#include "daemon/config/config.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace kontor {
namespace {

constexpr const char* kGood = R"(
node_id: "ee"
data_dir: "data"
listen_address: "127.0.0.1:7000"
local_socket: "/tmp/ee.sock"
tls { cert: "tls.crt" key: "tls.key" }
signing { cert: "signing.crt" key: "signing.key" }
encryption { cert: "encryption.crt" key: "encryption.key" }
trusted_cas { cert: "ca.crt" crl: "ca.crl" allowed_node_ids: "ee" allowed_node_ids: "fi" }
peers { id: "fi" address: "127.0.0.1:7001" signing_certs: "fi-s.crt" encryption_cert: "/abs/fi-e.crt" }
)";

// `s` with the first `from` replaced by `to` (which must be there).
std::string Replace(std::string s, const std::string& from,
                    const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string Error(const std::string& text) {
  auto c = ParseConfig(text, "/etc/kontor");
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(ConfigTest, GoodConfigGetsDefaultsAndAbsolutePaths) {
  auto c = ParseConfig(kGood, "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir(), "/etc/kontor/data");
  EXPECT_EQ(c->tls().key(), "/etc/kontor/tls.key");
  EXPECT_EQ(c->peers(0).signing_certs(0), "/etc/kontor/fi-s.crt");
  EXPECT_EQ(c->peers(0).encryption_cert(), "/abs/fi-e.crt");
  EXPECT_EQ(c->limits().max_message_bytes(), 4u << 20);
  EXPECT_EQ(c->limits().max_clock_skew_seconds(), 300u);
  EXPECT_EQ(c->backoff().max_ms(), 3600000u);
}

TEST(ConfigTest, ErrorsNameTheField) {
  const std::string good = kGood;
  EXPECT_EQ(Error(Replace(good, "node_id: \"ee\"", "node_id: \"EE\""))
                .rfind("node_id:", 0),
            0u);
  EXPECT_NE(Error(Replace(good, "id: \"fi\"", "id: \"f\"")).find("peers[0].id"),
            std::string::npos);
  EXPECT_NE(Error(Replace(good, "address: \"127.0.0.1:7001\"",
                          "address: \"nowhere\""))
                .find("peers[0].address"),
            std::string::npos);
  EXPECT_NE(Error(Replace(good, "listen_address: \"127.0.0.1:7000\"", ""))
                .find("listen_address: required"),
            std::string::npos);
  EXPECT_NE(Error(Replace(good,
                          "signing { cert: \"signing.crt\" key: "
                          "\"signing.key\" }",
                          "signing { cert: \"signing.crt\" }"))
                .find("signing.key: required"),
            std::string::npos);
  EXPECT_NE(Error(Replace(good, "id: \"fi\"", "id: \"ee\"")).find("own peer"),
            std::string::npos);
  EXPECT_NE(Error(good + "peers { id: \"fi\" address: \"a:1\" signing_certs: "
                         "\"x\" encryption_cert: \"y\" }")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(Error(Replace(good, "local_socket: \"/tmp/ee.sock\"",
                          "local_socket: \"/" + std::string(120, 'x') + "\""))
                .find("local_socket"),
            std::string::npos);
  EXPECT_NE(Error(good + "limits { max_message_bytes: 1000000000 }")
                .find("limits.max_message_bytes"),
            std::string::npos);
  EXPECT_NE(Error("node_id: \"ee\" bogus_field: 1").find("line 1"),
            std::string::npos);
}

TEST(ConfigTest, ExpiryPerKindIsChecked) {
  auto c = ParseConfig(std::string(kGood) +
                           "limits { expiry_seconds_by_kind { key: \"alert\" "
                           "value: 3600 } }",
                       "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->limits().expiry_seconds_by_kind().at("alert"), 3600u);
  EXPECT_NE(Error(std::string(kGood) +
                  "limits { expiry_seconds_by_kind { key: \"gossip\" value: "
                  "60 } }")
                .find("limits.expiry_seconds_by_kind: 'gossip'"),
            std::string::npos);
}

// ee with two peers: fi (an address, relays) and lv (reached through fi).
constexpr const char* kRouted = R"(
node_id: "ee"
data_dir: "data"
listen_address: "127.0.0.1:7000"
local_socket: "/tmp/ee.sock"
tls { cert: "tls.crt" key: "tls.key" }
signing { cert: "signing.crt" key: "signing.key" }
encryption { cert: "encryption.crt" key: "encryption.key" }
trusted_cas { cert: "ca.crt" allowed_node_ids: "*" }
peers { id: "fi" address: "127.0.0.1:7001" signing_certs: "fi-s.crt" encryption_cert: "fi-e.crt" }
peers { id: "lv" signing_certs: "lv-s.crt" encryption_cert: "lv-e.crt" }
)";

// The error for kRouted plus `extra`; empty if it parses.
std::string RoutedError(const std::string& extra) {
  return Error(std::string(kRouted) + extra);
}

// True if `error` starts with `field` (as "field: problem").
bool Names(const std::string& error, const std::string& field) {
  return error.rfind(field + ": ", 0) == 0;
}

TEST(ConfigTest, RouteToAnAddresslessPeerParses) {
  auto c = ParseConfig(std::string(kRouted) +
                           "routes { destination: \"lv\" via: \"fi\" }\n"
                           "relay { origin: \"lv\" destination: \"fi\" }\n",
                       "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->routes_size(), 1);
  EXPECT_EQ(c->routes(0).destination(), "lv");
  EXPECT_EQ(c->routes(0).via(), "fi");
  EXPECT_EQ(c->peers(1).address(), "");
  EXPECT_EQ(c->relay_size(), 1);
}

TEST(ConfigTest, AddresslessPeerWithoutRouteNamesItsAddress) {
  const std::string e = RoutedError("");
  EXPECT_TRUE(Names(e, "peers[1].address")) << e;
  // A route to another peer does not help lv.
  const std::string other = RoutedError(
      "peers { id: \"lt\" address: \"127.0.0.1:7003\" signing_certs: \"x\" "
      "encryption_cert: \"y\" }\n"
      "routes { destination: \"lt\" via: \"fi\" }\n");
  EXPECT_TRUE(Names(other, "peers[1].address")) << other;
}

TEST(ConfigTest, RouteErrorsNameTheField) {
  const std::string lv_via_fi = "routes { destination: \"lv\" via: \"fi\" }\n";
  // Destination not a peer.
  std::string e =
      RoutedError(lv_via_fi + "routes { destination: \"ua\" via: \"fi\" }\n");
  EXPECT_TRUE(Names(e, "routes[1].destination")) << e;
  EXPECT_NE(e.find("'ua' is not a configured peer"), std::string::npos) << e;
  // Via not a peer.
  e = RoutedError("routes { destination: \"lv\" via: \"pl\" }\n");
  EXPECT_TRUE(Names(e, "routes[0].via")) << e;
  // Via a peer without an address (lv has none).
  e = RoutedError(
      lv_via_fi +
      "peers { id: \"lt\" address: \"127.0.0.1:7003\" signing_certs: \"x\" "
      "encryption_cert: \"y\" }\n"
      "routes { destination: \"lt\" via: \"lv\" }\n");
  EXPECT_TRUE(Names(e, "routes[1].via")) << e;
  EXPECT_NE(e.find("not a peer with an address"), std::string::npos) << e;
  // Via the destination itself.
  e = RoutedError(lv_via_fi + "routes { destination: \"fi\" via: \"fi\" }\n");
  EXPECT_TRUE(Names(e, "routes[1].via")) << e;
  EXPECT_NE(e.find("must differ from destination"), std::string::npos) << e;
  // The same destination twice (even with the same via).
  e = RoutedError(lv_via_fi + lv_via_fi);
  EXPECT_TRUE(Names(e, "routes[1].destination")) << e;
  EXPECT_NE(e.find("listed twice"), std::string::npos) << e;
}

TEST(ConfigTest, RelayRuleErrorsNameTheField) {
  const std::string base = "routes { destination: \"lv\" via: \"fi\" }\n";
  std::string e =
      RoutedError(base + "relay { origin: \"ua\" destination: \"fi\" }\n");
  EXPECT_TRUE(Names(e, "relay[0].origin")) << e;
  EXPECT_NE(e.find("'ua' is not a configured peer"), std::string::npos) << e;
  e = RoutedError(base + "relay { origin: \"fi\" destination: \"lv\" }\n" +
                  "relay { origin: \"lv\" destination: \"pl\" }\n");
  EXPECT_TRUE(Names(e, "relay[1].destination")) << e;
  // This node itself is not a peer either.
  e = RoutedError(base + "relay { origin: \"ee\" destination: \"lv\" }\n");
  EXPECT_TRUE(Names(e, "relay[0].origin")) << e;
  e = RoutedError(base + "relay { origin: \"fi\" destination: \"fi\" }\n");
  EXPECT_TRUE(Names(e, "relay[0].destination")) << e;
  EXPECT_NE(e.find("must differ from origin"), std::string::npos) << e;
  // A pair twice; the reverse direction is another pair.
  e = RoutedError(base + "relay { origin: \"fi\" destination: \"lv\" }\n" +
                  "relay { origin: \"lv\" destination: \"fi\" }\n" +
                  "relay { origin: \"fi\" destination: \"lv\" }\n");
  EXPECT_TRUE(Names(e, "relay[2]")) << e;
  EXPECT_NE(e.find("fi -> lv is listed twice"), std::string::npos) << e;
  EXPECT_EQ(
      RoutedError(base + "relay { origin: \"fi\" destination: \"lv\" }\n" +
                  "relay { origin: \"lv\" destination: \"fi\" }\n"),
      "");
}

TEST(ConfigTest, StoreBackendDefaultsToSqliteAndUnknownOnesAreRefused) {
  auto c = ParseConfig(kGood, "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->store().backend(), "");  // the default: sqlite
  EXPECT_TRUE(
      ParseConfig(std::string(kGood) + "store { backend: \"sqlite\" }\n",
                  "/etc/kontor")
          .ok());
  // A value from the file is shown bounded and printable.
  const std::string error =
      Error(std::string(kGood) + "store { backend: \"postgres\\n" +
            std::string(300, 'x') + "\" }\n");
  EXPECT_EQ(error.rfind("store.backend: 'postgres", 0), 0u) << error;
  EXPECT_NE(error.find("(one of: sqlite)"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_LT(error.size(), 200u) << error;
}

TEST(ConfigTest, ValuesFromTheFileAreShownEscapedInErrors) {
  const std::string good = kGood;
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{
           {"node_id: \"ee\"", "node_id: \"e\\x1b[2Je\""},
           {"listen_address: \"127.0.0.1:7000\"",
            "listen_address: \"x\\nSECURITY forged\""},
           {"address: \"127.0.0.1:7001\"", "address: \"\\x1b]52;c;AA\\x07\""},
           {"id: \"fi\"", "id: \"f\\ri\""},
       }) {
    const std::string error = Error(Replace(good, from, to));
    EXPECT_FALSE(error.empty()) << to;
    for (char c : error) {
      EXPECT_TRUE(c >= 0x20 && c != 0x7f) << to << ": " << error;
    }
  }
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadConfig("/nonexistent/node.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

// ------------------------------------------------ kinds per peer, operators

// kGood with `fields` added to its peer fi.
std::string WithPeerFields(const std::string& fields) {
  return Replace(kGood, "encryption_cert: \"/abs/fi-e.crt\" }",
                 "encryption_cert: \"/abs/fi-e.crt\" " + fields + " }");
}

TEST(ConfigTest, PeerKindsAreMessageKinds) {
  auto c = ParseConfig(
      WithPeerFields("accept_kinds: \"referral\" accept_kinds: \"note\" "
                     "send_kinds: \"referral.response\" send_kinds: "
                     "\"erase.notice\""),
      "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->peers(0).accept_kinds_size(), 2);
  EXPECT_EQ(c->peers(0).accept_kinds(0), "referral");
  EXPECT_EQ(c->peers(0).accept_kinds(1), "note");
  ASSERT_EQ(c->peers(0).send_kinds_size(), 2);
  EXPECT_EQ(c->peers(0).send_kinds(1), "erase.notice");
  // None listed: no policy.
  auto open = ParseConfig(kGood, "/etc/kontor");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->peers(0).accept_kinds_size(), 0);
  EXPECT_EQ(open->peers(0).send_kinds_size(), 0);
}

TEST(ConfigTest, UnknownPeerKindNamesTheFieldAndListsTheKinds) {
  std::string e = Error(WithPeerFields("accept_kinds: \"gossip\""));
  EXPECT_TRUE(Names(e, "peers[0].accept_kinds[0]")) << e;
  EXPECT_NE(e.find("'gossip' is not a message kind"), std::string::npos) << e;
  for (const char* kind :
       {"note", "referral.consult", "sitrep", "erase.notice"}) {
    EXPECT_NE(e.find(kind), std::string::npos) << kind << " in " << e;
  }
  e = Error(WithPeerFields("accept_kinds: \"note\" accept_kinds: \"Note\""));
  EXPECT_TRUE(Names(e, "peers[0].accept_kinds[1]")) << e;
  e = Error(WithPeerFields("send_kinds: \"\""));
  EXPECT_TRUE(Names(e, "peers[0].send_kinds[0]")) << e;
  e =
      Error(WithPeerFields("accept_kinds: \"alert\" send_kinds: \"alert\" "
                           "send_kinds: \"referral.x\""));
  EXPECT_TRUE(Names(e, "peers[0].send_kinds[1]")) << e;
  EXPECT_NE(e.find("referral.x"), std::string::npos) << e;
  // The second peer's.
  e = Error(std::string(kGood) +
            "peers { id: \"lv\" address: \"127.0.0.1:7002\" signing_certs: "
            "\"lv-s.crt\" encryption_cert: \"lv-e.crt\" send_kinds: "
            "\"intel\" }");
  EXPECT_TRUE(Names(e, "peers[1].send_kinds[0]")) << e;
}

TEST(ConfigTest, OperatorApiNeedsItsOwnCa) {
  auto c = ParseConfig(std::string(kGood) +
                           "operator_api { listen_address: \"127.0.0.1:7443\" "
                           "ca: \"operators.crt\" crl: \"operators.crl\" }",
                       "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->operator_api().listen_address(), "127.0.0.1:7443");
  EXPECT_EQ(c->operator_api().ca(), "/etc/kontor/operators.crt");
  EXPECT_EQ(c->operator_api().crl(), "/etc/kontor/operators.crl");

  std::string e = Error(std::string(kGood) +
                        "operator_api { listen_address: \"127.0.0.1:7443\" }");
  EXPECT_TRUE(Names(e, "operator_api.ca")) << e;

  // The federation CA, relative or absolute.
  e = Error(std::string(kGood) +
            "operator_api { listen_address: \"127.0.0.1:7443\" ca: "
            "\"ca.crt\" }");
  EXPECT_TRUE(Names(e, "operator_api.ca")) << e;
  EXPECT_NE(e.find("federation CA"), std::string::npos) << e;
  e = Error(std::string(kGood) +
            "operator_api { listen_address: \"127.0.0.1:7443\" ca: "
            "\"/etc/kontor/ca.crt\" }");
  EXPECT_TRUE(Names(e, "operator_api.ca")) << e;
  EXPECT_NE(e.find("federation CA"), std::string::npos) << e;
  // Any of the trusted CAs.
  e = Error(std::string(kGood) +
            "trusted_cas { cert: \"other-ca.crt\" allowed_node_ids: \"lv\" }\n"
            "operator_api { listen_address: \"127.0.0.1:7443\" ca: "
            "\"other-ca.crt\" }");
  EXPECT_TRUE(Names(e, "operator_api.ca")) << e;

  for (const char* bad :
       {"nowhere", "127.0.0.1:", ":7443", "host:port", "127.0.0.1:70000"}) {
    e = Error(std::string(kGood) + "operator_api { listen_address: \"" + bad +
              "\" ca: \"operators.crt\" }");
    EXPECT_TRUE(Names(e, "operator_api.listen_address")) << bad << ": " << e;
  }
  // No listen address: no operator port, no CA needed.
  EXPECT_EQ(Error(std::string(kGood) + "operator_api { }"), "");
}

TEST(ConfigTest, OperatorApiNeedsTheOperatorCrl) {
  // No CRL and no allow_missing_crl: refused, naming the field and the way
  // out.
  const std::string e =
      Error(std::string(kGood) +
            "operator_api { listen_address: \"127.0.0.1:7443\" ca: "
            "\"operators.crt\" }");
  EXPECT_TRUE(Names(e, "operator_api.crl")) << e;
  EXPECT_NE(e.find("allow_missing_crl"), std::string::npos) << e;
  // An empty crl is no CRL.
  EXPECT_TRUE(Names(Error(std::string(kGood) +
                          "operator_api { listen_address: \"127.0.0.1:7443\" "
                          "ca: \"operators.crt\" crl: \"\" }"),
                    "operator_api.crl"));
  // allow_missing_crl: false is the default.
  EXPECT_TRUE(Names(Error(std::string(kGood) +
                          "operator_api { listen_address: \"127.0.0.1:7443\" "
                          "ca: \"operators.crt\" allow_missing_crl: false }"),
                    "operator_api.crl"));

  // Relative and absolute paths, as every other path.
  auto c = ParseConfig(std::string(kGood) +
                           "operator_api { listen_address: \"127.0.0.1:7443\" "
                           "ca: \"op/ca.crt\" crl: \"/var/lib/crl/op.pem\" }",
                       "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->operator_api().ca(), "/etc/kontor/op/ca.crt");
  EXPECT_EQ(c->operator_api().crl(), "/var/lib/crl/op.pem");

  // Without a CRL only when asked for.
  c = ParseConfig(std::string(kGood) +
                      "operator_api { listen_address: \"127.0.0.1:7443\" "
                      "ca: \"operators.crt\" allow_missing_crl: true }",
                  "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->operator_api().allow_missing_crl());
  EXPECT_EQ(c->operator_api().crl(), "");

  // No operator port: nothing needed.
  EXPECT_EQ(Error(std::string(kGood) + "operator_api { ca: \"op.crt\" }"), "");
}

TEST(ConfigTest, OperatorCaIsNotTheFederationCaUnderAnotherName) {
  // The same federation CA file named differently ("./ca.crt") is refused
  // (a symlink or a copy too: same inode, same bytes; kontord also compares
  // the PEM with its trusted roots at start).
  const std::string e =
      Error(std::string(kGood) +
            "operator_api { listen_address: \"127.0.0.1:7443\" ca: "
            "\"./ca.crt\" }");
  EXPECT_TRUE(Names(e, "operator_api.ca")) << e;
}

TEST(ConfigTest, HugePortIsAnErrorNotACrash) {
  // A port that does not fit an int ("127.0.0.1:99999999999") is an error
  // naming the field, never an exception (std::stoi would throw).
  std::string e;
  EXPECT_NO_THROW(e = Error(std::string(kGood) +
                            "operator_api { listen_address: "
                            "\"127.0.0.1:99999999999\" ca: \"op.crt\" }"));
  EXPECT_TRUE(Names(e, "operator_api.listen_address")) << e;
  EXPECT_NO_THROW(
      e = Error(Replace(kGood, "127.0.0.1:7000", "127.0.0.1:99999999999")));
  EXPECT_TRUE(Names(e, "listen_address")) << e;
}

TEST(ConfigTest, AuditSignSecondsDefaultsTo600) {
  auto c = ParseConfig(kGood, "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->audit_sign_seconds(), 600u);
  c = ParseConfig(std::string(kGood) + "audit_sign_seconds: 60", "/etc/kontor");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->audit_sign_seconds(), 60u);
}

}  // namespace
}  // namespace kontor
