#include "client/json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "daemon/common/ids.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace kontor {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::Value;

bool IsUtf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = s[i];
    const size_t len = c < 0x80             ? 1
                       : (c & 0xE0) == 0xC0 ? 2
                       : (c & 0xF0) == 0xE0 ? 3
                       : (c & 0xF8) == 0xF0 ? 4
                                            : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// Bytes fields that carry text for people (the message body).
bool IsTextField(const FieldDescriptor* f) {
  return f->type() == FieldDescriptor::TYPE_BYTES && f->name() == "body";
}

Value Scalar(const Message& m, const Reflection* r, const FieldDescriptor* f,
             int index) {
  Value v;
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      v.set_number_value(rep ? r->GetRepeatedInt32(m, f, index)
                             : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      v.set_number_value(static_cast<double>(
          rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f)));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      v.set_number_value(rep ? r->GetRepeatedUInt32(m, f, index)
                             : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      v.set_number_value(static_cast<double>(
          rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      v.set_number_value(rep ? r->GetRepeatedDouble(m, f, index)
                             : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      v.set_number_value(rep ? r->GetRepeatedFloat(m, f, index)
                             : r->GetFloat(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      v.set_bool_value(rep ? r->GetRepeatedBool(m, f, index)
                           : r->GetBool(m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      // Lowercase, as the CLI takes them (--priority flash).
      v.set_string_value(absl::AsciiStrToLower(
          (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name()));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string s =
          rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      if (f->type() == FieldDescriptor::TYPE_BYTES &&
          !(IsTextField(f) && IsUtf8(s))) {
        v.set_string_value(absl::Base64Escape(s));
      } else {
        v.set_string_value(s);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      v = ToJsonValue(rep ? r->GetRepeatedMessage(m, f, index)
                          : r->GetMessage(m, f));
      break;
  }
  return v;
}

std::string KeyFor(const Message& m, const Reflection* r,
                   const FieldDescriptor* f) {
  // A text field that is not valid UTF-8 is given in base64 under
  // "<name>_base64"; other bytes are always base64 under their own name.
  if (IsTextField(f) && !f->is_repeated() && !IsUtf8(r->GetString(m, f))) {
    return f->name() + "_base64";
  }
  return f->name();
}

}  // namespace

Value ToJsonValue(const Message& m) {
  Value out;
  auto* fields = out.mutable_struct_value()->mutable_fields();
  const auto* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      Value list;
      list.mutable_list_value();
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        *list.mutable_list_value()->add_values() = Scalar(m, r, f, k);
      }
      (*fields)[f->name()] = list;
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !r->HasField(m, f)) {
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 &&
        absl::EndsWith(f->name(), "_unix_ms")) {
      int64_t ms = r->GetInt64(m, f);
      if (ms != 0) {
        Value t;
        t.set_string_value(FormatRfc3339Ms(ms));
        (*fields)[f->name().substr(0, f->name().size() - 8)] = t;
      }
      continue;
    }
    (*fields)[KeyFor(m, r, f)] = Scalar(m, r, f, 0);
  }
  return out;
}

std::string ToJson(const Value& v, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(v, &out, options);
  return out;
}

}  // namespace kontor
