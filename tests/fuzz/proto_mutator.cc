#include "tests/fuzz/proto_mutator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"

// libFuzzer's own mutation of a byte buffer (dictionary, CMP operands).
// Weak: the seed generator links this file without libFuzzer.
extern "C" __attribute__((weak)) size_t LLVMFuzzerMutate(uint8_t* data,
                                                         size_t size,
                                                         size_t max_size);

namespace kontor::fuzz {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MessageFactory;
using google::protobuf::Reflection;

constexpr int kMaxDepth = 12;
constexpr int kMaxRepeated = 64;
constexpr size_t kMaxFieldBytes = 16 * 1024;

std::vector<std::string>& Words() {
  static auto* words = new std::vector<std::string>();
  return *words;
}

// Bytes fields that carry a serialized message: mutated as that message.
const Message* NestedType(const FieldDescriptor* f) {
  static const auto* nested = new std::map<std::string, std::string>{
      {"kontor.v1.Envelope.header", "kontor.v1.Header"},
      {"kontor.v1.Receipt.body", "kontor.v1.ReceiptBody"},
      {"kontor.v1.InnerContent.payload", "kontor.v1.Payload"},
      {"kontor.v1.WitnessResponse.receipts", "kontor.v1.Receipt"},
      {"kontor.fuzz.Seal.raw_inner", "kontor.v1.InnerContent"},
      {"kontor.fuzz.ExportInput.Receipt.receipt", "kontor.v1.Receipt"},
  };
  auto it = nested->find(f->full_name());
  if (it == nested->end()) return nullptr;
  const Descriptor* d =
      DescriptorPool::generated_pool()->FindMessageTypeByName(it->second);
  return d == nullptr ? nullptr
                      : MessageFactory::generated_factory()->GetPrototype(d);
}

// Replaces what is not well-formed UTF-8 (as protobuf requires of string
// fields) by '?', so that the input still parses.
std::string FixUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (ok && len >= 3) {
      const unsigned char c1 = s[i + 1];
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) &&
           !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (!ok) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

std::string MutateBytes(const std::string& in, Rng& rng,
                        const std::vector<std::string>& pool) {
  switch (rng() % 10) {
    case 0:
      if (!Words().empty()) return Words()[rng() % Words().size()];
      break;
    case 1:
      if (!pool.empty()) return pool[rng() % pool.size()];
      break;
    case 2:
      return std::string();
    case 3:
      if (!Words().empty()) {
        std::string out = in;
        out.insert(rng() % (out.size() + 1), Words()[rng() % Words().size()]);
        return out;
      }
      break;
    default:
      break;
  }
  const size_t max = std::min(kMaxFieldBytes, in.size() * 2 + 64);
  std::string buf = in;
  buf.resize(std::max(max, in.size()));
  size_t n = in.size();
  if (LLVMFuzzerMutate != nullptr) {
    n = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(&buf[0]), in.size(),
                         buf.size());
  } else if (n > 0) {
    buf[rng() % n] ^= static_cast<char>(1 + rng() % 255);
  } else {
    buf[0] = static_cast<char>(rng());
    n = 1;
  }
  buf.resize(std::min(n, buf.size()));
  return buf;
}

uint64_t MutateInt(uint64_t v, Rng& rng) {
  static constexpr uint64_t kInteresting[] = {0,
                                              1,
                                              2,
                                              15,
                                              16,
                                              17,
                                              31,
                                              32,
                                              33,
                                              63,
                                              64,
                                              65,
                                              127,
                                              128,
                                              255,
                                              256,
                                              1023,
                                              1024,
                                              4096,
                                              65535,
                                              65536,
                                              1 << 20,
                                              (1 << 20) + 16,
                                              (1 << 20) + 17,
                                              36500,
                                              0x7fffffff,
                                              0x80000000,
                                              0xffffffff,
                                              1ULL << 32,
                                              90ULL * 24 * 3600 * 1000,
                                              0x7fffffffffffffffULL,
                                              0x8000000000000000ULL,
                                              ~0ULL,
                                              ~0ULL - 1};
  switch (rng() % 7) {
    case 0:
      return v + 1 + rng() % 16;
    case 1:
      return v - 1 - rng() % 16;
    case 2:
    case 3:
      return kInteresting[rng() % (sizeof kInteresting / sizeof(uint64_t))];
    case 4:
      return v ^ (1ULL << (rng() % 64));
    case 5:
      return (static_cast<uint64_t>(rng()) << 32) ^ rng();
    default:
      return rng() % 2 ? v * 2 : v / 2;
  }
}

struct Site {
  Message* msg;
  const FieldDescriptor* field;
};

void CollectSites(Message* m, int depth, std::vector<Site>* sites) {
  const Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    sites->push_back(Site{m, f});
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        depth >= kMaxDepth) {
      continue;
    }
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(*m, f); ++k) {
        CollectSites(r->MutableRepeatedMessage(m, f, k), depth + 1, sites);
      }
    } else if (r->HasField(*m, f)) {
      CollectSites(r->MutableMessage(m, f), depth + 1, sites);
    }
  }
}

