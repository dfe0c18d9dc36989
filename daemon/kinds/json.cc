// ParsePayloadJson and PayloadJson. The text is first read by a small strict
// JSON reader that knows line numbers, and checked against the Payload
// descriptor, so that errors name the field as the template does; protobuf's
// JSON parser then does the actual conversion.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/util/json_util.h"

namespace kontor::kinds {
namespace {

namespace v1 = ::kontor::v1;
using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;

constexpr int kMaxDepth = 64;

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = kNull;
  int line = 1;
  std::string text;                                   // kString (decoded)
  std::vector<std::pair<std::string, Json>> members;  // kObject, in order
  std::vector<Json> items;                            // kArray
};

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
    return;
  }
  const int n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  static constexpr uint32_t kLead[] = {0, 0, 0xc0, 0xe0, 0xf0};
  out->push_back(static_cast<char>(kLead[n] | (cp >> (6 * (n - 1)))));
  for (int k = n - 2; k >= 0; --k) {
    out->push_back(static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3f)));
  }
}

// Strict RFC 8259 reader; on failure error() says why and line() where.
class Reader {
 public:
  explicit Reader(absl::string_view s) : s_(s) {}

  bool Document(Json* out) {
    if (!Value(out, 0)) return false;
    Space();
    return pos_ == s_.size() || Fail("unexpected text after the end");
  }
  int line() const { return line_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(absl::string_view why) {
    error_ = At('/') ? "a // comment must be on a line of its own"
                     : std::string(why);
    return false;
  }
  bool At(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void Space() {
    while (pos_ < s_.size() && absl::ascii_isspace(s_[pos_])) {
      if (s_[pos_++] == '\n') ++line_;
    }
  }
  bool Literal(absl::string_view word) {
    if (!absl::StartsWith(s_.substr(pos_), word)) return false;
    pos_ += word.size();
    return true;
  }

  bool Value(Json* v, int depth) {
    if (depth > kMaxDepth) return Fail("nested too deeply");
    Space();
    if (pos_ >= s_.size()) return Fail("unexpected end of the text");
    v->line = line_;
    const char c = s_[pos_];
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') {
      v->type = Json::kString;
      return String(&v->text);
    }
    if (Literal("true") || Literal("false")) {
      v->type = Json::kBool;
      return true;
    }
    if (Literal("null")) return true;
    if (c == '-' || absl::ascii_isdigit(c)) return Number(v);
    return Fail(c == '\'' ? "strings and names need double quotes"
                          : "expected a value");
  }

  // After a value: ',' (*done = false) or `close` (*done = true).
  bool Next(char close, bool* done) {
    const int end_line = line_;  // a missing comma is reported here
    Space();
    if (At(',') || At(close)) {
      *done = s_[pos_++] == close;
      return true;
    }
    line_ = end_line;
    return Fail(absl::StrCat("expected a comma or ", std::string(1, close)));
  }

  bool Object(Json* v, int depth) {
    v->type = Json::kObject;
    ++pos_;
    Space();
    if (At('}')) {
      ++pos_;
      return true;
    }
    for (bool done = false; !done;) {
      Space();
      if (At('}')) return Fail("no comma after the last field");
      if (!At('"')) return Fail("expected a field name in double quotes");
      std::string key;
      if (!String(&key)) return false;
      Space();
      if (!At(':')) return Fail("expected a colon after the field name");
      ++pos_;
      Json value;
      if (!Value(&value, depth + 1)) return false;
      v->members.emplace_back(std::move(key), std::move(value));
      if (!Next('}', &done)) return false;
    }
    return true;
  }

  bool Array(Json* v, int depth) {
    v->type = Json::kArray;
    ++pos_;
    Space();
    if (At(']')) {
      ++pos_;
      return true;
    }
    for (bool done = false; !done;) {
      Space();
      if (At(']')) return Fail("no comma after the last item");
      v->items.emplace_back();
      if (!Value(&v->items.back(), depth + 1)) return false;
      if (!Next(']', &done)) return false;
    }
    return true;
  }

  bool Hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return false;
    *out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      if (!absl::ascii_isxdigit(c)) return false;
      *out = *out * 16 + (absl::ascii_isdigit(c)
                              ? c - '0'
                              : absl::ascii_tolower(c) - 'a' + 10);
    }
    return true;
  }

  bool String(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return IsValidUtf8(*out) || Fail("text that is not UTF-8");
      if (static_cast<unsigned char>(c) < 0x20) {
        return Fail(c == '\n' ? "a line break inside a string (write \\n)"
                              : "a control character inside a string");
      }
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      static constexpr absl::string_view kFrom = "\"\\/bfnrt";
      static constexpr absl::string_view kTo = "\"\\/\b\f\n\r\t";
      if (size_t i = kFrom.find(e); i != absl::string_view::npos) {
        out->push_back(kTo[i]);
        continue;
      }
      uint32_t cp = 0, low = 0;
      if (e != 'u' || !Hex4(&cp)) return Fail("an invalid \\ escape");
      if (cp >= 0xd800 && cp < 0xdc00) {  // surrogate pair
        if (!Literal("\\u") || !Hex4(&low) || low < 0xdc00 || low > 0xdfff) {
          return Fail("an invalid \\u escape");
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      } else if (cp >= 0xdc00 && cp < 0xe000) {
        return Fail("an invalid \\u escape");
      }
      AppendUtf8(cp, out);
    }
    return Fail("a string without its closing quote");
  }

  bool Number(Json* v) {
    v->type = Json::kNumber;
    auto digits = [&] {
      const size_t start = pos_;
      while (pos_ < s_.size() && absl::ascii_isdigit(s_[pos_])) ++pos_;
      return pos_ > start;
    };
    if (At('-')) ++pos_;
    if (At('0')) {
      ++pos_;
    } else if (!digits()) {
      return Fail("an invalid number");
    }
    if (At('.')) {
      ++pos_;
      if (!digits()) return Fail("an invalid number");
    }
    if (At('e') || At('E')) {
      ++pos_;
      if (At('+') || At('-')) ++pos_;
      if (!digits()) return Fail("an invalid number");
    }
    return true;
  }

  absl::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
  std::string error_;
};

