#include "daemon/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "absl/time/clock.h"

namespace kontor {

void Counter::Increment(double by) const {
  if (c_ != nullptr) c_->Increment(by);
}
double Counter::Value() const { return c_ != nullptr ? c_->Value() : 0; }

void Gauge::Set(double value) const {
  if (g_ != nullptr) g_->Set(value);
}
void Gauge::Increment(double by) const {
  if (g_ != nullptr) g_->Increment(by);
}
void Gauge::Decrement(double by) const {
  if (g_ != nullptr) g_->Decrement(by);
}
double Gauge::Value() const { return g_ != nullptr ? g_->Value() : 0; }

void Histogram::Observe(double value) const {
  if (h_ != nullptr) h_->Observe(value);
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
          0.2,    0.5,   1,     2,     5,    10,   30};
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>(
          prometheus::Registry::InsertBehavior::Merge)) {}

Metrics::~Metrics() = default;

Counter Metrics::GetCounter(const std::string& name, const std::string& help,
                            const MetricLabels& labels) {
  auto& family =
      prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  return Counter(&family.Add(labels));
}

Gauge Metrics::GetGauge(const std::string& name, const std::string& help,
                        const MetricLabels& labels) {
  auto& family =
      prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  return Gauge(&family.Add(labels));
}

Histogram Metrics::GetHistogram(const std::string& name,
                                const std::string& help,
                                const std::vector<double>& buckets,
                                const MetricLabels& labels) {
  auto& family =
      prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
  return Histogram(&family.Add(labels, buckets));
}

void Metrics::OnCollect(std::function<void()> refresh) {
  absl::MutexLock l(&mu_);
  refreshers_.push_back(std::move(refresh));
}

std::string Metrics::TextExposition() {
  {
    absl::MutexLock refresh(&refresh_mu_);
    const absl::Time now = absl::Now();
    if (now - last_refresh_ >= refresh_interval_) {
      last_refresh_ = now;
      std::vector<std::function<void()>> refreshers;
      {
        absl::MutexLock l(&mu_);
        refreshers = refreshers_;
      }
      for (const auto& r : refreshers) r();
    }
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace kontor
