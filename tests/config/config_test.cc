#include "daemon/config/config.h"

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
  auto replace = [](std::string s, const std::string& from,
                    const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const std::string good = kGood;
  EXPECT_EQ(Error(replace(good, "node_id: \"ee\"", "node_id: \"EE\""))
                .rfind("node_id:", 0),
            0u);
  EXPECT_NE(Error(replace(good, "id: \"fi\"", "id: \"f\"")).find("peers[0].id"),
            std::string::npos);
  EXPECT_NE(Error(replace(good, "address: \"127.0.0.1:7001\"",
                          "address: \"nowhere\""))
                .find("peers[0].address"),
            std::string::npos);
  EXPECT_NE(Error(replace(good, "listen_address: \"127.0.0.1:7000\"", ""))
                .find("listen_address: required"),
            std::string::npos);
  EXPECT_NE(Error(replace(good,
                          "signing { cert: \"signing.crt\" key: "
                          "\"signing.key\" }",
                          "signing { cert: \"signing.crt\" }"))
                .find("signing.key: required"),
            std::string::npos);
  EXPECT_NE(Error(replace(good, "id: \"fi\"", "id: \"ee\"")).find("own peer"),
            std::string::npos);
  EXPECT_NE(Error(good + "peers { id: \"fi\" address: \"a:1\" signing_certs: "
                         "\"x\" encryption_cert: \"y\" }")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(Error(replace(good, "local_socket: \"/tmp/ee.sock\"",
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

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadConfig("/nonexistent/node.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kontor
