#ifndef KONTOR_DAEMON_COMMON_LOG_H_
#define KONTOR_DAEMON_COMMON_LOG_H_

#include <sstream>
#include <string>

// Structured one-line logs on stderr:
//   2026-11-22T06:21:51.123Z INFO transport: refused peer reason="..."
// Message content is never logged; ids, node ids and reasons are.
//
// Values from outside (peers, local callers, files) should be passed through
// Printable(value, max) (common/ids.h) where they are streamed in, so that
// each is bounded on its own. Every line is also made safe as a whole when it
// is written: control characters and other non-ASCII bytes are escaped
// (Printable), so a value can never start a line of its own, and a line is
// cut after kMaxLogLineBytes.

namespace kontor {

inline constexpr size_t kMaxLogLineBytes = 4096;

enum class LogLevel { kDebug, kInfo, kWarning, kError, kSecurity };

void SetMinLogLevel(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, const char* component);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  template <typename T>
  LogLine& operator<<(const T& v) {
    if (enabled_) stream_ << v;
    return *this;
  }

 private:
  bool enabled_;
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace kontor

#define KLOG(level, component) \
  ::kontor::LogLine(::kontor::LogLevel::k##level, component)

#endif  // KONTOR_DAEMON_COMMON_LOG_H_
