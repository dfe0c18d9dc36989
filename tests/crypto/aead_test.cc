// AES-256-GCM as the store seals content with it (daemon/crypto/primitives.h):
// nonce (12) || ciphertext || tag (16), a fresh random nonce each time; any
// change to the key, the associated data or a byte of the sealed value is
// kDataLoss, never a wrong plaintext.

#include <string>

#include "absl/status/status.h"
#include "daemon/crypto/primitives.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

std::string Key(char fill = '\x42') { return std::string(32, fill); }

std::string Seal(absl::string_view plaintext, absl::string_view aad = "aad",
                 const std::string& key = Key()) {
  auto sealed = Aes256GcmSeal(key, aad, plaintext);
  EXPECT_TRUE(sealed.ok()) << sealed.status();
  return sealed.ok() ? *sealed : std::string();
}

TEST(AeadTest, EmptyPlaintextRoundTrips) {
  const std::string sealed = Seal("");
  EXPECT_EQ(sealed.size(), kNonce + kTag);
  auto opened = Aes256GcmOpen(Key(), "aad", sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "");
}

TEST(AeadTest, OneMebibyteRoundTrips) {
  std::string plaintext(1 << 20, '\0');
  for (size_t i = 0; i < plaintext.size(); ++i) {
    plaintext[i] = static_cast<char>((i * 131 + 7) & 0xff);
  }
  const std::string sealed = Seal(plaintext);
  EXPECT_EQ(sealed.size(), kNonce + plaintext.size() + kTag);
  // The plaintext is not there in the clear.
  EXPECT_EQ(sealed.find(plaintext.substr(1000, 64)), std::string::npos);
  auto opened = Aes256GcmOpen(Key(), "aad", sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(*opened == plaintext);
}

TEST(AeadTest, BinaryPlaintextAndAadWithNulBytesRoundTrip) {
  const std::string plaintext("a\0b\0\xff", 5);
  const std::string aad("x\0y", 3);
  const std::string sealed = Seal(plaintext, aad);
  auto opened = Aes256GcmOpen(Key(), aad, sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
  // The aad is compared in full, past its NUL byte.
  EXPECT_EQ(
      Aes256GcmOpen(Key(), std::string("x\0z", 3), sealed).status().code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(Aes256GcmOpen(Key(), "x", sealed).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(AeadTest, WrongKeyIsDataLoss) {
  const std::string sealed = Seal("secret content");
  std::string other = Key();
  other[31] ^= 1;
  EXPECT_EQ(Aes256GcmOpen(other, "aad", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Aes256GcmOpen(Key('\x43'), "aad", sealed).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(AeadTest, WrongAadIsDataLoss) {
  const std::string sealed = Seal("secret content", "m:1/payload");
  EXPECT_EQ(Aes256GcmOpen(Key(), "aae", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Aes256GcmOpen(Key(), "", sealed).status().code(),
            absl::StatusCode::kDataLoss);
  // Empty aad on both sides is fine.
  const std::string no_aad = Seal("secret content", "");
  auto opened = Aes256GcmOpen(Key(), "", no_aad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "secret content");
  EXPECT_EQ(Aes256GcmOpen(Key(), "aad", no_aad).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(AeadTest, EveryFlippedByteIsDataLoss) {
  const std::string plaintext = "secret content, thirty-two bytes";
  const std::string sealed = Seal(plaintext);
  ASSERT_EQ(sealed.size(), kNonce + plaintext.size() + kTag);
  // Each byte of nonce, ciphertext and tag, one bit and all bits.
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string altered = sealed;
      altered[i] = static_cast<char>(altered[i] ^ mask);
      const absl::StatusCode code =
          Aes256GcmOpen(Key(), "aad", altered).status().code();
      const char* part =
          i < kNonce ? "nonce"
                     : (i < kNonce + plaintext.size() ? "ciphertext" : "tag");
      EXPECT_EQ(code, absl::StatusCode::kDataLoss)
          << part << " byte " << i << " mask " << int{mask};
    }
  }
}

TEST(AeadTest, TruncatedOrExtendedInputIsDataLoss) {
  const std::string sealed = Seal("secret content");
  for (size_t n : {size_t{0}, size_t{1}, kNonce, kNonce + kTag - 1,
                   kNonce + kTag, sealed.size() - 1}) {
    EXPECT_EQ(Aes256GcmOpen(Key(), "aad", sealed.substr(0, n)).status().code(),
              absl::StatusCode::kDataLoss)
        << "first " << n << " bytes";
  }
  // Without its first byte (the tail is all there, shifted).
  EXPECT_EQ(Aes256GcmOpen(Key(), "aad", sealed.substr(1)).status().code(),
            absl::StatusCode::kDataLoss);
  // A byte more at the end.
  EXPECT_EQ(Aes256GcmOpen(Key(), "aad", sealed + "x").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(AeadTest, KeyOfTheWrongSizeIsAnError) {
  const std::string sealed = Seal("secret content");
  for (size_t n : {0, 16, 24, 31, 33, 64}) {
    const std::string key(n, '\x42');
    auto s = Aes256GcmSeal(key, "aad", "secret content");
    EXPECT_FALSE(s.ok()) << n << "-byte key sealed";
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << n;
    auto o = Aes256GcmOpen(key, "aad", sealed);
    EXPECT_FALSE(o.ok()) << n << "-byte key opened";
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
  // The 32-byte prefix of a longer key does not pass for it.
  EXPECT_FALSE(Aes256GcmOpen(Key() + "x", "aad", sealed).ok());
}

TEST(AeadTest, SealingTheSameValueTwiceDiffersByItsRandomNonce) {
  const std::string a = Seal("same plaintext");
  const std::string b = Seal("same plaintext");
  EXPECT_NE(a, b);
  EXPECT_NE(a.substr(0, kNonce), b.substr(0, kNonce));
  EXPECT_NE(a.substr(kNonce), b.substr(kNonce));
  EXPECT_EQ(*Aes256GcmOpen(Key(), "aad", a), "same plaintext");
  EXPECT_EQ(*Aes256GcmOpen(Key(), "aad", b), "same plaintext");
  // And for the empty plaintext too (the tag depends on the nonce).
  EXPECT_NE(Seal(""), Seal(""));
}

TEST(AeadTest, AValueSealedUnderOneNonceDoesNotOpenUnderAnother) {
  // Moving the body and tag of one sealing behind the nonce of another.
  const std::string a = Seal("same plaintext");
  const std::string b = Seal("same plaintext");
  const std::string spliced = b.substr(0, kNonce) + a.substr(kNonce);
  EXPECT_EQ(Aes256GcmOpen(Key(), "aad", spliced).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace kontor
