// Benchmark (not a test): prints figures, asserts nothing.
//
//   exchange_bench [--messages N] [--concurrency C] [--size BYTES]
//
// 1. CPU time per message of each cryptographic step, single thread.
// 2. Two real nodes (ee -> fi) in this process over mutual TLS on loopback,
//    SQLite with synchronous=FULL in a temp dir: C local API clients submit N
//    messages of BYTES each; prints msg/s end to end and p50/p99 latency from
//    submit (accepted) to delivered (signed receipt stored at ee).

#include <grpcpp/grpcpp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/crypto/cms.h"
#include "daemon/envelope/envelope.h"
#include "daemon/envelope/receipt.h"
#include "daemon/server/identity.h"
#include "daemon/server/node.h"
#include "kontor/v1/local.grpc.pb.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::TestPki;

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double WallSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename F>
double MicrosPerOp(int n, F f) {
  double start = CpuSeconds();
  for (int i = 0; i < n; ++i) f();
  return (CpuSeconds() - start) * 1e6 / n;
}

int Run(int messages, int concurrency, size_t size) {
  SetMinLogLevel(LogLevel::kWarning);
  const std::string dir = testing::TempDir("bench");
  TestPki pki(dir);
  auto ca = pki.MakeCa("ca");
  auto ee = pki.MakeNode(ca, "ee");
  auto fi = pki.MakeNode(ca, "fi");
  const int ee_port = testing::FreePort(), fi_port = testing::FreePort();
  auto ee_config = TestPki::Config(ee, {fi}, {fi_port}, ca, dir + "/ee",
                                   dir + "/ee.sock", ee_port);
  auto fi_config = TestPki::Config(fi, {ee}, {ee_port}, ca, dir + "/fi",
                                   dir + "/fi.sock", fi_port);
  for (auto* c : {&ee_config, &fi_config}) {
    c->mutable_limits()->set_default_expiry_seconds(3600);
  }

  // --- 1. crypto cost per message, one thread.
  auto ee_id = LoadIdentity(ee_config, Clock::Real());
  auto fi_id = LoadIdentity(fi_config, Clock::Real());
  if (!ee_id.ok() || !fi_id.ok()) {
    fprintf(stderr, "identity: %s\n",
            std::string(ee_id.status().message()).c_str());
    return 1;
  }
  Sealer sealer("ee", ee_id->signer, ee_id->directory.get());
  Opener opener("fi", fi_id->decryption_keys, fi_id->directory.get(),
                Clock::Real(), 300000, 1 << 24);
  v1::Payload payload;
  payload.set_kind("note");
  payload.set_body(std::string(size, 'x'));
  auto header = [] {
    v1::Header h;
    h.set_message_id(NewMessageId());
    h.set_origin("ee");
    h.add_recipients("fi");
    h.set_priority(v1::ROUTINE);
    h.set_created_unix_ms(Clock::Real()->NowUnixMs());
    h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
    return h;
  };
  const int kOps = 300;
  std::string inner_der;
  const double inner_sign = MicrosPerOp(kOps, [&] {
    inner_der = *CmsSign(*ee_id->signer, payload.SerializeAsString());
  });
  const double inner_verify = MicrosPerOp(
      kOps, [&] { (void)CmsVerify(inner_der, *ee_id->signer->certificate()); });
  std::string ct;
  auto fi_enc = *ee_id->directory->EncryptionCert("fi");
  const double encrypt =
      MicrosPerOp(kOps, [&] { ct = *CmsEncrypt(inner_der, {fi_enc}); });
  const double decrypt = MicrosPerOp(kOps, [&] {
    (void)CmsDecrypt(ct, *fi_id->decryption_keys[0].key,
                     *fi_id->decryption_keys[0].cert);
  });
  std::vector<v1::Envelope> envs(64);
  for (auto& e : envs) e = *sealer.Seal(header(), payload);
  std::vector<v1::Envelope*> one = {&envs[0]};
  const double outer_sign_1 =
      MicrosPerOp(kOps, [&] { (void)sealer.SignOuter(one); });
  std::vector<v1::Envelope*> all;
  for (auto& e : envs) all.push_back(&e);
  const double outer_sign_64 =
      MicrosPerOp(50, [&] { (void)sealer.SignOuter(all); }) / 64;
  Refusal refusal;
  {
    auto h = opener.ParseHeader(envs[0], &refusal);
    if (!h.ok() || !opener.Open(envs[0], *h, &refusal).ok()) {
      fprintf(stderr, "envelope does not open: %s\n", refusal.reason.c_str());
      return 1;
    }
  }
  const double open_full = MicrosPerOp(kOps, [&] {
    auto h = opener.ParseHeader(envs[0], &refusal);
    (void)opener.Open(envs[0], *h, &refusal);
  });
  const double open_batched =
      MicrosPerOp(5,
                  [&] {
                    VerifiedRoots verified;
                    for (auto& e : envs) {
                      auto h = opener.ParseHeader(e, &refusal);
                      (void)opener.Open(e, *h, &refusal, &verified);
                    }
                  }) /
      64;
  std::vector<v1::ReceiptBody> bodies(64);
  for (auto& b : bodies) {
    b.set_version("kontor-rcpt-v1");
    b.set_message_id(NewMessageId());
    b.set_verdict(v1::ACCEPTED);
  }
  const double receipt_sign_64 =
      MicrosPerOp(50, [&] { (void)SignReceipts(*fi_id->signer, bodies); }) / 64;
  printf("crypto CPU per message (us, one thread, %zu-byte body):\n", size);
  printf("  inner CMS sign          %8.1f\n", inner_sign);
  printf("  CMS encrypt (1 recip.)  %8.1f\n", encrypt);
  printf("  outer sign, batch of 1  %8.1f\n", outer_sign_1);
  printf("  outer sign, batch of 64 %8.1f\n", outer_sign_64);
  printf("  CMS decrypt             %8.1f\n", decrypt);
  printf("  inner CMS verify        %8.1f\n", inner_verify);
  printf("  open, alone (outer verify + decrypt + inner verify) %8.1f\n",
         open_full);
  printf("  open, in a batch of 64 (one outer verify)            %8.1f\n",
         open_batched);
  printf("  receipt sign, batch of 64 %6.1f\n", receipt_sign_64);
  printf(
      "  => sender %.1f us/msg (batch-1 outer), receiver %.1f us/msg "
      "(batch of 64)\n",
      inner_sign + encrypt + outer_sign_1, open_batched + receipt_sign_64);

  // --- 2. end to end.
  auto fi_node = Node::Create(fi_config, Clock::Real());
  auto ee_node = Node::Create(ee_config, Clock::Real());
  if (!fi_node.ok() || !ee_node.ok() || !(*fi_node)->Start().ok() ||
      !(*ee_node)->Start().ok()) {
    fprintf(stderr, "cannot start nodes\n");
    return 1;
  }
  const double cpu0 = CpuSeconds();
  const double t0 = WallSeconds();
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      auto stub = v1::Local::NewStub(grpc::CreateChannel(
          "unix:" + dir + "/ee.sock", grpc::InsecureChannelCredentials()));
      v1::SubmitRequest req;
      req.add_to("fi");
      *req.mutable_payload() = payload;
      while (next.fetch_add(1) < messages) {
        grpc::ClientContext ctx;
        v1::SubmitResponse resp;
        if (!stub->Submit(&ctx, req, &resp).ok()) failed.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  const double submitted = WallSeconds();
  size_t delivered = 0;
  std::vector<int64_t> latencies;
  // Cheap poll (queue depth); the delivered rows are read once at the end.
  for (int i = 0; i < 6000; ++i) {
    if ((*ee_node)->store()->PeerQueue("fi")->depth == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double t1 = WallSeconds();
  auto rows = (*ee_node)->store()->ListDeliveries("delivered", messages + 10);
  delivered = rows->size();
  for (const auto& r : *rows) latencies.push_back(r.updated_ms - r.created_ms);
  const double cpu = CpuSeconds() - cpu0;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty()
               ? 0
               : latencies[std::min(latencies.size() - 1,
                                    static_cast<size_t>(p * latencies.size()))];
  };
  printf("\nend to end, two nodes in one process, %d clients, %d x %zu B:\n",
         concurrency, messages, size);
  printf("  submitted in %.2f s (%.0f msg/s durable at ee)\n", submitted - t0,
         messages / (submitted - t0));
  printf("  delivered %zu in %.2f s: %.0f msg/s end to end\n", delivered,
         t1 - t0, delivered / (t1 - t0));
  printf("  latency submit->delivered: p50 %lld ms, p99 %lld ms, max %lld ms\n",
         static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.99)),
         static_cast<long long>(latencies.empty() ? 0 : latencies.back()));
  printf("  process CPU %.2f s = %.0f us per message (both nodes, all work)\n",
         cpu, cpu * 1e6 / std::max<size_t>(delivered, 1));
  printf("  store commits at ee: %llu for %llu writes\n",
         static_cast<unsigned long long>((*ee_node)->store()->commits()),
         static_cast<unsigned long long>((*ee_node)->store()->writes()));
  printf("  submit failures: %d\n", failed.load());
  (*ee_node)->Shutdown();
  (*fi_node)->Shutdown();
  std::string rm = "rm -rf " + dir;
  (void)system(rm.c_str());
  return failed.load() == 0 && static_cast<int>(delivered) == messages ? 0 : 1;
}

}  // namespace
}  // namespace kontor

int main(int argc, char** argv) {
  int messages = 2000, concurrency = 8;
  size_t size = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--messages")) messages = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--concurrency")) concurrency = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
  }
  return kontor::Run(messages, concurrency, size);
}
