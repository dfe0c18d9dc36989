#include "daemon/outbox/backoff.h"

#include <algorithm>

namespace kontor {

int64_t BackoffDelayMs(uint32_t failures, int64_t initial_ms, int64_t max_ms,
                       double jitter01) {
  if (failures == 0) return 0;
  int64_t delay = initial_ms;
  for (uint32_t i = 1; i < failures && delay < max_ms; ++i) delay *= 2;
  delay = std::min(delay, max_ms);
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  return delay / 2 + static_cast<int64_t>((delay - delay / 2) * jitter01);
}

}  // namespace kontor