const FieldDescriptor* FindField(const Descriptor* d, absl::string_view key) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->name() == key || f->json_name() == key) return f;
  }
  return nullptr;
}

// Edit distance, for "did you mean".
size_t Distance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Where(int line) { return absl::StrCat(" (line ", line, ")"); }

absl::Status Wrong(const std::string& path, absl::string_view expected,
                   int line) {
  return absl::InvalidArgumentError(
      absl::StrCat("field \"", path, "\": expected ", expected, Where(line)));
}

absl::Status CheckObject(const Json& v, const Descriptor* d,
                         const std::string& path);

// One value (an item, for repeated fields) of field `f`.
absl::Status CheckValue(const Json& v, const FieldDescriptor* f,
                        const std::string& path) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (v.type != Json::kObject)
        return Wrong(path, "an object { ... }", v.line);
      return CheckObject(v, f->message_type(), path);
    case FieldDescriptor::CPPTYPE_STRING:
      if (v.type != Json::kString) {
        return Wrong(path, "a string in double quotes", v.line);
      }
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        std::string ignored;
        if (!absl::Base64Unescape(v.text, &ignored) &&
            !absl::WebSafeBase64Unescape(v.text, &ignored)) {
          return Wrong(path, "base64 text", v.line);
        }
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL:
      if (v.type != Json::kBool) return Wrong(path, "true or false", v.line);
      return absl::OkStatus();
    default:  // numbers and enums: protobuf accepts numbers and strings
      if (v.type != Json::kNumber && v.type != Json::kString) {
        return Wrong(path, "a number", v.line);
      }
      return absl::OkStatus();
  }
}

