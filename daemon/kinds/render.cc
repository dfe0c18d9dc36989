// RenderText: markings in words, then the content section field by field,
// by reflection. Everything shown comes from another node: EscapeText.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/text_format.h"

namespace kontor::kinds {
namespace {

namespace v1 = ::kontor::v1;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// Length of the UTF-8 sequence at s[i] and its code point; 0 if invalid.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0xc2 || b > 0xf4) return 0;
  const size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  *cp = b & (0x7f >> n);
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (c & 0x3f);
  }
  if (*cp < kMin[n] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp < 0xe000))
    return 0;
  return n;
}

// C1 controls, and the format characters that reorder or hide text.
bool Hidden(uint32_t cp) {
  return (cp >= 0x80 && cp < 0xa0) || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x061c || cp == 0xfeff;
}

std::string Label(absl::string_view field_name) {
  std::string label(field_name);
  for (char& c : label) c = c == '_' ? ' ' : c;
  if (!label.empty()) label[0] = absl::ascii_toupper(label[0]);
  return label;
}

// "Label: value", or for multi-line text the label and the lines indented.
void Line(int indent, absl::string_view label, absl::string_view value,
          std::string* out) {
  const std::string pad(indent, ' ');
  if (value.find('\n') == absl::string_view::npos) {
    absl::StrAppend(out, pad, label, ": ", EscapeText(value), "\n");
    return;
  }
  absl::StrAppend(out, pad, label, ":\n");
  for (absl::string_view l : absl::StrSplit(value, '\n')) {
    absl::StrAppend(out, pad, "  ", EscapeText(l), "\n");
  }
}

std::string Scalar(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return f->is_repeated() ? r->GetRepeatedString(m, f, index)
                            : r->GetString(m, f);
  }
  std::string text;
  google::protobuf::TextFormat::PrintFieldValueToString(m, f, index, &text);
  return text;
}

void Fields(const Message& m, int indent, std::string* out);

// A list item, indented under its label, with "- " before its first line.
void Item(const Message& m, const FieldDescriptor* f, int i, int indent,
          std::string* out) {
  std::string item;
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    Fields(m.GetReflection()->GetRepeatedMessage(m, f, i), indent + 4, &item);
  } else {
    item = absl::StrCat(std::string(indent + 4, ' '),
                        EscapeText(Scalar(m, f, i)), "\n");
  }
  if (item.empty()) return;
  item[indent + 2] = '-';
  out->append(item);
}

void Fields(const Message& m, int indent, std::string* out) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);  // the set ones, in field-number order
  const std::string pad(indent, ' ');
  for (const FieldDescriptor* f : fields) {
    const std::string label = Label(f->name());
    if (f->is_repeated()) {
      std::string items;
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        Item(m, f, i, indent, &items);
      }
      if (!items.empty()) absl::StrAppend(out, pad, label, ":\n", items);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      std::string sub;
      Fields(r->GetMessage(m, f), indent + 2, &sub);
      if (!sub.empty()) absl::StrAppend(out, pad, label, ":\n", sub);
    } else {
      Line(indent, label, Scalar(m, f, -1), out);
    }
  }
}

// "B (usually reliable)"; unknown codes as they are.
std::string Explained(
    absl::string_view code,
    std::initializer_list<std::pair<const char*, const char*>> meanings) {
  for (const auto& [c, words] : meanings) {
    if (code == c) return absl::StrCat(code, " (", words, ")");
  }
  return EscapeText(code);
}

void Markings(const v1::Markings& m, std::string* out) {
  if (!m.handling().empty()) {
    std::string handling = Explained(
        m.handling(),
        {{"H0", "no restriction"},
         {"H1", "not for use as evidence without the provider's permission"},
         {"H2", "not to be passed on without the provider's permission"},
         {"H3", "conditions apply"}});
    absl::StrAppend(out, "Handling: ", handling);
    if (!m.handling_text().empty()) {
      absl::StrAppend(out, ": ", EscapeText(m.handling_text()));
    }
    out->append("\n");
  }
  std::vector<std::string> eval;
  if (!m.source_reliability().empty()) {
    eval.push_back("Source: " + Explained(m.source_reliability(),
                                          {{"A", "reliable"},
                                           {"B", "usually reliable"},
                                           {"C", "not reliable"},
                                           {"X", "cannot be judged"}}));
  }
  if (!m.information_accuracy().empty()) {
    eval.push_back("Accuracy: " +
                   Explained(m.information_accuracy(),
                             {{"1", "known directly to the source"},
                              {"2", "known indirectly, corroborated"},
                              {"3", "not corroborated"},
                              {"4", "cannot be judged"}}));
  }
  if (!m.tlp().empty()) eval.push_back("TLP: " + EscapeText(m.tlp()));
  if (!eval.empty()) absl::StrAppend(out, absl::StrJoin(eval, "  "), "\n");
  if (!m.purpose().empty()) Line(0, "Purpose", m.purpose(), out);
  if (!m.review_by().empty()) Line(0, "Review by", m.review_by(), out);
}

}  // namespace

std::string EscapeText(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b == '\t' || (b >= 0x20 && b < 0x7f)) {
      out.push_back(text[i++]);
      continue;
    }
    uint32_t cp = 0;
    const size_t n = b < 0x80 ? 0 : DecodeUtf8(text, i, &cp);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", b);
      ++i;
    } else if (Hidden(cp)) {
      absl::StrAppendFormat(&out, "\\u%04x", cp);
      i += n;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t n = static_cast<unsigned char>(text[i]) < 0x80
                         ? 1
                         : DecodeUtf8(text, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string RenderText(const v1::Payload& p) {
  std::string out;
  if (p.has_markings()) Markings(p.markings(), &out);
  const FieldDescriptor* section = p.GetReflection()->GetOneofFieldDescriptor(
      p, v1::Payload::descriptor()->FindOneofByName("content"));
  if (section == nullptr) return out;
  std::string content;
  Fields(p.GetReflection()->GetMessage(p, section), 0, &content);
  if (!out.empty() && !content.empty()) out.append("\n");
  return out + content;
}

}  // namespace kontor::kinds
