// The node config (protobuf text format) as the operator writes it:
// ParseConfig (daemon/config/config.h) parses, fills in defaults, resolves
// paths and validates.
//
// Input: config text. Invariant: a config that is read, printed in text
// format and read again is the same config (validation accepts what it
// produced, and defaults and path resolution are idempotent).
#include <cstdint>
#include <string>

#include "daemon/config/config.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kontor::fuzz::Require;
  static const std::string base = kontor::fuzz::ScratchDir("config");
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = kontor::ParseConfig(text, base);
  if (!config.ok()) {
    Require(!config.status().message().empty(), "an error without a message");
    return 0;
  }
  std::string printed;
  Require(google::protobuf::TextFormat::PrintToString(*config, &printed),
          "a config does not print");
  auto again = kontor::ParseConfig(printed, base);
  Require(again.ok(), "a config read and printed does not read again");
  Require(google::protobuf::util::MessageDifferencer::Equals(*config, *again),
          "reading a config twice changes it");
  return 0;
}
