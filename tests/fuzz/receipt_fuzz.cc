// Receipts and receipt batches as a peer returns them (ReceiptBatch on the
// Exchange stream, ReturnBatch, witnesses): VerifyReceipt,
// VerifyEndToEndReceipt, ReceiptContentProblem, the audit head they carry,
// and the Merkle audit paths of batch signatures (MerkleRootFromPath and
// VerifyBatchSignature with mutated index, count and path).
//
// Input: kontor.fuzz.ReceiptInput; receipts marked `sign` are signed by the
// harness (real key of `signer`) over their exact, mutated body bytes.
// Invariants: a receipt verifies only if the expected recipient signed
// exactly its body in this input; an audit path made by MerklePath always
// leads to MerkleRoot; decoded audit heads encode back to the same bytes.
#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "daemon/store/audit.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

void CheckMerkle(const ReceiptInput& in) {
  const std::vector<std::string> path(
      in.path().begin(), in.path().begin() + std::min(in.path_size(), 80));
  auto root = MerkleRootFromPath(in.leaf(), in.index(), in.count(), path);
  if (root.ok() && in.count() > 1) Require(root->size() == 32, "odd root");

  const size_t n = 1 + in.leaves() % 70;
  std::vector<std::string> leaves;
  for (size_t i = 0; i < n; ++i) {
    leaves.push_back(MerkleLeafHash(Sha256(absl::StrCat(in.leaf(), i))));
  }
  const std::string expected = MerkleRoot(leaves);
  const size_t index = in.index() % n;
  const std::vector<std::string> good = MerklePath(leaves, index);
  auto got = MerkleRootFromPath(leaves[index], index, n, good);
  Require(got.ok() && *got == expected, "MerklePath does not lead to the root");
  // Any other path, or the leaf at another place, leads elsewhere.
  if (path != good) {
    auto other = MerkleRootFromPath(leaves[index], index, n, path);
    Require(!other.ok() || *other != expected,
            "a wrong audit path leads to the root");
  }
  if (n > 1) {
    const size_t elsewhere = (index + 1 + in.count() % (n - 1)) % n;
    auto moved = MerkleRootFromPath(leaves[index], elsewhere, n, good);
    Require(
        !moved.ok() || *moved != expected || leaves[elsewhere] == leaves[index],
        "a leaf verifies at another index");
  }
}

void Run(const ReceiptInput& in) {
  const World& w = GetWorld();
  CheckMerkle(in);

  google::protobuf::RepeatedPtrField<ReceiptSpec> specs;
  for (int i = 0; i < in.receipts_size() && i < 16; ++i) {
    *specs.Add() = in.receipts(i);
  }
  const std::vector<v1::Receipt> receipts = BuildReceipts(specs, in.signer());
  // What the expected recipient really signed in this input.
  std::set<std::string> signed_bodies;
  if (in.signer() == in.recipient() && in.recipient() != XX) {
    for (int i = 0; i < specs.size(); ++i) {
      if (specs.Get(i).sign()) signed_bodies.insert(receipts[i].body());
    }
  }
  const std::string& recipient = w.id(in.recipient());
  const std::string& origin = w.id(in.origin());

  v1::ReceiptBatch batch;  // as the Exchange stream carries them
  for (const v1::Receipt& r : receipts) *batch.add_receipts() = r;
  v1::ReceiptBatch reread;
  Require(reread.ParseFromString(batch.SerializeAsString()) &&
              reread.receipts_size() == batch.receipts_size(),
          "a receipt batch does not parse back");

  VerifiedRoots verified;
  for (const v1::Receipt& r : receipts) {
    auto body = VerifyReceipt(r, w.directory, recipient, origin,
                              in.message_id(), in.outer_digest(), &verified);
    Note(absl::StrCat("VerifyReceipt: ", body.status().ToString()));
    if (body.ok()) {
      Require(signed_bodies.count(r.body()) > 0,
              "a receipt verified that the recipient did not sign");
      Require(body->recipient() == recipient && body->origin() == origin &&
                  body->message_id() == in.message_id() &&
                  body->outer_digest() == in.outer_digest(),
              "a verified receipt is for another message");
    }
    bool altered = false;
    auto e2e = VerifyEndToEndReceipt(r, w.directory, recipient, origin,
                                     in.message_id(), in.outer_digest(),
                                     &altered, &verified);
    Note(absl::StrCat("VerifyEndToEndReceipt: ", e2e.status().ToString(),
                      altered ? " (altered)" : ""));
    if (e2e.ok()) {
      Require(signed_bodies.count(r.body()) > 0,
              "an end-to-end receipt verified that the recipient did not sign");
      Require(e2e->verdict() == v1::ACCEPTED || e2e->verdict() == v1::REFUSED,
              "an end-to-end receipt that is neither accepted nor refused");
      Require(!altered || e2e->verdict() == v1::REFUSED,
              "an acceptance of other bytes passed as end-to-end");
    }
    v1::ReceiptBody claimed;
    if (!claimed.ParseFromString(r.body())) continue;
    ReceiptContentProblem(claimed, r.body(), in.inner_digest());
    auto head = DecodeAuditHead(claimed.audit_head());
    if (head.has_value()) {
      Require(EncodeAuditHead(*head) == claimed.audit_head(),
              "an audit head does not encode back");
    }
  }
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::GetWorld();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::ReceiptInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::ReceiptInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