void CollectStrings(const std::vector<Site>& sites,
                    std::vector<std::string>* pool) {
  for (const Site& s : sites) {
    if (s.field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) continue;
    const Reflection* r = s.msg->GetReflection();
    if (s.field->is_repeated()) {
      for (int k = 0; k < r->FieldSize(*s.msg, s.field); ++k) {
        pool->push_back(r->GetRepeatedString(*s.msg, s.field, k));
      }
    } else if (!r->GetString(*s.msg, s.field).empty()) {
      pool->push_back(r->GetString(*s.msg, s.field));
    }
  }
}

std::string MutateStringValue(const FieldDescriptor* f, const std::string& v,
                              Rng& rng, const std::vector<std::string>& pool) {
  if (const Message* type = NestedType(f); type != nullptr && rng() % 4 != 0) {
    std::unique_ptr<Message> nested(type->New());
    if (!nested->ParseFromString(v)) nested->Clear();
    const int n = 1 + (rng() % 4 == 0 ? static_cast<int>(rng() % 3) : 0);
    for (int i = 0; i < n; ++i) MutateMessage(nested.get(), rng);
    return nested->SerializeAsString();
  }
  std::string out = MutateBytes(v, rng, pool);
  return f->type() == FieldDescriptor::TYPE_STRING ? FixUtf8(out) : out;
}

// A changed value for a scalar field (one element of a repeated one).
void MutateScalar(Message* m, const FieldDescriptor* f, int index, Rng& rng,
                  const std::vector<std::string>& pool) {
  const Reflection* r = m->GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
#define KONTOR_INT_CASE(CPP, Name, T)                                     \
  case FieldDescriptor::CPPTYPE_##CPP: {                                  \
    const T v =                                                           \
        rep ? r->GetRepeated##Name(*m, f, index) : r->Get##Name(*m, f);   \
    const T w = static_cast<T>(MutateInt(static_cast<uint64_t>(v), rng)); \
    rep ? r->SetRepeated##Name(m, f, index, w) : r->Set##Name(m, f, w);   \
    break;                                                                \
  }
    KONTOR_INT_CASE(INT32, Int32, int32_t)
    KONTOR_INT_CASE(INT64, Int64, int64_t)
    KONTOR_INT_CASE(UINT32, UInt32, uint32_t)
    KONTOR_INT_CASE(UINT64, UInt64, uint64_t)
