#ifndef KONTOR_DAEMON_COMMON_LOG_H_
#define KONTOR_DAEMON_COMMON_LOG_H_

#include <sstream>
#include <string>

// Structured one-line logs on stderr:
//   2026-11-22T06:21:51.123Z INFO transport: refused peer reason="..."
// Message content is never logged; ids, node ids and reasons are.

namespace kontor {

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
