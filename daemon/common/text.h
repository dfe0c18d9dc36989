#ifndef KONTOR_DAEMON_COMMON_TEXT_H_
#define KONTOR_DAEMON_COMMON_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

// Text from outside (peers, local callers, files) on its way to people: a log
// line, an error, a terminal, a file name. Shared by the daemon and the CLI.

namespace kontor {

// For a value from outside on its way into a log line, an error or a signed
// statement: printable ASCII is kept, every other byte is shown escaped
// ("\n", "\t", "\r", "\x1b", "\xc3"), a double quote and a backslash are
// escaped too (so that a value cannot fake a key="value" of its own), and
// at most `max` bytes of `text` are kept, then "...(N more bytes)". The
// result is one line of printable ASCII of at most 4 * max + 24 bytes.
std::string Printable(absl::string_view text, size_t max = 80);
// The same for a whole line or message made of such values and Kontor's own
// words: quotes and backslashes kept as they are.
std::string PrintableLine(absl::string_view text, size_t max);

// For a terminal: valid UTF-8 text is kept as it is (names, Cyrillic,
// Estonian), except what a terminal would act on rather than show: C0 and
// C1 control characters, DEL, and the Unicode bidirectional overrides and
// isolates (U+202A..U+202E, U+2066..U+2069) are shown as "\x1b",
// "\u{202e}"; bytes that are not UTF-8 as "\xff". With `multiline`, newline
// and tab are kept (a message body); else they are shown as "\n", "\t" (a
// one-line field). At most `max` bytes of `text` are kept, then
// "...(N more bytes)".
std::string TerminalSafe(absl::string_view text, size_t max = SIZE_MAX,
                         bool multiline = false);

// Whether `text` is valid UTF-8 (no overlong forms, no surrogates).
bool IsUtf8(absl::string_view text);

// A file name safe to create in a directory chosen by the user: the last
// path component, without control characters; "attachment-<n>" if nothing
// usable is left (empty, ".", "..", hidden, longer than 200 bytes).
std::string SafeFileName(const std::string& name, uint32_t n);

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_TEXT_H_