#undef KONTOR_INT_CASE
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const double v = static_cast<double>(static_cast<int64_t>(rng())) /
                       static_cast<double>(1 + rng() % 1000);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->SetRepeatedDouble(m, f, index, v) : r->SetDouble(m, f, v);
      } else {
        const float x = static_cast<float>(v);
        rep ? r->SetRepeatedFloat(m, f, index, x) : r->SetFloat(m, f, x);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      const bool v = rep ? r->GetRepeatedBool(*m, f, index) : r->GetBool(*m, f);
      rep ? r->SetRepeatedBool(m, f, index, !v) : r->SetBool(m, f, !v);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* e = f->enum_type();
      const int v =
          rng() % 5 == 0
              ? static_cast<int>(MutateInt(rng() % 8, rng))
              : e->value(static_cast<int>(rng() % e->value_count()))->number();
      rep ? r->SetRepeatedEnumValue(m, f, index, v) : r->SetEnumValue(m, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string v =
          rep ? r->GetRepeatedString(*m, f, index) : r->GetString(*m, f);
      std::string w = MutateStringValue(f, v, rng, pool);
      rep ? r->SetRepeatedString(m, f, index, std::move(w))
          : r->SetString(m, f, std::move(w));
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
}

void AddElement(Message* m, const FieldDescriptor* f, Rng& rng,
                const std::vector<std::string>& pool) {
  const Reflection* r = m->GetReflection();
  const int n = r->FieldSize(*m, f);
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    Message* added = r->AddMessage(m, f);
    if (n > 0 && rng() % 2 == 0) {
      added->CopyFrom(
          r->GetRepeatedMessage(*m, f, static_cast<int>(rng() % n)));
    }
  } else {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->AddInt32(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->AddInt64(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->AddUInt32(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->AddUInt64(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->AddDouble(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->AddFloat(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->AddBool(m, f, false);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->AddEnumValue(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(
            m, f,
            n > 0 && rng() % 2
                ? r->GetRepeatedString(*m, f, static_cast<int>(rng() % n))
                : std::string());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    MutateScalar(m, f, n, rng, pool);
  }
  // Insert at a random position rather than always at the end.
  for (int k = n; k > 0 && rng() % 2 == 0; --k) r->SwapElements(m, f, k, k - 1);
}

void MutateSite(const Site& s, Rng& rng, const std::vector<std::string>& pool) {
  Message* m = s.msg;
  const FieldDescriptor* f = s.field;
  const Reflection* r = m->GetReflection();
  if (f->is_repeated()) {
    const int n = r->FieldSize(*m, f);
    const int op = static_cast<int>(rng() % 4);
    if (n == 0 || (op == 0 && n < kMaxRepeated)) {
      AddElement(m, f, rng, pool);
    } else if (op == 1) {
      r->SwapElements(m, f, static_cast<int>(rng() % n), n - 1);
      r->RemoveLast(m, f);
    } else if (op == 2 && n > 1) {
      r->SwapElements(m, f, static_cast<int>(rng() % n),
                      static_cast<int>(rng() % n));
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* e = r->MutableRepeatedMessage(m, f, static_cast<int>(rng() % n));
      if (rng() % 4 == 0) {
        e->Clear();
      } else {
        MutateMessage(e, rng);
      }
    } else {
      MutateScalar(m, f, static_cast<int>(rng() % n), rng, pool);
    }
    return;
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (!r->HasField(*m, f)) {
      r->MutableMessage(m, f);
    } else if (rng() % 4 == 0) {
      r->ClearField(m, f);
    } else {
      MutateMessage(r->MutableMessage(m, f), rng);
    }
    return;
  }
  if (rng() % 16 == 0) {
    r->ClearField(m, f);
    return;
  }
  MutateScalar(m, f, -1, rng, pool);
}

// Copies field `f` of `from` into `to` (same type): the value, or one more
// element for a repeated message field.
void TakeField(Message* to, Message* from, const FieldDescriptor* f, Rng& rng) {
  const Reflection* r = to->GetReflection();
  if (f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    const int n = r->FieldSize(*from, f);
    if (n == 0 || r->FieldSize(*to, f) >= kMaxRepeated) return;
    r->AddMessage(to, f)->CopyFrom(
        r->GetRepeatedMessage(*from, f, static_cast<int>(rng() % n)));
    return;
  }
  r->SwapFields(to, from, {f});
}

}  // namespace

void AddWord(const std::string& word) { Words().push_back(word); }

void MutateMessage(Message* m, Rng& rng) {
  std::vector<Site> sites;
  CollectSites(m, 0, &sites);
  if (sites.empty()) return;
  std::vector<std::string> pool;
  CollectStrings(sites, &pool);
  MutateSite(sites[rng() % sites.size()], rng, pool);
}

size_t MutateSerialized(Message* scratch, uint8_t* data, size_t size,
                        size_t max_size, unsigned seed) {
  Rng rng(seed);
  std::string out;
  for (int attempt = 0; attempt < 8; ++attempt) {
    scratch->Clear();
    if (!scratch->ParseFromArray(data, static_cast<int>(size))) {
      scratch->Clear();
    }
    const int n = 1 + (rng() % 4 == 0 ? static_cast<int>(rng() % 4) : 0);
    for (int i = 0; i < n; ++i) MutateMessage(scratch, rng);
    if (scratch->SerializeToString(&out) && out.size() <= max_size) {
      std::memcpy(data, out.data(), out.size());
      return out.size();
    }
  }
  return size;
}

size_t CrossOverSerialized(Message* a, Message* b, const uint8_t* data1,
                           size_t size1, const uint8_t* data2, size_t size2,
                           uint8_t* out, size_t max_out_size, unsigned seed) {
  Rng rng(seed);
  if (!a->ParseFromArray(data1, static_cast<int>(size1))) a->Clear();
  if (!b->ParseFromArray(data2, static_cast<int>(size2))) b->Clear();
  std::vector<Site> in_a, in_b;
  CollectSites(a, 0, &in_a);
  CollectSites(b, 0, &in_b);
  for (int tries = 0; tries < 4 && !in_a.empty(); ++tries) {
    const Site& to = in_a[rng() % in_a.size()];
    std::vector<const Site*> same;
    for (const Site& s : in_b) {
      if (s.field == to.field) same.push_back(&s);
    }
    if (same.empty()) continue;
    TakeField(to.msg, same[rng() % same.size()]->msg, to.field, rng);
    break;
  }
  std::string bytes;
  if (!a->SerializeToString(&bytes) || bytes.size() > max_out_size) return 0;
  std::memcpy(out, bytes.data(), bytes.size());
  return bytes.size();
}

bool ParseInput(const uint8_t* data, size_t size, Message* out) {
  static const bool print = std::getenv("KONTOR_FUZZ_PRINT") != nullptr;
  if (!out->ParseFromArray(data, static_cast<int>(size))) return false;
  if (print) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(*out, &text);
    std::fprintf(stderr, "%s input:\n%s\n",
                 out->GetDescriptor()->full_name().c_str(), text.c_str());
  }
  return true;
}

}  // namespace kontor::fuzz
