#include "daemon/common/log.h"

#include <atomic>
#include <cstdio>

#include "daemon/common/clock.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace {
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kSecurity:
      return "SECURITY";
  }
  return "?";
}
}  // namespace

void SetMinLogLevel(LogLevel level) {
  g_min_level.store(static_cast<int>(level));
}

LogLine::LogLine(LogLevel level, const char* component)
    : enabled_(static_cast<int>(level) >= g_min_level.load()), level_(level) {
  if (enabled_) {
    stream_ << FormatRfc3339Ms(Clock::Real()->NowUnixMs()) << ' '
            << LevelName(level) << ' ' << component << ": ";
  }
}

LogLine::~LogLine() {
  if (!enabled_) return;
  // Whatever a caller streamed in (values from peers included), the line
  // stays one line of printable ASCII, bounded: nobody can start a forged
  // line or flood the log through a value.
  std::string line = PrintableLine(stream_.str(), kMaxLogLineBytes);
  line.push_back('\n');
  // One write per line so that concurrent lines do not interleave.
  fwrite(line.data(), 1, line.size(), stderr);
  fflush(stderr);
}

}  // namespace kontor
