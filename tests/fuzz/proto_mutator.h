// A small structure-aware mutator for protobuf inputs (no
// libprotobuf-mutator in Debian 12): the input is a serialized message, and
// each mutation changes one field anywhere in it through reflection, so
// mutated inputs stay well-formed and the fuzzer explores what the fields
// mean rather than the wire format. Bytes fields that hold serialized
// messages (Envelope.header, Receipt.body, ...) are mutated as those
// messages. String and bytes contents go through LLVMFuzzerMutate, which
// brings in libFuzzer's dictionary and the comparison operands it saw.
#ifndef KONTOR_TESTS_FUZZ_PROTO_MUTATOR_H_
#define KONTOR_TESTS_FUZZ_PROTO_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "google/protobuf/message.h"

namespace kontor::fuzz {

using Rng = std::minstd_rand;

// Words a mutation may put into a string or bytes field (node ids, kinds,
// the suite id, ...). Not thread-safe: call from LLVMFuzzerInitialize.
void AddWord(const std::string& word);

// Changes one thing in `m`.
void MutateMessage(google::protobuf::Message* m, Rng& rng);

// LLVMFuzzerCustomMutator for inputs of type `scratch` (cleared and reused).
// An input that does not parse is mutated from an empty message.
size_t MutateSerialized(google::protobuf::Message* scratch, uint8_t* data,
                        size_t size, size_t max_size, unsigned seed);

// LLVMFuzzerCustomCrossOver: fields of `a` replaced by, or repeated fields
// extended with, those of `b`.
size_t CrossOverSerialized(google::protobuf::Message* a,
                           google::protobuf::Message* b, const uint8_t* data1,
                           size_t size1, const uint8_t* data2, size_t size2,
                           uint8_t* out, size_t max_out_size, unsigned seed);

// Parses a fuzz input; with KONTOR_FUZZ_PRINT set in the environment, prints
// it in text format to stderr (to read a corpus file or a crash input).
bool ParseInput(const uint8_t* data, size_t size,
                google::protobuf::Message* out);

}  // namespace kontor::fuzz

// Defines libFuzzer's custom mutator and cross-over for inputs of `Type`.
#define KONTOR_FUZZ_PROTO_INPUT(Type)                                         \
  extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size,       \
                                            size_t max_size, unsigned seed) { \
    static Type* scratch = new Type();                                        \
    return ::kontor::fuzz::MutateSerialized(scratch, data, size, max_size,    \
                                            seed);                            \
  }                                                                           \
  extern "C" size_t LLVMFuzzerCustomCrossOver(                                \
      const uint8_t* data1, size_t size1, const uint8_t* data2, size_t size2, \
      uint8_t* out, size_t max_out_size, unsigned seed) {                     \
    static Type* a = new Type();                                              \
    static Type* b = new Type();                                              \
    return ::kontor::fuzz::CrossOverSerialized(                               \
        a, b, data1, size1, data2, size2, out, max_out_size, seed);           \
  }

#endif  // KONTOR_TESTS_FUZZ_PROTO_MUTATOR_H_
