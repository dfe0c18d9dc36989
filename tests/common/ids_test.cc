#include "daemon/common/ids.h"

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

}  // namespace
}  // namespace kontor
