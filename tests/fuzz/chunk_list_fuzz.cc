// Chunk lists of an envelope (Envelope.chunks: AttachmentChunkRef, from a
// peer, covered by the outer signature only as a digest): ChunkLists, the
// chunk list digest inside OuterDigest, AddChunkRefs, and DecryptChunks'
// own checks of a list.
//
// Input: kontor.fuzz.ChunkListInput. Invariants: what ChunkLists accepts
// has attachments 0..n-1 (n <= 64) each with chunks 0..k-1, exactly the final
// one last, sizes in [16, 1 MiB + 16], at most max_total_bytes of plaintext;
// AddChunkRefs gives the same refs back; DecryptChunks accepts each such
// list as a list (it goes on to read files).
#include <cstdint>

#include "daemon/attachment/chunks.h"
#include "daemon/attachment/files.h"
#include "daemon/envelope/envelope.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

void Run(const ChunkListInput& in) {
  v1::Envelope env;
  *env.mutable_chunks() = in.refs();
  Require(OuterDigest(env, kSuiteV1).size() == 32, "odd digest");

  auto lists = ChunkLists(in.refs(), in.max_total_bytes());
  if (!lists.ok()) {
    Require(lists.status().code() == absl::StatusCode::kInvalidArgument ||
                lists.status().code() == absl::StatusCode::kResourceExhausted,
            "ChunkLists failed with an unexpected code");
    return;
  }
  Require(lists->size() <= kMaxAttachments, "too many attachments");
  uint64_t total = 0;
  v1::Envelope back;
  for (size_t a = 0; a < lists->size(); ++a) {
    const std::vector<ChunkInfo>& list = (*lists)[a];
    Require(!list.empty(), "an attachment without chunks");
    for (size_t i = 0; i < list.size(); ++i) {
      Require(list[i].index == i, "chunks out of order");
      Require(list[i].last == (i + 1 == list.size()), "last flag misplaced");
      Require(list[i].size >= kChunkTagBytes &&
                  list[i].size <= kMaxChunkFileBytes &&
                  list[i].sha256.size() == 32,
              "a malformed chunk passed");
      total += list[i].size - kChunkTagBytes;
    }
    AddChunkRefs(static_cast<uint32_t>(a), list, &back);
    if (a < 4) {
      auto s = DecryptChunks(
          "/nonexistent/kontor-fuzz", list, std::string(kChunkKeyBytes, 'k'),
          static_cast<uint32_t>(a), ~0ULL, std::string(32, 's'),
          [](absl::string_view) { return absl::OkStatus(); });
      Require(s.code() == absl::StatusCode::kNotFound,
              "DecryptChunks refuses a list that ChunkLists accepts");
    }
  }
  Require(total <= in.max_total_bytes(), "more plaintext than allowed");
  Require(back.chunks_size() == in.refs_size(), "AddChunkRefs lost refs");
  for (int i = 0; i < back.chunks_size(); ++i) {
    v1::AttachmentChunkRef want = in.refs(i);
    want.clear_sha256();
    v1::AttachmentChunkRef got = back.chunks(i);
    got.clear_sha256();
    want.DiscardUnknownFields();
    Require(google::protobuf::util::MessageDifferencer::Equals(want, got) &&
                back.chunks(i).sha256() == in.refs(i).sha256(),
            "AddChunkRefs is not the inverse of ChunkLists");
  }
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::ChunkListInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::ChunkListInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
