// Text from outside on its way to people (common/text.h) and log lines
// (common/log.h): what an attacker puts in a value stays a value.

#include "daemon/common/text.h"

#include <string>

#include "daemon/common/log.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

const std::string kEsc = "\x1b";

TEST(PrintableTest, KeepsPrintableAsciiAndEscapesTheRest) {
  EXPECT_EQ(Printable("fi refused: ok"), "fi refused: ok");
  EXPECT_EQ(Printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(Printable(kEsc + "[2K"), "\\x1b[2K");
  EXPECT_EQ(Printable("\x7f\xc3\xa4"), "\\x7f\\xc3\\xa4");
  EXPECT_EQ(Printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(PrintableTest, AValueCannotFakeAFieldOfItsOwn) {
  EXPECT_EQ(Printable("fi\" peer=\"lv"), "fi\\\" peer=\\\"lv");
  EXPECT_EQ(Printable("a\\nb"), "a\\\\nb");  // a backslash, then n
  EXPECT_EQ(PrintableLine("reason=\"x\"\n", 80), "reason=\"x\"\\n");
}

TEST(PrintableTest, BoundsWhatItKeeps) {
  const std::string huge(1 << 20, 'A');
  const std::string out = Printable(huge, 100);
  EXPECT_EQ(out, std::string(100, 'A') + "...(1048476 more bytes)");
  // Escapes count against the output, not the input bound.
  EXPECT_LE(Printable(std::string(1000, '\x01'), 80).size(), 4u * 80 + 24);
}

TEST(TerminalSafeTest, KeepsUtf8TextAsItIs) {
  EXPECT_EQ(TerminalSafe("Jüri Õunapuu, Łódź, Київ"),
            "Jüri Õunapuu, Łódź, Київ");
}

TEST(TerminalSafeTest, ShowsWhatATerminalWouldActOn) {
  // Cursor movement, line erase, an OSC 52 clipboard write, a bell.
  const std::string attack =
      "x" + kEsc + "[1A" + kEsc + "[2KFrom: fi" + kEsc + "]52;c;ZWNobw==\x07";
  EXPECT_EQ(TerminalSafe(attack),
            "x\\x1b[1A\\x1b[2KFrom: fi\\x1b]52;c;ZWNobw==\\x07");
  // C1 controls (CSI as U+009B), bidi overrides and isolates.
  EXPECT_EQ(TerminalSafe("a\xc2\x9b"
                         "2Jb"),
            "a\\u{9b}2Jb");
  EXPECT_EQ(TerminalSafe("abc\xe2\x80\xae"
                         "fdp.exe"),
            "abc\\u{202e}fdp.exe");
  EXPECT_EQ(TerminalSafe("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");
  // Bytes that are not UTF-8, overlong forms, surrogates.
  EXPECT_EQ(TerminalSafe("a\xff"
                         "b"),
            "a\\xffb");
  EXPECT_EQ(TerminalSafe("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(TerminalSafe("\xe2\x82"), "\\xe2\\x82");  // cut short
}

TEST(TerminalSafeTest, MultilineKeepsNewlinesAndTabsOnly) {
  EXPECT_EQ(TerminalSafe("a\nb\tc\rd", SIZE_MAX, true), "a\nb\tc\\x0dd");
  EXPECT_EQ(TerminalSafe("a\nb\tc", SIZE_MAX, false), "a\\nb\\tc");
}

TEST(TerminalSafeTest, Bounds) {
  EXPECT_EQ(TerminalSafe("abcdef", 3), "abc...(3 more bytes)");
}

TEST(Utf8Test, Validates) {
  EXPECT_TRUE(IsUtf8("Jüri"));
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));
}

TEST(SafeFileNameTest, LastComponentWithoutControls) {
  EXPECT_EQ(SafeFileName("../../etc/passwd", 1), "passwd");
  EXPECT_EQ(SafeFileName("a\x1b[2Kb.pdf", 1), "a[2Kb.pdf");
  EXPECT_EQ(SafeFileName("invoice\xe2\x80\xae"
                         "fdp.exe",
                         1),
            "invoicefdp.exe");
  EXPECT_EQ(SafeFileName("r\xc3\xa4port.pdf", 1), "r\xc3\xa4port.pdf");
  EXPECT_EQ(SafeFileName("x\xff.pdf", 1), "x.pdf");
  EXPECT_EQ(SafeFileName(".hidden", 3), "attachment-3");
  EXPECT_EQ(SafeFileName("", 2), "attachment-2");
}

// Every log line is one line of printable ASCII, bounded, whatever a value
// holds: a peer cannot start a line of its own.
TEST(LogLineTest, AValueCannotForgeOrFloodLines) {
  ::testing::internal::CaptureStderr();
  const std::string forged =
      "lv\n2026-12-02T00:00:00.000Z SECURITY inbox: forged" + kEsc + "[2K";
  KLOG(Warning, "inbox") << "refused envelope to " << forged;
  KLOG(Info, "inbox") << "huge " << std::string(1 << 20, 'A');
  const std::string out = ::testing::internal::GetCapturedStderr();
  size_t lines = 0, start = 0;
  for (size_t nl = out.find('\n'); nl != std::string::npos;
       start = nl + 1, nl = out.find('\n', start)) {
    const std::string line = out.substr(start, nl - start);
    ++lines;
    EXPECT_LE(line.size(), 4 * kMaxLogLineBytes + 24);
    for (char c : line) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
    }
  }
  EXPECT_EQ(lines, 2u) << out.substr(0, 300);
  EXPECT_NE(out.find("to lv\\n2026-12-02T00:00:00.000Z SECURITY inbox: "
                     "forged\\x1b[2K"),
            std::string::npos)
      << out.substr(0, 300);
  EXPECT_NE(out.find("more bytes)"), std::string::npos);
}

}  // namespace
}  // namespace kontor
