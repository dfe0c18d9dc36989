#ifndef KONTOR_DAEMON_METRICS_METRICS_H_
#define KONTOR_DAEMON_METRICS_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace kontor {

// The metrics seam (DESIGN.md §9): every module counts through these small
// handles; the node exposes them in the Prometheus text format (through
// prometheus-cpp, never written by hand) on its HTTP listener's /metrics.
//
// Handles are copyable, cheap and thread-safe, and valid as long as the
// Metrics that made them. A default-constructed handle does nothing, so a
// module used without metrics (in a test) needs no special case.
using MetricLabels = std::map<std::string, std::string>;

class Counter {
 public:
  Counter() = default;
  void Increment(double by = 1.0) const;
  double Value() const;  // for tests and benchmarks

 private:
  friend class Metrics;
  explicit Counter(prometheus::Counter* c) : c_(c) {}
  prometheus::Counter* c_ = nullptr;
};

class Gauge {
 public:
  Gauge() = default;
  void Set(double value) const;
  void Increment(double by = 1.0) const;
  void Decrement(double by = 1.0) const;
  double Value() const;

 private:
  friend class Metrics;
  explicit Gauge(prometheus::Gauge* g) : g_(g) {}
  prometheus::Gauge* g_ = nullptr;
};

class Histogram {
 public:
  Histogram() = default;
  void Observe(double value) const;

 private:
  friend class Metrics;
  explicit Histogram(prometheus::Histogram* h) : h_(h) {}
  prometheus::Histogram* h_ = nullptr;
};

// Buckets for latencies in seconds (0.5 ms .. 30 s).
std::vector<double> LatencyBuckets();

// One node's metrics. Thread-safe.
class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The series `name`{labels}: made on first use, the same one after.
  // Names follow Prometheus conventions (kontor_..._total for counters,
  // base units: seconds, bytes). A name used with another type, or an
  // invalid name or label, is a programming error (aborts).
  Counter GetCounter(const std::string& name, const std::string& help,
                     const MetricLabels& labels = {});
  Gauge GetGauge(const std::string& name, const std::string& help,
                 const MetricLabels& labels = {});
  Histogram GetHistogram(const std::string& name, const std::string& help,
                         const std::vector<double>& buckets,
                         const MetricLabels& labels = {});

  // `refresh` runs before every exposition: for gauges whose value lives
  // elsewhere (queue depths read from the store, certificate expiry).
  void OnCollect(std::function<void()> refresh);

  // The text exposition format (version 0.0.4). The refreshers run first,
  // at most once every `refresh_interval` (a scrape loop cannot make the
  // node read its store any faster).
  std::string TextExposition();
  void set_refresh_interval(absl::Duration d) { refresh_interval_ = d; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  absl::Mutex mu_;
  std::vector<std::function<void()>> refreshers_ ABSL_GUARDED_BY(mu_);
  absl::Mutex refresh_mu_;  // one refresh at a time
  absl::Time last_refresh_ ABSL_GUARDED_BY(refresh_mu_) = absl::InfinitePast();
  absl::Duration refresh_interval_ = absl::Seconds(5);
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_METRICS_METRICS_H_
