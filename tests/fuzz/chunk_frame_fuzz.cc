// Chunk frames: the encrypted chunk files of attachments, as a peer sends
// them (PutChunks) and as they lie on disk. ChunkEncryptor seals the
// input's plaintext into chunk files, the input then tampers with the files
// and with the list, and DecryptChunks / DecryptChunksToFile open them;
// raw frames go through WriteChunkFile, ReadChunkFile, PresentChunks,
// MissingChunks and RemoveChunkDir.
//
// Input: kontor.fuzz.ChunkFrameInput. Invariants: the untampered files
// open to the plaintext; whatever was changed, an opening that succeeds
// yields exactly the plaintext (never other bytes), and a failed
// DecryptChunksToFile leaves no file; PresentChunks lists exactly the
// frames written.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/attachment/chunks.h"
#include "daemon/attachment/files.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

std::string ReadFile(const std::string& path) { return testing::ReadAll(path); }

void Tamper(const std::string& dir, std::vector<ChunkInfo>* list,
            const ChunkFrameInput::Tamper& t) {
  if (list->empty()) return;
  const uint32_t i = t.chunk() % list->size();
  const std::string path = ChunkPath(dir, i);
  if (t.remove()) {
    unlink(path.c_str());
    return;
  }
  if (t.swap_with_next() && i + 1 < list->size()) {
    const std::string next = ChunkPath(dir, i + 1);
    const std::string a = ReadFile(path), b = ReadFile(next);
    testing::WriteAll(path, b);
    testing::WriteAll(next, a);
    return;
  }
  std::string bytes = ReadFile(path);
  if (!bytes.empty() && t.xor_() != 0) {
    bytes[t.offset() % bytes.size()] ^= static_cast<char>(t.xor_());
  }
  if (t.truncate()) bytes.resize(std::min<size_t>(bytes.size(), t.offset()));
  bytes += t.append().substr(0, 4096);
  testing::WriteAll(path, bytes);
}

void Run(const ChunkFrameInput& in) {
  static const std::string base = ScratchDir("frames");
  const std::string dir = base + "/chunks";
  const std::string out = base + "/out";
  RemoveAll(dir);
  unlink(out.c_str());
  const std::string key(kChunkKeyBytes, '\x42');
  const std::string plain = in.plaintext().substr(0, 64 * 1024);
  const size_t chunk_plain = 1 + in.chunk_plain_bytes() % 4096;

  auto enc =
      ChunkEncryptor::Create(dir, key, in.attachment_index(), chunk_plain);
  Require(enc.ok(), "ChunkEncryptor::Create failed");
  const size_t half = plain.size() / 2;
  Require((*enc)->Write(plain.substr(0, half)).ok() &&
              (*enc)->Write(plain.substr(half)).ok(),
          "ChunkEncryptor::Write failed");
  auto summary = (*enc)->Finish();
  Require(summary.ok(), "ChunkEncryptor::Finish failed");
  Require(summary->plain_size == plain.size() &&
              summary->plain_sha256 == Sha256(plain),
          "the summary does not describe the plaintext");

  std::string got;
  auto collect = [&got](absl::string_view p) {
    got.append(p.data(), p.size());
    return absl::OkStatus();
  };
  Require(DecryptChunks(dir, summary->chunks, key, in.attachment_index(),
                        plain.size(), summary->plain_sha256, collect)
                  .ok() &&
              got == plain,
          "sealed chunks do not open to the plaintext");

  std::vector<ChunkInfo> list = summary->chunks;
  for (int k = 0; k < in.tamper_size() && k < 8; ++k) {
    Tamper(dir, &list, in.tamper(k));
  }
  if (in.drop_last() && !list.empty()) list.pop_back();
  if (in.flip_last() && !list.empty()) list.back().last = !list.back().last;
  if (in.size_delta() != 0 && !list.empty()) {
    ChunkInfo& c = list[static_cast<size_t>(in.size_delta()) % list.size()];
    c.size = static_cast<uint64_t>(c.size + in.size_delta());
  }
  const std::string used_key =
      in.wrong_key() ? std::string(kChunkKeyBytes, '\x43') : key;
  const uint32_t attachment =
      in.attachment_index() + static_cast<uint32_t>(in.attachment_delta());
  const uint64_t expected_size =
      plain.size() + static_cast<uint64_t>(in.expected_size_delta());

  got.clear();
  auto opened = DecryptChunks(dir, list, used_key, attachment, expected_size,
                              summary->plain_sha256, collect);
  if (opened.ok()) {
    Require(got == plain, "tampered chunks opened to other bytes");
  } else {
    Require(plain.compare(0, got.size(), got) == 0,
            "a failed opening handed out bytes that are not the plaintext");
  }
  auto to_file = DecryptChunksToFile(dir, list, used_key, attachment,
                                     expected_size, summary->plain_sha256, out);
  Require(to_file.ok() == opened.ok(),
          "DecryptChunksToFile and DecryptChunks disagree");
  struct stat st;
  if (to_file.ok()) {
    Require(ReadFile(out) == plain, "the opened file is not the plaintext");
  } else {
    Require(
        stat(out.c_str(), &st) != 0 && stat((out + ".part").c_str(), &st) != 0,
        "a failed DecryptChunksToFile left a file");
  }
  RemoveChunkDir(dir).IgnoreError();

  // Raw frames, as PutChunks stores them (indexes within its bounds).
  AttachmentDirs dirs(base);
  const std::string origin = "ee", id = MessageIdFor(1);
  RemoveAll(dirs.IncomingMessage(origin, id));
  std::set<std::pair<uint32_t, uint32_t>> written;
  std::vector<std::vector<ChunkInfo>> lists(2);
  for (int k = 0; k < in.frames_size() && k < 8; ++k) {
    const Frame& f = in.frames(k);
    const uint32_t a = f.attachment() % kMaxAttachments;
    const uint32_t index = f.index() % 65537;
    const std::string frame_dir = dirs.Incoming(origin, id, a);
    auto sha = WriteChunkFile(frame_dir, index, f.data());
    if (!sha.ok()) continue;
    written.emplace(a, index);
    auto back = ReadChunkFile(frame_dir, index);
    Require(back.ok() && *back == f.data(), "a chunk file reads back other");
    Require(Sha256File(ChunkPath(frame_dir, index)).value_or("") == *sha,
            "Sha256File differs");
    if (a < 2) {
      lists[a].push_back(ChunkInfo{index, f.data().size(), *sha, false});
    }
  }
  const auto present = PresentChunks(dirs, origin, id);
  Require(std::set<std::pair<uint32_t, uint32_t>>(present.begin(),
                                                  present.end()) == written,
          "PresentChunks does not list the chunks written");
  MissingChunks(dirs, origin, id, lists).IgnoreError();
  RemoveTree(dirs.IncomingMessage(origin, id));
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::ChunkFrameInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::ChunkFrameInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
