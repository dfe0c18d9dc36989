// Benchmark (not a test): prints figures, asserts nothing.
//
//   attachment_bench [--mib N]   (default 256)
//
// Encrypts N MiB of pseudo-random data into 1 MiB chunk files in a temp dir
// under /tmp (data generated chunk by chunk, never held whole; generation is
// not timed), then decrypts them to a sink that discards. Prints MiB/s for
// each direction (file writes with fsync and reads included) and peak RSS,
// then removes the temp dir.

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/attachment/chunks.h"
#include "daemon/crypto/primitives.h"

namespace kontor {
namespace {

// splitmix64: fast, deterministic filler; the cipher does not care.
void Fill(uint64_t* state, std::string* buf) {
  for (size_t i = 0; i < buf->size(); i += 8) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(&(*buf)[i], &z, std::min<size_t>(8, buf->size() - i));
  }
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int Run(uint64_t mib) {
  char tmpl[] = "/tmp/kontor-attachment-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string root = tmpl;
  const std::string dir = root + "/chunks";
  const std::string key = RandomBytes(kChunkKeyBytes);
  int rc = 0;

  auto enc = ChunkEncryptor::Create(dir, key, 0);
  if (!enc.ok()) {
    std::fprintf(stderr, "create: %s\n", enc.status().ToString().c_str());
    rmdir(root.c_str());
    return 1;
  }
  std::string buf(kChunkPlainBytes, '\0');
  uint64_t state = 42;
  std::chrono::steady_clock::duration enc_time{};
  absl::StatusOr<AttachmentSummary> summary;
  for (uint64_t i = 0; i < mib && rc == 0; ++i) {
    Fill(&state, &buf);
    auto t0 = std::chrono::steady_clock::now();
    absl::Status s = (*enc)->Write(buf);
    enc_time += std::chrono::steady_clock::now() - t0;
    if (!s.ok()) {
      std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
      rc = 1;
    }
  }
  if (rc == 0) {
    auto t0 = std::chrono::steady_clock::now();
    summary = (*enc)->Finish();
    enc_time += std::chrono::steady_clock::now() - t0;
    if (!summary.ok()) {
      std::fprintf(stderr, "finish: %s\n", summary.status().ToString().c_str());
      rc = 1;
    }
  }
  enc->reset();

  if (rc == 0) {
    uint64_t seen = 0;
    auto t0 = std::chrono::steady_clock::now();
    absl::Status s =
        DecryptChunks(dir, summary->chunks, key, 0, summary->plain_size,
                      summary->plain_sha256, [&seen](absl::string_view p) {
                        seen += p.size();
                        return absl::OkStatus();
                      });
    const double dec_s = Seconds(std::chrono::steady_clock::now() - t0);
    if (!s.ok() || seen != summary->plain_size) {
      std::fprintf(stderr, "decrypt: %s\n", s.ToString().c_str());
      rc = 1;
    } else {
      const double enc_s = Seconds(enc_time);
      std::printf("attachment_bench: %llu MiB, %zu chunks of %zu KiB\n",
                  static_cast<unsigned long long>(mib), summary->chunks.size(),
                  kChunkPlainBytes / 1024);
      std::printf(
          "encrypt (AES-256-GCM + SHA-256 + write + fsync): "
          "%8.1f MiB/s  (%.2f s)\n",
          mib / enc_s, enc_s);
      std::printf(
          "decrypt (read + SHA-256 + AES-256-GCM + SHA-256):  "
          "%8.1f MiB/s  (%.2f s)\n",
          mib / dec_s, dec_s);
    }
  }

  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);

  absl::Status s = RemoveChunkDir(dir);
  if (!s.ok()) {
    std::fprintf(stderr, "cleanup: %s\n", s.ToString().c_str());
    rc = 1;
  }
  if (rmdir(root.c_str()) != 0) {
    std::perror("rmdir");
    rc = 1;
  }
  return rc;
}

}  // namespace
}  // namespace kontor

int main(int argc, char** argv) {
  uint64_t mib = 256;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      char* end = nullptr;
      mib = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || mib == 0) {
        std::fprintf(stderr, "--mib wants a positive integer\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--mib N]\n", argv[0]);
      return 2;
    }
  }
  return kontor::Run(mib);
}
