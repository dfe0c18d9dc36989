#ifndef KONTOR_TESTS_TESTING_SQL_H_
#define KONTOR_TESTS_TESTING_SQL_H_

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

namespace kontor::testing {

// Runs SQL on a database file through a connection of its own, as someone
// editing the file behind the store's back would.
inline void RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

}  // namespace kontor::testing

#endif  // KONTOR_TESTS_TESTING_SQL_H_
