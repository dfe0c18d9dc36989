#ifndef KONTOR_CLIENT_JSON_H_
#define KONTOR_CLIENT_JSON_H_

#include <string>

#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace kontor {

// A protobuf message as the CLI's JSON: field names as in the .proto;
// "*_unix_ms" fields become RFC 3339 UTC strings named without the suffix
// (omitted when 0); enums by lowercase name; bytes in base64, except the
// message body, which is text when valid UTF-8 (else base64 under
// "body_base64"); 64-bit integers as numbers.
google::protobuf::Value ToJsonValue(const google::protobuf::Message& m);
std::string ToJson(const google::protobuf::Value& v, bool pretty);

}  // namespace kontor

#endif  // KONTOR_CLIENT_JSON_H_
