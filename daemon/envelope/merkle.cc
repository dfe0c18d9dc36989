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

// All levels of the tree, leaves first, root last: O(n) hashes.
std::vector<std::vector<std::string>> TreeLevels(
    const std::vector<std::string>& leaves) {
  std::vector<std::vector<std::string>> levels = {leaves};
  while (levels.back().size() > 1) {
    const std::vector<std::string>& level = levels.back();
    std::vector<std::string> next;
    for (size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(NodeHash(level[i], level[i + 1]));
    }
    if (level.size() % 2 == 1) next.push_back(level.back());
    levels.push_back(std::move(next));
  }
  return levels;
}

std::vector<std::string> PathFromLevels(
    const std::vector<std::vector<std::string>>& levels, size_t index) {
  std::vector<std::string> path;
  for (size_t l = 0; l + 1 < levels.size(); ++l) {
    const size_t sibling = index ^ 1;
    if (sibling < levels[l].size()) path.push_back(levels[l][sibling]);
    index /= 2;
  }
  return path;
}
}  // namespace

std::string MerkleLeafHash(absl::string_view digest) {
  return Sha256(absl::StrCat(absl::string_view("\x00", 1), digest));
}

std::string MerkleRoot(const std::vector<std::string>& leaves) {
  if (leaves.empty()) return std::string();
  return TreeLevels(leaves).back()[0];
}

std::vector<std::string> MerklePath(const std::vector<std::string>& leaves,
                                    size_t index) {
  return PathFromLevels(TreeLevels(leaves), index);
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
  const auto levels = TreeLevels(leaves);
  const std::string& root = levels.back()[0];
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
    for (std::string& h : PathFromLevels(levels, i)) s.add_path(std::move(h));
  }
  return out;
}

std::string VerifiedRoots::Key(const v1::BatchSignature& sig,
                               absl::string_view label) {
  return absl::StrCat(label, absl::string_view("\0", 1), sig.signer_key_id(),
                      sig.root(), sig.signature());
}

absl::Status VerifyBatchSignature(const v1::BatchSignature& sig,
                                  absl::string_view label,
                                  absl::string_view digest,
                                  const Certificate& signer,
                                  VerifiedRoots* verified) {
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
  std::string key;
  if (verified != nullptr) {
    key = VerifiedRoots::Key(sig, label);
    if (verified->Contains(key)) return absl::OkStatus();
  }
  absl::Status s =
      EcdsaVerify(signer, SignedMessage(label, *root), sig.signature());
  if (s.ok() && verified != nullptr) verified->Add(std::move(key));
  return s;
}

}  // namespace kontor
