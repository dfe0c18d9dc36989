#include "daemon/common/text.h"

#include "absl/strings/str_cat.h"

namespace kontor {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendHexByte(unsigned char c, std::string* out) {
  *out += "\\x";
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

void AppendCut(absl::string_view text, size_t max, std::string* out) {
  if (text.size() > max) {
    absl::StrAppend(out, "...(", text.size() - max, " more bytes)");
  }
}

// The length of the UTF-8 sequence at text[i] and its code point, or 0 if
// it is not one (truncated, overlong, surrogate, beyond U+10FFFF).
size_t Utf8At(absl::string_view text, size_t i, uint32_t* cp) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  size_t len;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

// What a terminal acts on instead of showing.
bool IsTerminalControl(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

std::string Escaped(absl::string_view text, size_t max, bool quotes) {
  std::string out;
  const absl::string_view kept = text.substr(0, max);
  out.reserve(kept.size() + 16);
  for (unsigned char c : kept) {
    if (quotes && (c == '"' || c == '\\')) {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      AppendHexByte(c, &out);
    }
  }
  AppendCut(text, max, &out);
  return out;
}

}  // namespace

std::string Printable(absl::string_view text, size_t max) {
  return Escaped(text, max, /*quotes=*/true);
}

std::string PrintableLine(absl::string_view text, size_t max) {
  return Escaped(text, max, /*quotes=*/false);
}

std::string TerminalSafe(absl::string_view text, size_t max, bool multiline) {
  std::string out;
  const absl::string_view kept = text.substr(0, max);
  out.reserve(kept.size() + 16);
  for (size_t i = 0; i < kept.size();) {
    uint32_t cp = 0;
    const size_t len = Utf8At(kept, i, &cp);
    if (len == 0) {
      AppendHexByte(static_cast<unsigned char>(kept[i]), &out);
      ++i;
      continue;
    }
    if (!IsTerminalControl(cp)) {
      out.append(kept.data() + i, len);
    } else if (cp == '\n') {
      out += multiline ? "\n" : "\\n";
    } else if (cp == '\t') {
      out += multiline ? "\t" : "\\t";
    } else if (cp < 0x80) {
      AppendHexByte(static_cast<unsigned char>(cp), &out);
    } else {
      char buf[16];
      snprintf(buf, sizeof buf, "\\u{%x}", static_cast<unsigned>(cp));
      out += buf;
    }
    i += len;
  }
  AppendCut(text, max, &out);
  return out;
}

bool IsUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = Utf8At(text, i, &cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string SafeFileName(const std::string& name, uint32_t n) {
  const size_t slash = name.find_last_of("/\\");
  const absl::string_view base = absl::string_view(name).substr(
      slash == std::string::npos ? 0 : slash + 1);
  // Whatever a terminal or a file manager would act on or could be misread
  // by (controls, bidi overrides that reorder "exe.pdf", bytes that are not
  // UTF-8) is left out.
  std::string out;
  for (size_t i = 0; i < base.size();) {
    uint32_t cp = 0;
    const size_t len = Utf8At(base, i, &cp);
    if (len == 0 || IsTerminalControl(cp)) {
      i += len == 0 ? 1 : len;
      continue;
    }
    out.append(base.data() + i, len);
    i += len;
  }
  if (out.empty() || out[0] == '.' || out.size() > 200) {
    return absl::StrCat("attachment-", n);
  }
  return out;
}

}  // namespace kontor
