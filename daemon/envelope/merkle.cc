#include "daemon/envelope/merkle.h"

#include "absl/strings/str_cat.h"

namespace kontor {
namespace {
constexpr size_t kMaxBatch = 1 << 16;

std::string NodeHash(absl::string_view left, absl::string_view right) {
  return Sha256(absl::StrCat(absl::string_view("\x01", 1), left, right));
}

std::string SignedMessage(absl::string_view label, absl::string_view root) {
  return absl::StrCat(label, absl::string_view("\0", 1), root);
}
}  // namespace

std::string MerkleLeafHash(absl::string_view digest) {
  return Sha256(absl::StrCat(absl::string_view("\x00", 1), digest));
}

std::string MerkleRoot(const std::vector<std::string>& leaves) {
  std::vector<std::string> level = leaves;
  while (level.size() > 1) {
    std::vector<std::string> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(NodeHash(level[i], level[i + 1]));
    }
    if (level.size() % 2 == 1) next.push_back(level.back());
    level.swap(next);
  }
  return level.empty() ? std::string() : level[0];
}

std::vector<std::string> MerklePath(const std::vector<std::string>& leaves,
                                    size_t index) {
  std::vector<std::string> path;
  std::vector<std::string> level = leaves;
  while (level.size() > 1) {
    size_t sibling = index ^ 1;
    if (sibling < level.size()) path.push_back(level[sibling]);
    std::vector<std::string> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(NodeHash(level[i], level[i + 1]));
    }
    if (level.size() % 2 == 1) next.push_back(level.back());
    level.swap(next);
    index /= 2;
  }
  return path;
}

absl::StatusOr<std::string> MerkleRootFromPath(
    absl::string_view leaf_hash, size_t index, size_t count,
    const std::vector<std::string>& path) {
  if (count == 0 || count > kMaxBatch || index >= count) {
    return absl::InvalidArgumentError("batch index out of range");
  }
  std::string hash(leaf_hash);
  size_t used = 0;
  while (count > 1) {
    size_t sibling = index ^ 1;
    if (sibling < count) {
      if (used >= path.size()) {
        return absl::InvalidArgumentError("batch audit path too short");
      }
      const std::string& s = path[used++];
      if (s.size() != 32) return absl::InvalidArgumentError("bad path hash");
      hash = (index % 2 == 0) ? NodeHash(hash, s) : NodeHash(s, hash);
    }
    index /= 2;
    count = (count + 1) / 2;
  }
  if (used != path.size()) {
    return absl::InvalidArgumentError("batch audit path too long");
  }
  return hash;
}

absl::StatusOr<std::vector<v1::BatchSignature>> SignBatch(
    const EcdsaSigner& signer, absl::string_view label,
    const std::vector<std::string>& digests) {
  if (digests.empty() || digests.size() > kMaxBatch) {
    return absl::InvalidArgumentError("batch size out of range");
  }
  std::vector<std::string> leaves;
  leaves.reserve(digests.size());
  for (const std::string& d : digests) leaves.push_back(MerkleLeafHash(d));
  const std::string root = MerkleRoot(leaves);
  auto signature = signer.Sign(SignedMessage(label, root));
  if (!signature.ok()) return signature.status();
  std::vector<v1::BatchSignature> out(digests.size());
  for (size_t i = 0; i < digests.size(); ++i) {
    v1::BatchSignature& s = out[i];
    s.set_signer_key_id(signer.certificate()->key_id());
    s.set_root(root);
    s.set_signature(*signature);
    s.set_leaf_index(static_cast<uint32_t>(i));
    s.set_leaf_count(static_cast<uint32_t>(digests.size()));
    for (std::string& h : MerklePath(leaves, i)) s.add_path(std::move(h));
  }
  return out;
}

absl::Status VerifyBatchSignature(const v1::BatchSignature& sig,
                                  absl::string_view label,
                                  absl::string_view digest,
                                  const Certificate& signer) {
  if (sig.signer_key_id() != signer.key_id()) {
    return absl::UnauthenticatedError("signature names another key");
  }
  std::vector<std::string> path(sig.path().begin(), sig.path().end());
  auto root = MerkleRootFromPath(MerkleLeafHash(digest), sig.leaf_index(),
                                 sig.leaf_count(), path);
  if (!root.ok()) return absl::UnauthenticatedError(root.status().message());
  if (!ConstantTimeEquals(*root, sig.root())) {
    return absl::UnauthenticatedError("digest is not in the signed batch");
  }
  return EcdsaVerify(signer, SignedMessage(label, *root), sig.signature());
}

}  // namespace kontor
