#include "daemon/common/ids.h"

#include "daemon/common/routes.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

TEST(IdsTest, NodeIds) {
  for (const char* ok : {"ee", "fi", "ee.border", "pl.sg-1", "ua"}) {
    EXPECT_TRUE(IsValidNodeId(ok)) << ok;
  }
  for (const char* bad : {"", "e", "EE", "eee", "ee.", ".ee", "ee.Border",
                          "ee/x", "ee..x", "e1"}) {
    EXPECT_FALSE(IsValidNodeId(bad)) << bad;
  }
}

TEST(IdsTest, NodeUriRoundTrip) {
  EXPECT_EQ(NodeUri("lv"), "urn:kontor:node:lv");
  EXPECT_EQ(NodeIdFromUri("urn:kontor:node:ee.border"), "ee.border");
  EXPECT_EQ(NodeIdFromUri("urn:kontor:node:EE"), "");
  EXPECT_EQ(NodeIdFromUri("https://ee"), "");
}

TEST(IdsTest, MessageIds) {
  EXPECT_TRUE(IsValidMessageId("9b21db3e-5795-43e7-bad2-ae731ea4769e"));
  EXPECT_FALSE(IsValidMessageId("9B21DB3E-5795-43e7-bad2-ae731ea4769e"));
  EXPECT_FALSE(IsValidMessageId("9b21db3e579543e7bad2ae731ea4769e"));
  EXPECT_FALSE(IsValidMessageId("9b21db3e-5795-43e7-bad2-ae731ea4769"));
}

TEST(IdsTest, Rfc3339IsUtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339Ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(1795328151123), "2026-11-22T06:15:51.123Z");
}

// fi, lv and pl have addresses; ua and md are reached through pl; lv is
// routed through fi although it has an address of its own (a route wins).
// This node relays ua -> lv and lv -> ua.
Routes SampleRoutes() {
  return Routes({"fi", "lv", "pl"}, {{"ua", "pl"}, {"md", "pl"}, {"lv", "fi"}},
                {{"ua", "lv"}, {"lv", "ua"}});
}

TEST(RoutesTest, NextHop) {
  const Routes r = SampleRoutes();
  EXPECT_EQ(r.NextHop("fi"), "fi");
  EXPECT_EQ(r.NextHop("pl"), "pl");
  EXPECT_EQ(r.NextHop("ua"), "pl");
  EXPECT_EQ(r.NextHop("md"), "pl");
  EXPECT_EQ(r.NextHop("lv"), "fi");
  EXPECT_EQ(r.NextHop("xx"), "");
  EXPECT_EQ(r.NextHop(""), "");
  EXPECT_EQ(Routes().NextHop("fi"), "");
}

TEST(RoutesTest, DestinationsVia) {
  const Routes r = SampleRoutes();
  EXPECT_EQ(r.DestinationsVia("pl"),
            (std::vector<std::string>{"pl", "md", "ua"}));
  EXPECT_EQ(r.DestinationsVia("fi"), (std::vector<std::string>{"fi", "lv"}));
  // lv is routed through fi: its own loop serves nothing.
  EXPECT_TRUE(r.DestinationsVia("lv").empty());
  EXPECT_TRUE(r.DestinationsVia("ua").empty());
  EXPECT_TRUE(r.DestinationsVia("xx").empty());
  // Without routes every direct peer serves itself only.
  EXPECT_EQ(Routes({"fi"}, {}, {}).DestinationsVia("fi"),
            std::vector<std::string>{"fi"});
}

TEST(RoutesTest, IngressAllowed) {
  const Routes r = SampleRoutes();
  EXPECT_TRUE(r.IngressAllowed("fi", "fi"));  // its own
  EXPECT_TRUE(r.IngressAllowed("ua", "pl"));  // routed through pl
  EXPECT_TRUE(r.IngressAllowed("lv", "fi"));
  EXPECT_FALSE(r.IngressAllowed("ua", "fi"));  // not the way to ua
  EXPECT_FALSE(r.IngressAllowed("fi", "pl"));  // fi is direct
  EXPECT_FALSE(r.IngressAllowed("pl", "ua"));  // not the other way round
  EXPECT_FALSE(r.IngressAllowed("xx", "pl"));
  // Without routes: only a peer's own envelopes.
  EXPECT_TRUE(Routes().IngressAllowed("ee", "ee"));
  EXPECT_FALSE(Routes().IngressAllowed("ee", "fi"));
}

TEST(RoutesTest, RelayAllowedIsPerDirectedPair) {
  const Routes r = SampleRoutes();
  EXPECT_TRUE(r.RelayAllowed("ua", "lv"));
  EXPECT_TRUE(r.RelayAllowed("lv", "ua"));
  EXPECT_FALSE(r.RelayAllowed("ua", "fi"));
  EXPECT_FALSE(r.RelayAllowed("md", "lv"));
  EXPECT_FALSE(r.RelayAllowed("ua", "ua"));
  EXPECT_TRUE(r.relays());
  EXPECT_FALSE(Routes({"fi"}, {{"ua", "fi"}}, {}).relays());
  const Routes one_way({"fi", "lv"}, {}, {{"fi", "lv"}});
  EXPECT_TRUE(one_way.RelayAllowed("fi", "lv"));
  EXPECT_FALSE(one_way.RelayAllowed("lv", "fi"));
}

}  // namespace
}  // namespace kontor
