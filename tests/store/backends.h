#ifndef KONTOR_TESTS_STORE_BACKENDS_H_
#define KONTOR_TESTS_STORE_BACKENDS_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/store/store.h"

namespace kontor {

// A Store implementation as the conformance suite (conformance_*_test.cc)
// sees it: a name and a way to open it. Every test of the suite runs once
// per backend of StoreBackends().
struct BackendUnderTest {
  // Ends each test's name ("Backends/InboxConformanceTest.Ack/sqlite"):
  // letters, digits and '_' only.
  std::string name;
  // Opens the store kept in `dir`, a directory of the test's own (empty the
  // first time). Opening the same `dir` again after the previous Store was
  // destroyed is a restart: everything it committed is there. Another `dir`
  // is another, independent store.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& dir)>
      open;
  // Optional; null: the tests that need it are skipped. Whether the content
  // key that seals a message's content is still held, looked up behind the
  // store's back while no Store is open on `dir`. `origin` is empty for a
  // message this node sent, else the origin of a received one. kNotFound if
  // the backend holds no such message. Erasure is cryptographic (DESIGN.md
  // §7): it must destroy this key, not only hide the content.
  std::function<absl::StatusOr<bool>(const std::string& dir,
                                     const std::string& origin,
                                     const std::string& message_id)>
      content_key_exists;
  // Optional; null: the tests that need it are skipped. The content key
  // file of the store kept in `dir` (its SQLite WAL and shm files are
  // beside it, with "-wal" and "-shm" added).
  std::function<std::string(const std::string& dir)> key_file;
};

// The backends the suite runs against. To add one (PostgreSQL), write its
// BackendUnderTest in backends.cc and list it there.
const std::vector<BackendUnderTest>& StoreBackends();

// The database of `dir` on the test server (KONTOR_TEST_POSTGRES, set by
// tests/postgres.sh), made if missing: its libpq connection string.
absl::StatusOr<std::string> PostgresTestDatabase(const std::string& dir);

// For gtest's messages: the backend's name, not its bytes.
inline void PrintTo(const BackendUnderTest& backend, std::ostream* os) {
  *os << backend.name;
}

}  // namespace kontor

#endif  // KONTOR_TESTS_STORE_BACKENDS_H_
