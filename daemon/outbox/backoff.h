#ifndef KONTOR_DAEMON_OUTBOX_BACKOFF_H_
#define KONTOR_DAEMON_OUTBOX_BACKOFF_H_

#include <cstdint>

namespace kontor {

// Delay before the next attempt after `failures` consecutive failures
// (failures >= 1): exponential from initial_ms, capped at max_ms, with
// "equal jitter": half fixed, half scaled by jitter01 in [0, 1).
int64_t BackoffDelayMs(uint32_t failures, int64_t initial_ms, int64_t max_ms,
                       double jitter01);

}  // namespace kontor

#endif  // KONTOR_DAEMON_OUTBOX_BACKOFF_H_