absl::Status CheckObject(const Json& v, const Descriptor* d,
                         const std::string& path) {
  const std::string in = path.empty() ? "" : " in \"" + path + "\"";
  std::vector<const FieldDescriptor*> seen;
  const FieldDescriptor* section = nullptr;  // the content oneof
  for (const auto& [key, value] : v.members) {
    const FieldDescriptor* f = FindField(d, key);
    if (f == nullptr) {
      std::string hint;
      for (int i = 0; i < d->field_count(); ++i) {
        if (Distance(key, d->field(i)->name()) <= 2) {
          hint = absl::StrCat("; did you mean \"", d->field(i)->name(), "\"?");
          break;
        }
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", Printable(key, 60), "\"", in,
                       " (line ", value.line, hint, ")"));
    }
    const std::string at = path.empty() ? f->name() : path + "." + f->name();
    if (d == v1::Payload::descriptor() && f->name() == "attachments") {
      return absl::InvalidArgumentError(
          "attachments: not accepted in a payload file (use --attach FILE)");
    }
    if (d == v1::Payload::descriptor() && f->name() == "padding") {
      return absl::InvalidArgumentError(
          "padding: not accepted in a payload file (the node adds it)");
    }
    if (std::find(seen.begin(), seen.end(), f) != seen.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", at, "\" is given twice", Where(value.line)));
    }
    seen.push_back(f);
    if (value.type == Json::kNull) continue;  // protobuf: the default
    if (f->containing_oneof() != nullptr) {
      if (section != nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "only one content section is allowed: found \"", section->name(),
            "\" and \"", f->name(), "\"", Where(value.line)));
      }
      section = f;
    }
    if (!f->is_repeated()) {
      if (absl::Status s = CheckValue(value, f, at); !s.ok()) return s;
      continue;
    }
    if (value.type != Json::kArray)
      return Wrong(at, "a list [ ... ]", value.line);
    for (size_t i = 0; i < value.items.size(); ++i) {
      absl::Status s =
          CheckValue(value.items[i], f, absl::StrCat(at, "[", i, "]"));
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParsePayloadJson(absl::string_view text, v1::Payload* out) {
  if (absl::StartsWith(text, "\xef\xbb\xbf")) text.remove_prefix(3);  // BOM
  // Comment lines become empty lines, so that line numbers stay right.
  std::string json;
  json.reserve(text.size());
  while (!text.empty()) {
    size_t end = text.find('\n');
    end = end == absl::string_view::npos ? text.size() : end + 1;
    const absl::string_view line = text.substr(0, end);
    text.remove_prefix(end);
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "//")) {
      if (line.back() == '\n') json.push_back('\n');
    } else {
      json.append(line.data(), line.size());
    }
  }
  Reader reader(json);
  Json doc;
  if (!reader.Document(&doc)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not valid JSON near line ", reader.line(), ": ", reader.error()));
  }
  if (doc.type != Json::kObject) {
    return absl::InvalidArgumentError(
        "expected a JSON object { ... } with the payload fields (see kontor "
        "template KIND)");
  }
  if (absl::Status s = CheckObject(doc, v1::Payload::descriptor(), "");
      !s.ok()) {
    return s;
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  out->Clear();
  if (!google::protobuf::util::JsonStringToMessage(json, out, options).ok()) {
    // Not expected after the checks above; say nothing protobuf-internal.
    return absl::InvalidArgumentError(
        "not a valid payload: compare it with kontor template KIND");
  }
  return absl::OkStatus();
}

std::string PayloadJson(const v1::Payload& p) {
  v1::Payload copy = p;
  for (v1::Attachment& a : *copy.mutable_attachments()) a.clear_key();
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(copy, &out, options).ok()) {
    return "{}\n";
  }
  return out;
}

}  // namespace kontor::kinds
