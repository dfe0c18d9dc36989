// The metrics seam (metrics/metrics.h) and the monitoring listener
// (web/metrics_server.h), checked over a real TCP connection.

#include "daemon/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/web/metrics_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

using ::testing::HasSubstr;

// One HTTP/1.0 request to 127.0.0.1:port; the whole answer.
std::string Http(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

TEST(MetricsTest, CountersGaugesHistogramsInTheTextFormat) {
  Metrics m;
  m.set_refresh_interval(absl::ZeroDuration());
  m.GetCounter("kontor_test_total", "A test counter", {{"peer", "fi"}})
      .Increment();
  m.GetCounter("kontor_test_total", "A test counter", {{"peer", "fi"}})
      .Increment(2);  // the same series
  m.GetGauge("kontor_test_depth", "A test gauge").Set(7);
  m.GetHistogram("kontor_test_seconds", "A test histogram", {0.1, 1})
      .Observe(0.5);
  int refreshed = 0;
  m.OnCollect([&] {
    ++refreshed;
    m.GetGauge("kontor_test_read", "Read when scraped").Set(refreshed);
  });
  const std::string text = m.TextExposition();
  EXPECT_THAT(text, HasSubstr("# TYPE kontor_test_total counter"));
  EXPECT_THAT(text, HasSubstr("kontor_test_total{peer=\"fi\"} 3"));
  EXPECT_THAT(text, HasSubstr("kontor_test_depth 7"));
  EXPECT_THAT(text, HasSubstr("kontor_test_seconds_bucket{le=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("kontor_test_read 1"));
  EXPECT_THAT(m.TextExposition(), HasSubstr("kontor_test_read 2"));
}

TEST(MetricsTest, RefreshersRunAtMostOncePerInterval) {
  Metrics m;
  int refreshed = 0;
  m.OnCollect([&] { ++refreshed; });
  m.TextExposition();
  m.TextExposition();
  m.TextExposition();
  EXPECT_EQ(refreshed, 1);
}

TEST(MetricsTest, DefaultHandlesDoNothing) {
  Counter c;
  Gauge g;
  Histogram h;
  c.Increment();
  g.Set(3);
  h.Observe(1);
  EXPECT_EQ(c.Value(), 0);
  EXPECT_EQ(g.Value(), 0);
}

TEST(MetricsServerTest, ServesMetricsAndHealth) {
  Metrics m;
  m.GetCounter("kontor_test_total", "A test counter").Increment();
  std::atomic<bool> healthy{true};
  auto server = MetricsServer::Start("127.0.0.1:0", &m, [&]() -> std::string {
    return healthy ? "" : "node is not serving";
  });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  std::string r = Http(port, "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_THAT(r, HasSubstr("200 OK"));
  EXPECT_THAT(r, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(r, HasSubstr("kontor_test_total 1"));
  EXPECT_THAT(Http(port, "GET /healthz HTTP/1.0\r\n\r\n"), HasSubstr("200 OK"));
  healthy = false;
  r = Http(port, "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_THAT(r, HasSubstr("503"));
  EXPECT_THAT(r, HasSubstr("node is not serving"));
  EXPECT_THAT(Http(port, "GET /secret HTTP/1.0\r\n\r\n"), HasSubstr("404"));
  EXPECT_THAT(Http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
              ::testing::Not(HasSubstr("200 OK")));
}

TEST(MetricsServerTest, ABadOrTakenAddressIsAClearError) {
  Metrics m;
  auto bad = MetricsServer::Start("nonsense", &m, [] { return ""; });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto first = MetricsServer::Start("127.0.0.1:0", &m, [] { return ""; });
  ASSERT_TRUE(first.ok());
  auto second = MetricsServer::Start(
      absl::StrCat("127.0.0.1:", (*first)->port()), &m, [] { return ""; });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("metrics.listen_address"));
}

}  // namespace
}  // namespace kontor
