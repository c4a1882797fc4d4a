#include "store/conformance/conformance.h"

#include <stdlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <future>
#include <latch>
#include <limits>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/check.h"

namespace moatless::store::conformance {

using core::Result;
using core::Status;
using core::StatusCode;

void PrintTo(const BackendFactory& factory, std::ostream* os) { *os << factory.name; }

int LinkStoreConformanceSuite() { return 0; }

std::string MakeTestDir() {
  std::string tmpl = ::testing::TempDir();
  if (tmpl.empty() || tmpl.back() != '/') tmpl += '/';
  tmpl += "moatless-store-XXXXXX";
  MOATLESS_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp under " + ::testing::TempDir());
  return tmpl;
}

std::span<const Migration> SuiteSchema() {
  static const Migration kSchema[] = {
      {1, "create_kv",
       "CREATE TABLE kv (\n"
       "  k TEXT PRIMARY KEY NOT NULL,\n"
       "  i BIGINT,\n"
       "  r DOUBLE PRECISION,\n"
       "  t TEXT,\n"
       "  b BLOB\n"
       ");\n"
       "CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, n BIGINT NOT NULL);"},
      {2, "create_users",
       "-- users and their sessions, for constraint tests\n"
       "CREATE TABLE users (\n"
       "  id BIGINT PRIMARY KEY NOT NULL,\n"
       "  email TEXT NOT NULL UNIQUE,\n"
       "  age BIGINT CHECK (age >= 0)\n"
       ");\n"
       "CREATE TABLE sessions (\n"
       "  id BIGINT PRIMARY KEY NOT NULL,\n"
       "  user_id BIGINT NOT NULL REFERENCES users (id)\n"
       ");\n"
       "CREATE INDEX sessions_by_user ON sessions (user_id);"},
      {3, "create_accounts",
       "CREATE TABLE accounts (id BIGINT PRIMARY KEY NOT NULL, balance BIGINT NOT NULL)"},
  };
  return kSchema;
}

void StoreConformanceTest::SetUp() {
  Result<std::unique_ptr<Backend>> backend = GetParam().make();
  ASSERT_TRUE(backend.ok()) << backend.status();
  backend_ = std::move(backend).value();
}

std::unique_ptr<Database> StoreConformanceTest::OpenWithSchema() {
  Result<std::unique_ptr<Database>> db = backend_->Open(SuiteSchema());
  MOATLESS_CHECK(db.ok(), "opening the conformance database: " + db.status().ToString());
  return std::move(db).value();
}

namespace {

constexpr TransactionOptions kReadOnly{.access = Access::kReadOnly};

Result<std::int64_t> CountRows(Database& db, std::string_view table) {
  // Table names are constants of this file, never input.
  const std::string sql = "SELECT COUNT(*) AS n FROM " + std::string(table);
  return TransactValue(db, kReadOnly, [&](Transaction& tx) -> Result<std::int64_t> {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne(sql));
    return row.GetInt("n");
  });
}

Status PutKv(Database& db, std::string_view key, std::string_view column, const Value& value) {
  const std::string sql = "INSERT INTO kv (k, " + std::string(column) + ") VALUES (?, ?)";
  return db.Write([&](Transaction& tx) { return tx.Exec(sql, {key, value}).status(); });
}

Result<Value> GetKv(Database& db, std::string_view key, std::string_view column) {
  const std::string sql = "SELECT " + std::string(column) + " AS v FROM kv WHERE k = ?";
  return TransactValue(db, kReadOnly, [&](Transaction& tx) -> Result<Value> {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne(sql, {key}));
    return row.Get("v");
  });
}

Blob PatternBlob(std::size_t size, std::uint32_t seed) {
  std::mt19937 gen(seed);
  Blob blob(size);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(gen());
  for (std::size_t i = 0; i < size; i += 97) blob[i] = 0;  // NULs throughout
  return blob;
}

bool IsRetryable(const Status& s) {
  return s.code() == StatusCode::kAborted || s.code() == StatusCode::kUnavailable;
}

// ---------------------------------------------------------------------------------------------
// Values

TEST_P(StoreConformanceTest, RoundTripsEveryValueType) {
  auto db = OpenWithSchema();
  struct Case {
    std::string column;
    Value value;
  };
  std::string big_text;
  for (int i = 0; big_text.size() < (1u << 20); ++i)
    big_text += "line " + std::to_string(i) + " ✓\n";
  big_text.resize(1u << 20);  // cuts after an ASCII character: the lines end in '\n'
  while (!big_text.empty() && (static_cast<unsigned char>(big_text.back()) & 0x80))
    big_text.pop_back();
  Blob all_bytes(256);
  for (int i = 0; i < 256; ++i)
    all_bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);

  const std::vector<Case> cases = {
      {"i", Value(0)},
      {"i", Value(1)},
      {"i", Value(-1)},
      {"i", Value(std::numeric_limits<std::int64_t>::min())},
      {"i", Value(std::numeric_limits<std::int64_t>::max())},
      {"i", Value()},
      {"r", Value(0.0)},
      {"r", Value(1.5)},
      {"r", Value(0.1)},
      {"r", Value(-2.25e-300)},
      {"r", Value(1e308)},
      {"r", Value(std::numeric_limits<double>::denorm_min())},
      {"r", Value(std::numeric_limits<double>::infinity())},
      {"r", Value(-std::numeric_limits<double>::infinity())},
      {"r", Value()},
      {"t", Value("")},
      {"t", Value("hello")},
      {"t", Value("héllo wörld ✓ 𝄞 日本")},
      {"t", Value("it's \"quoted\" \\ back\\slash; -- not a comment")},
      {"t", Value(big_text)},
      {"t", Value()},
      {"b", Value(Blob{})},
      {"b", Value(Blob{0})},
      {"b", Value(Blob{0, 1, 0, 255, 0})},
      {"b", Value(all_bytes)},
      {"b", Value::FromBytes(std::string_view("\0text\0", 6))},
      {"b", Value(PatternBlob(1u << 20, 7))},
      {"b", Value()},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string key = "case" + std::to_string(i);
    SCOPED_TRACE(key + " " + cases[i].column + " = " + cases[i].value.DebugString());
    ASSERT_OK(PutKv(*db, key, cases[i].column, cases[i].value));
    ASSERT_OK_AND_ASSIGN(Value got, GetKv(*db, key, cases[i].column));
    EXPECT_EQ(got.type(), cases[i].value.type());
    EXPECT_EQ(got, cases[i].value);
  }
  // And all of them again after a reopen, read in one query.
  ASSERT_OK(db->Close());
  db.reset();
  db = OpenWithSchema();
  ASSERT_OK_AND_ASSIGN(std::vector<Row> rows, TransactValue(*db, kReadOnly, [](Transaction& tx) {
                         return tx.Query("SELECT k, i, r, t, b FROM kv");
                       }));
  ASSERT_EQ(rows.size(), cases.size());
  for (const Row& row : rows) {
    ASSERT_OK_AND_ASSIGN(std::string key, row.GetText("k"));
    const Case& c = cases[std::stoul(key.substr(4))];
    ASSERT_OK_AND_ASSIGN(Value got, row.Get(c.column));
    EXPECT_EQ(got, c.value) << key;
  }
}

TEST_P(StoreConformanceTest, NullIsDistinctFromEmpty) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO kv (k, t, b) VALUES (?, ?, ?)", {"empty", "", Blob{}}));
    return tx.Exec("INSERT INTO kv (k, t, b) VALUES (?, ?, ?)", {"null", nullptr, Value()})
        .status();
  }));
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row empty, tx.QueryOne("SELECT t, b FROM kv WHERE k = ?", {"empty"}));
    EXPECT_EQ(empty.Get("t").value(), Value(""));
    EXPECT_EQ(empty.Get("b").value(), Value(Blob{}));
    EXPECT_FALSE(empty.IsNull("b").value());
    ASSIGN_OR_RETURN(Row null, tx.QueryOne("SELECT t, b FROM kv WHERE k = ?", {"null"}));
    EXPECT_TRUE(null.IsNull("t").value());
    EXPECT_TRUE(null.IsNull("b").value());
    ASSIGN_OR_RETURN(Row counted,
                     tx.QueryOne("SELECT COUNT(*) AS n FROM kv WHERE t IS NULL AND b IS NULL"));
    EXPECT_EQ(counted.GetInt("n").value(), 1);
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, TypedGettersReportMismatchesAsErrors) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx
        .Exec("INSERT INTO kv (k, i, r, t, b) VALUES (?, ?, ?, ?, ?)",
              {"a", 42, 2.5, "text", Value::FromBytes("bin")})
        .status();
  }));
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT k, i, r, t, b, NULL AS absent FROM kv"));
    EXPECT_EQ(row.GetInt("i").value(), 42);
    EXPECT_EQ(row.GetReal("r").value(), 2.5);
    EXPECT_EQ(row.GetReal("i").value(), 42.0);  // integers widen to double
    EXPECT_EQ(row.GetText("t").value(), "text");
    EXPECT_EQ(row.GetBlob("b").value(), (Blob{'b', 'i', 'n'}));
    EXPECT_EQ(row.Get<std::optional<std::int64_t>>("absent").value(), std::nullopt);
    EXPECT_EQ(row.Get<std::optional<std::string>>("t").value(), "text");
    EXPECT_EQ(row.GetInt("I").value(), 42);  // names are case-insensitive

    EXPECT_STATUS_CODE(row.GetInt("t"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(row.GetText("b"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(row.GetBlob("t"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(row.GetInt("r"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(row.GetInt("absent"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(row.GetBool("i"), StatusCode::kInternal);  // 42 is not a boolean
    const Status missing = row.GetInt("no_such_column").status();
    EXPECT_STATUS_CODE(missing, StatusCode::kInternal);
    EXPECT_NE(missing.message().find("no_such_column"), std::string::npos) << missing;
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, ResultColumnsKeepOrderAndAliases) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO kv (k, i) VALUES (?, ?)", {"a", 1}).status();
  }));
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT i AS first_col, k AS second_col FROM kv"));
    EXPECT_EQ(row.columns(), (std::vector<std::string>{"first_col", "second_col"}));
    EXPECT_EQ(row.values(), (std::vector<Value>{1, "a"}));
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, TextMustBeUtf8WithoutNul) {
  auto db = OpenWithSchema();
  const std::string with_nul("a\0b", 3);
  const std::string latin1 = "caf\xe9";
  const std::string overlong = "\xc0\xaf";
  const std::string surrogate = "\xed\xa0\x80";
  const std::vector<std::string> texts = {with_nul, latin1, overlong, surrogate};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_STATUS_CODE(PutKv(*db, "text" + std::to_string(i), "t", Value(texts[i])),
                       StatusCode::kInvalidArgument);
    // The same bytes are fine as a blob.
    ASSERT_OK(PutKv(*db, "blob" + std::to_string(i), "b", Value::FromBytes(texts[i])));
  }
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "kv"));
  EXPECT_EQ(n, 4);
}

TEST_P(StoreConformanceTest, NanIsRefused) {
  auto db = OpenWithSchema();
  EXPECT_STATUS_CODE(PutKv(*db, "nan", "r", Value(std::nan(""))), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Statements

TEST_P(StoreConformanceTest, ExecReturnsRowsAffected) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    for (int i = 0; i < 5; ++i) {
      ASSIGN_OR_RETURN(std::int64_t n, tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)",
                                               {"c" + std::to_string(i), i}));
      EXPECT_EQ(n, 1);
    }
    EXPECT_EQ(tx.Exec("UPDATE counters SET n = n + 10 WHERE n >= ?", {3}).value(), 2);
    EXPECT_EQ(tx.Exec("UPDATE counters SET n = 0 WHERE name = ?", {"missing"}).value(), 0);
    EXPECT_EQ(tx.Exec("CREATE TABLE scratch (x BIGINT)").value(), 0);
    EXPECT_EQ(tx.Exec("SELECT * FROM counters").value(), 0);
    EXPECT_EQ(tx.Exec("DELETE FROM counters WHERE n < ?", {2}).value(), 2);
    EXPECT_EQ(tx.Exec("DELETE FROM counters").value(), 3);
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, QueryOneAndQueryOptional) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?), (?, ?)", {"a", 1, "b", 2}));
    EXPECT_STATUS_CODE(tx.QueryOne("SELECT n FROM counters WHERE name = ?", {"zzz"}),
                       StatusCode::kNotFound);
    EXPECT_STATUS_CODE(tx.QueryOne("SELECT n FROM counters"), StatusCode::kInternal);
    EXPECT_STATUS_CODE(tx.QueryOptional("SELECT n FROM counters"), StatusCode::kInternal);
    ASSIGN_OR_RETURN(std::optional<Row> none,
                     tx.QueryOptional("SELECT n FROM counters WHERE name = ?", {"zzz"}));
    EXPECT_FALSE(none.has_value());
    ASSIGN_OR_RETURN(std::optional<Row> one,
                     tx.QueryOptional("SELECT n FROM counters WHERE name = ?", {"b"}));
    EXPECT_EQ(one->GetInt("n").value(), 2);
    // Neither "no row" nor "several rows" is a statement failure: the transaction goes on.
    return tx.Exec("UPDATE counters SET n = 3 WHERE name = ?", {"a"}).status();
  }));
  ASSERT_OK_AND_ASSIGN(Value a, TransactValue(*db, kReadOnly, [](Transaction& tx) -> Result<Value> {
                         ASSIGN_OR_RETURN(
                             Row row, tx.QueryOne("SELECT n FROM counters WHERE name = ?", {"a"}));
                         return row.Get("n");
                       }));
  EXPECT_EQ(a, Value(3));
}

TEST_P(StoreConformanceTest, PortableSubsetWorks) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    // RETURNING
    ASSIGN_OR_RETURN(Row inserted,
                     tx.QueryOne("INSERT INTO users (id, email, age) VALUES (?, ?, ?) "
                                 "RETURNING id, email",
                                 {7, "a@example.com", 30}));
    EXPECT_EQ(inserted.GetInt("id").value(), 7);
    EXPECT_EQ(inserted.GetText("email").value(), "a@example.com");
    // ON CONFLICT upsert, twice
    for (int i = 0; i < 2; ++i) {
      RETURN_IF_ERROR(
          tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET n = counters.n + excluded.n",
                  {"hits", 5}));
    }
    RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            {"hits", 100}));
    ASSIGN_OR_RETURN(Row hits, tx.QueryOne("SELECT n FROM counters WHERE name = ?", {"hits"}));
    EXPECT_EQ(hits.GetInt("n").value(), 10);
    // Aggregates with casts, COALESCE, LIMIT/OFFSET with parameters, joins.
    RETURN_IF_ERROR(tx.Exec("INSERT INTO accounts (id, balance) VALUES (1, 10), (2, 20), (3, 30)"));
    ASSIGN_OR_RETURN(Row sums,
                     tx.QueryOne("SELECT CAST(SUM(balance) AS BIGINT) AS total, COUNT(*) AS n, "
                                 "CAST(COALESCE(MAX(balance), 0) AS BIGINT) AS top, "
                                 "CAST(AVG(balance) AS DOUBLE PRECISION) AS mean FROM accounts"));
    EXPECT_EQ(sums.GetInt("total").value(), 60);
    EXPECT_EQ(sums.GetInt("n").value(), 3);
    EXPECT_EQ(sums.GetInt("top").value(), 30);
    EXPECT_EQ(sums.GetReal("mean").value(), 20.0);
    ASSIGN_OR_RETURN(std::vector<Row> page,
                     tx.Query("SELECT id FROM accounts ORDER BY id LIMIT ? OFFSET ?", {1, 1}));
    EXPECT_EQ(page.size(), 1u);
    EXPECT_EQ(page.at(0).GetInt("id").value(), 2);
    RETURN_IF_ERROR(tx.Exec("INSERT INTO sessions (id, user_id) VALUES (?, ?)", {100, 7}));
    ASSIGN_OR_RETURN(Row joined, tx.QueryOne("SELECT u.email AS email FROM sessions s JOIN users u "
                                             "ON u.id = s.user_id WHERE s.id = ?",
                                             {100}));
    EXPECT_EQ(joined.GetText("email").value(), "a@example.com");
    ASSIGN_OR_RETURN(Row empty_sum,
                     tx.QueryOne("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS total "
                                 "FROM accounts WHERE id > ?",
                                 {1000}));
    EXPECT_EQ(empty_sum.GetInt("total").value(), 0);
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, ParameterCountMismatchIsAnError) {
  auto db = OpenWithSchema();
  // Each case in its own transaction: a failed statement aborts the transaction.
  struct Case {
    std::string sql;
    std::vector<Value> params;
  };
  const std::vector<Case> cases = {
      {"INSERT INTO counters (name, n) VALUES (?, ?)", {"a"}},
      {"INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1, 2}},
      {"INSERT INTO counters (name, n) VALUES (?, ?)", {}},
      {"SELECT n FROM counters", {"unexpected"}},
      {"SELECT n FROM counters WHERE name = ?", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sql + " with " + std::to_string(c.params.size()) + " values");
    const Status s = db->Write([&](Transaction& tx) { return tx.Query(c.sql, c.params).status(); });
    EXPECT_STATUS_CODE(s, StatusCode::kInvalidArgument);
  }
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 0);
}

TEST_P(StoreConformanceTest, OnlyAnonymousParametersAreAccepted) {
  auto db = OpenWithSchema();
  for (const char* sql :
       {"SELECT n FROM counters WHERE name = :name", "SELECT n FROM counters WHERE name = ?1",
        "SELECT n FROM counters WHERE name = $1", "SELECT n FROM counters WHERE name = @name"}) {
    SCOPED_TRACE(sql);
    EXPECT_STATUS_CODE(db->Read([&](Transaction& tx) { return tx.Query(sql, {"x"}).status(); }),
                       StatusCode::kInvalidArgument);
  }
}

TEST_P(StoreConformanceTest, BadSqlIsInvalidArgument) {
  auto db = OpenWithSchema();
  for (const char* sql :
       {"SELEC n FROM counters", "SELECT n FROM no_such_table", "SELECT no_such_column FROM kv", "",
        "   ", "-- only a comment", "SELECT \"double quoted string\" FROM kv"}) {
    SCOPED_TRACE(sql);
    EXPECT_STATUS_CODE(db->Read([&](Transaction& tx) { return tx.Query(sql).status(); }),
                       StatusCode::kInvalidArgument);
  }
}

TEST_P(StoreConformanceTest, SeveralStatementsInOneCallAreRefused) {
  auto db = OpenWithSchema();
  const Status s = db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES ('x', 1); DROP TABLE kv").status();
  });
  EXPECT_STATUS_CODE(s, StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::int64_t kv, CountRows(*db, "kv"));  // kv still exists
  EXPECT_EQ(kv, 0);
  ASSERT_OK_AND_ASSIGN(std::int64_t counters, CountRows(*db, "counters"));
  EXPECT_EQ(counters, 0);
  // A trailing semicolon and comments are one statement.
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?); -- done\n", {"y", 1}).status();
  }));
}

TEST_P(StoreConformanceTest, TransactionControlStatementsAreRefused) {
  auto db = OpenWithSchema();
  for (const char* sql : {"COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT sp", "RELEASE sp", "END",
                          "  /* sneaky */ commit"}) {
    SCOPED_TRACE(sql);
    const Status s = db->Write([&](Transaction& tx) -> Status {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"x", 1}));
      return tx.Exec(sql).status();
    });
    EXPECT_STATUS_CODE(s, StatusCode::kInvalidArgument);
    ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
    EXPECT_EQ(n, 0) << "the insert before the refused statement must have been rolled back";
  }
}

TEST_P(StoreConformanceTest, SqlInjectionThroughParametersIsInert) {
  auto db = OpenWithSchema();
  const std::vector<std::string> payloads = {
      "x'); DROP TABLE kv; --",
      "' OR '1'='1",
      "\"; DELETE FROM kv; --",
      "'; COMMIT; DROP TABLE counters; --",
      "?",
      "$1",
      ":name",
      "@p",
      "' UNION SELECT name, n, NULL, NULL, NULL FROM counters --",
      "\\'; DROP TABLE kv; --",
  };
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"secret", 1}).status();
  }));
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    SCOPED_TRACE(payloads[i]);
    ASSERT_OK(PutKv(*db, payloads[i], "t", Value(payloads[i])));
    ASSERT_OK_AND_ASSIGN(Value got, GetKv(*db, payloads[i], "t"));
    EXPECT_EQ(got, Value(payloads[i]));
  }
  ASSERT_OK(db->Read([&](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<Row> rows,
                     tx.Query("SELECT k FROM kv WHERE k = ?", {"' OR '1'='1' --"}));
    EXPECT_TRUE(rows.empty());
    ASSIGN_OR_RETURN(rows,
                     tx.Query("SELECT k FROM kv WHERE t = ? OR t = ?", {"nothing", "' OR 1=1 --"}));
    EXPECT_TRUE(rows.empty());
    return Status::Ok();
  }));
  ASSERT_OK_AND_ASSIGN(std::int64_t kv, CountRows(*db, "kv"));
  EXPECT_EQ(kv, static_cast<std::int64_t>(payloads.size()));
  ASSERT_OK_AND_ASSIGN(std::int64_t counters, CountRows(*db, "counters"));
  EXPECT_EQ(counters, 1);
}

// ---------------------------------------------------------------------------------------------
// Transactions

TEST_P(StoreConformanceTest, CommittedWritesAreVisibleAndDurableAcrossReopen) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"durable", 1}).status();
  }));
  ASSERT_OK(db->Write(
      [](Transaction& tx) {
        return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"normal", 2}).status();
      },
      Durability::kNormal));
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("UPDATE counters SET n = n + 1 WHERE name = ?", {"normal"}).status();
  }));
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 2);
  ASSERT_OK(db->Close());
  db.reset();
  db = OpenWithSchema();
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<Row> rows, tx.Query("SELECT name, n FROM counters ORDER BY name"));
    EXPECT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows.at(0).values(), (std::vector<Value>{"durable", 1}));
    EXPECT_EQ(rows.at(1).values(), (std::vector<Value>{"normal", 3}));
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, ErrorStatusRollsBack) {
  auto db = OpenWithSchema();
  const Status s = db->Write([](Transaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1}));
    RETURN_IF_ERROR(tx.Exec("DELETE FROM kv"));
    return core::NotFoundError("changed my mind");
  });
  EXPECT_EQ(s, core::NotFoundError("changed my mind"));  // fn's status, unchanged
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 0);
}

TEST_P(StoreConformanceTest, ExceptionInTransactionRollsBackAndBecomesInternal) {
  auto db = OpenWithSchema();
  const Status s = db->Write([](Transaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"a", 1}));
    throw std::runtime_error("boom");
  });
  EXPECT_STATUS_CODE(s, StatusCode::kInternal);
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 0);
  // The database is still usable.
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"b", 1}).status();
  }));
}

TEST_P(StoreConformanceTest, FailedStatementAbortsTheTransaction) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO users (id, email) VALUES (?, ?)", {1, "a@example.com"}).status();
  }));
  Status second;
  const Status s = db->Write([&](Transaction& tx) -> Status {
    EXPECT_OK(tx.Exec("INSERT INTO users (id, email) VALUES (?, ?)", {2, "b@example.com"}));
    EXPECT_STATUS_CODE(tx.Exec("INSERT INTO users (id, email) VALUES (?, ?)", {3, "a@example.com"}),
                       StatusCode::kAlreadyExists);
    second = tx.Exec("INSERT INTO users (id, email) VALUES (?, ?)", {4, "d@example.com"}).status();
    return Status::Ok();  // ignoring the failure does not commit anything
  });
  EXPECT_STATUS_CODE(s, StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(second, StatusCode::kAborted);
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "users"));
  EXPECT_EQ(n, 1);
}

TEST_P(StoreConformanceTest, ConstraintViolationsMapToCodes) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) -> Status {
    RETURN_IF_ERROR(
        tx.Exec("INSERT INTO users (id, email, age) VALUES (?, ?, ?)", {1, "a@example.com", 30}));
    return tx.Exec("INSERT INTO sessions (id, user_id) VALUES (?, ?)", {10, 1}).status();
  }));
  struct Case {
    std::string name;
    std::string sql;
    std::vector<Value> params;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {"unique",
       "INSERT INTO users (id, email) VALUES (?, ?)",
       {2, "a@example.com"},
       StatusCode::kAlreadyExists},
      {"primary key",
       "INSERT INTO users (id, email) VALUES (?, ?)",
       {1, "other@example.com"},
       StatusCode::kAlreadyExists},
      {"text primary key",
       "INSERT INTO counters (name, n) VALUES (?, ?), (?, ?)",
       {"dup", 1, "dup", 2},
       StatusCode::kAlreadyExists},
      {"unique on update",
       "UPDATE users SET email = ? WHERE id = ?",
       {"a@example.com", 1},
       StatusCode::kOk},
      {"not null",
       "INSERT INTO users (id, email) VALUES (?, ?)",
       {3, nullptr},
       StatusCode::kFailedPrecondition},
      {"check",
       "INSERT INTO users (id, email, age) VALUES (?, ?, ?)",
       {4, "d@example.com", -1},
       StatusCode::kFailedPrecondition},
      {"foreign key insert",
       "INSERT INTO sessions (id, user_id) VALUES (?, ?)",
       {11, 999},
       StatusCode::kFailedPrecondition},
      {"foreign key delete",
       "DELETE FROM users WHERE id = ?",
       {1},
       StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Status s = db->Write([&](Transaction& tx) { return tx.Exec(c.sql, c.params).status(); });
    EXPECT_STATUS_CODE(s, c.code);
  }
  ASSERT_OK_AND_ASSIGN(std::int64_t users, CountRows(*db, "users"));
  EXPECT_EQ(users, 1);
  ASSERT_OK_AND_ASSIGN(std::int64_t sessions, CountRows(*db, "sessions"));
  EXPECT_EQ(sessions, 1);
}

TEST_P(StoreConformanceTest, ReadOnlyTransactionRefusesWrites) {
  auto db = OpenWithSchema();
  for (const char* sql : {"INSERT INTO counters (name, n) VALUES ('x', 1)", "DELETE FROM kv",
                          "CREATE TABLE nope (x BIGINT)"}) {
    SCOPED_TRACE(sql);
    const Status s = db->Read([&](Transaction& tx) -> Status {
      EXPECT_TRUE(tx.read_only());
      return tx.Exec(sql).status();
    });
    EXPECT_STATUS_CODE(s, StatusCode::kFailedPrecondition);
  }
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 0);
}

TEST_P(StoreConformanceTest, TransactValueReturnsTheValueOrTheError) {
  auto db = OpenWithSchema();
  ASSERT_OK_AND_ASSIGN(
      std::int64_t id, TransactValue(*db, {}, [](Transaction& tx) -> Result<std::int64_t> {
        ASSIGN_OR_RETURN(
            Row row,
            tx.QueryOne("INSERT INTO accounts (id, balance) VALUES (?, ?) RETURNING id", {5, 0}));
        return row.GetInt("id");
      }));
  EXPECT_EQ(id, 5);
  const Result<std::int64_t> failed =
      TransactValue(*db, {}, [](Transaction& tx) -> Result<std::int64_t> {
        RETURN_IF_ERROR(tx.Exec("INSERT INTO accounts (id, balance) VALUES (?, ?)", {6, 0}));
        return core::PermissionDeniedError("no");
      });
  EXPECT_STATUS_CODE(failed, StatusCode::kPermissionDenied);
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "accounts"));
  EXPECT_EQ(n, 1);
}

TEST_P(StoreConformanceTest, CloseIsIdempotentAndRefusesLaterTransactions) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Close());
  ASSERT_OK(db->Close());
  EXPECT_STATUS_CODE(db->Read([](Transaction&) { return Status::Ok(); }),
                     StatusCode::kFailedPrecondition);
  EXPECT_STATUS_CODE(db->Write([](Transaction&) { return Status::Ok(); }),
                     StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------------
// Migrations

Migration MakeMigration(std::int64_t version, std::string name, std::string sql) {
  return Migration{.version = version, .name = std::move(name), .sql = std::move(sql)};
}

TEST_P(StoreConformanceTest, MigrationsAreAppliedOnceAndRecorded) {
  std::vector<Migration> migrations = {
      MakeMigration(1, "create_items",
                    "CREATE TABLE items (id BIGINT PRIMARY KEY NOT NULL, label TEXT NOT NULL);"),
      MakeMigration(2, "seed_items",
                    "/* a seed row: must exist once however often the database is opened */\n"
                    "INSERT INTO items (id, label) VALUES (1, 'first');\n"
                    "  ; -- stray semicolon\n"),
  };
  for (int open = 0; open < 3; ++open) {
    ASSERT_OK_AND_ASSIGN(auto db, backend().Open(migrations));
    ASSERT_OK_AND_ASSIGN(std::int64_t items, CountRows(*db, "items"));
    EXPECT_EQ(items, 1);
    ASSERT_OK_AND_ASSIGN(std::int64_t version, SchemaVersion(*db));
    EXPECT_EQ(version, 2);
    ASSERT_OK(db->Close());
  }
  migrations.push_back(
      MakeMigration(3, "add_items_note", "ALTER TABLE items ADD COLUMN note TEXT"));
  ASSERT_OK_AND_ASSIGN(auto db, backend().Open(migrations));
  ASSERT_OK_AND_ASSIGN(std::int64_t version, SchemaVersion(*db));
  EXPECT_EQ(version, 3);
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(std::vector<Row> rows,
                     tx.Query("SELECT version, name, applied_at FROM schema_migrations "
                              "ORDER BY version"));
    EXPECT_EQ(rows.size(), 3u);
    const std::vector<std::string> names = {"create_items", "seed_items", "add_items_note"};
    for (std::size_t i = 0; i < rows.size() && i < names.size(); ++i) {
      EXPECT_EQ(rows[i].GetInt("version").value(), static_cast<std::int64_t>(i + 1));
      EXPECT_EQ(rows[i].GetText("name").value(), names[i]);
      EXPECT_FALSE(rows[i].GetText("applied_at").value().empty());
    }
    ASSIGN_OR_RETURN(Row item, tx.QueryOne("SELECT label, note FROM items WHERE id = 1"));
    EXPECT_EQ(item.GetText("label").value(), "first");
    EXPECT_TRUE(item.IsNull("note").value());
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, NewerSchemaIsRefused) {
  const std::vector<Migration> v3 = {
      MakeMigration(1, "one", "CREATE TABLE one (x BIGINT)"),
      MakeMigration(2, "two", "CREATE TABLE two (x BIGINT)"),
      MakeMigration(3, "three", "CREATE TABLE three (x BIGINT)"),
  };
  {
    ASSERT_OK_AND_ASSIGN(auto db, backend().Open(v3));
    ASSERT_OK(db->Close());
  }
  const std::vector<Migration> v2(v3.begin(), v3.begin() + 2);
  const Result<std::unique_ptr<Database>> old = backend().Open(v2);
  EXPECT_STATUS_CODE(old, StatusCode::kFailedPrecondition);
  EXPECT_NE(old.status().message().find("newer"), std::string::npos) << old.status();
  // The newer code still opens it.
  ASSERT_OK_AND_ASSIGN(auto db, backend().Open(v3));
  ASSERT_OK(db->Close());
}

TEST_P(StoreConformanceTest, RenamedMigrationIsRefused) {
  {
    ASSERT_OK_AND_ASSIGN(auto db, backend().Open(std::vector<Migration>{
                                      MakeMigration(1, "one", "CREATE TABLE one (x BIGINT)")}));
    ASSERT_OK(db->Close());
  }
  EXPECT_STATUS_CODE(backend().Open(std::vector<Migration>{
                         MakeMigration(1, "uno", "CREATE TABLE one (x BIGINT)")}),
                     StatusCode::kFailedPrecondition);
}

TEST_P(StoreConformanceTest, InvalidMigrationListsAreRefusedBeforeAnythingIsTouched) {
  const std::vector<std::vector<Migration>> lists = {
      {MakeMigration(1, "a", "CREATE TABLE a (x BIGINT)"),
       MakeMigration(3, "c", "CREATE TABLE c (x BIGINT)")},
      {MakeMigration(1, "a", "CREATE TABLE a (x BIGINT)"),
       MakeMigration(1, "b", "CREATE TABLE b (x BIGINT)")},
      {MakeMigration(2, "b", "CREATE TABLE b (x BIGINT)")},
      {MakeMigration(0, "zero", "CREATE TABLE z (x BIGINT)")},
      {MakeMigration(2, "b", "CREATE TABLE b (x BIGINT)"),
       MakeMigration(1, "a", "CREATE TABLE a (x BIGINT)")},
      {MakeMigration(1, "", "CREATE TABLE a (x BIGINT)")},
      {MakeMigration(1, "a", "  \n")},
  };
  for (std::size_t i = 0; i < lists.size(); ++i) {
    SCOPED_TRACE("list " + std::to_string(i));
    EXPECT_STATUS_CODE(backend().Open(lists[i]), StatusCode::kInvalidArgument);
  }
  // Nothing was applied: a valid list starts from version 0.
  ASSERT_OK_AND_ASSIGN(
      auto db,
      backend().Open(std::vector<Migration>{MakeMigration(1, "a", "CREATE TABLE a (x BIGINT)")}));
  ASSERT_OK_AND_ASSIGN(std::int64_t version, SchemaVersion(*db));
  EXPECT_EQ(version, 1);
}

TEST_P(StoreConformanceTest, FailedMigrationIsRolledBackAndNamed) {
  std::vector<Migration> migrations = {
      MakeMigration(1, "one", "CREATE TABLE one (x BIGINT)"),
      MakeMigration(2, "broken",
                    "CREATE TABLE two (x BIGINT);\n"
                    "INSERT INTO one (x) VALUES (1);\n"
                    "INSERT INTO no_such_table (x) VALUES (1);"),
  };
  const Result<std::unique_ptr<Database>> failed = backend().Open(migrations);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("migration 2 (broken)"), std::string::npos)
      << failed.status();
  // Fixed: the table `two` of the failed attempt must not exist (CREATE TABLE would fail), and
  // `one` holds no row from it.
  migrations[1].name = "broken";
  migrations[1].sql = "CREATE TABLE two (x BIGINT)";
  ASSERT_OK_AND_ASSIGN(auto db, backend().Open(migrations));
  ASSERT_OK_AND_ASSIGN(std::int64_t version, SchemaVersion(*db));
  EXPECT_EQ(version, 2);
  ASSERT_OK_AND_ASSIGN(std::int64_t rows, CountRows(*db, "one"));
  EXPECT_EQ(rows, 0);
}

// ---------------------------------------------------------------------------------------------
// Concurrency (no timing: threads meet through latches and futures)

TEST_P(StoreConformanceTest, ConcurrentWritersLoseNoUpdate) {
  auto db = OpenWithSchema();
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"shared", 0}).status();
  }));
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::latch start(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kIncrements;) {
        // Read, compute outside SQL, write back: loses updates unless writes are serializable.
        const Status s = db->Write([](Transaction& tx) -> Status {
          ASSIGN_OR_RETURN(Row row,
                           tx.QueryOne("SELECT n FROM counters WHERE name = ?", {"shared"}));
          ASSIGN_OR_RETURN(std::int64_t n, row.GetInt("n"));
          return tx.Exec("UPDATE counters SET n = ? WHERE name = ?", {n + 1, "shared"}).status();
        });
        if (s.ok()) {
          ++i;
        } else if (!IsRetryable(s)) {
          ADD_FAILURE() << s;
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_OK(db->Read([](Transaction& tx) -> Status {
    ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT n FROM counters WHERE name = ?", {"shared"}));
    EXPECT_EQ(row.GetInt("n").value(), kThreads * kIncrements);
    return Status::Ok();
  }));
}

TEST_P(StoreConformanceTest, ReaderSeesOnlyCommittedData) {
  auto db = OpenWithSchema();
  std::promise<void> inserted;
  std::promise<void> read_done;
  std::future<Status> writer = std::async(std::launch::async, [&] {
    return db->Write([&](Transaction& tx) -> Status {
      RETURN_IF_ERROR(tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"pending", 1}));
      inserted.set_value();
      read_done.get_future().wait();  // stay uncommitted until the reader has looked
      return Status::Ok();
    });
  });
  inserted.get_future().wait();
  Result<std::int64_t> during = CountRows(*db, "counters");
  read_done.set_value();
  ASSERT_OK(writer.get());
  ASSERT_OK(during);
  EXPECT_EQ(*during, 0) << "an uncommitted row was visible to a reader";
  ASSERT_OK_AND_ASSIGN(std::int64_t after, CountRows(*db, "counters"));
  EXPECT_EQ(after, 1);
}

TEST_P(StoreConformanceTest, ReadTransactionSeesOneSnapshot) {
  auto db = OpenWithSchema();
  std::promise<void> first_read;
  std::promise<void> committed;
  std::future<Status> reader = std::async(std::launch::async, [&] {
    return db->Read([&](Transaction& tx) -> Status {
      ASSIGN_OR_RETURN(Row before, tx.QueryOne("SELECT COUNT(*) AS n FROM counters"));
      first_read.set_value();
      committed.get_future().wait();
      ASSIGN_OR_RETURN(Row again, tx.QueryOne("SELECT COUNT(*) AS n FROM counters"));
      EXPECT_EQ(before.GetInt("n").value(), 0);
      EXPECT_EQ(again.GetInt("n").value(), 0) << "a commit appeared inside a read transaction";
      return Status::Ok();
    });
  });
  first_read.get_future().wait();
  const Status write = db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO counters (name, n) VALUES (?, ?)", {"new", 1}).status();
  });
  committed.set_value();
  ASSERT_OK(write);  // a writer is not blocked by an open reader
  ASSERT_OK(reader.get());
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "counters"));
  EXPECT_EQ(n, 1);
}

TEST_P(StoreConformanceTest, ReadTransactionsRunConcurrently) {
  auto db = OpenWithSchema();
  std::latch both_inside(2);
  auto read = [&] {
    return db->Read([&](Transaction& tx) -> Status {
      RETURN_IF_ERROR(tx.Query("SELECT n FROM counters"));
      both_inside.arrive_and_wait();  // returns only once the other reader is inside too
      return Status::Ok();
    });
  };
  std::future<Status> a = std::async(std::launch::async, read);
  std::future<Status> b = std::async(std::launch::async, read);
  ASSERT_OK(a.get());
  ASSERT_OK(b.get());
}

TEST_P(StoreConformanceTest, ReadersDuringWritesSeeConsistentState) {
  auto db = OpenWithSchema();
  constexpr std::int64_t kTotal = 1000;
  ASSERT_OK(db->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO accounts (id, balance) VALUES (1, ?), (2, 0)", {kTotal}).status();
  }));
  constexpr int kTransfers = 100;
  constexpr int kReaders = 3;
  std::atomic<bool> writer_done{false};
  std::atomic<int> reads{0};
  std::thread writer([&] {
    for (int i = 0; i < kTransfers; ++i) {
      // Two statements per transaction: a reader between them would see money vanish.
      const Status s = db->Write([&](Transaction& tx) -> Status {
        RETURN_IF_ERROR(tx.Exec("UPDATE accounts SET balance = balance - ? WHERE id = 1", {1}));
        RETURN_IF_ERROR(
            tx.Exec("INSERT INTO kv (k, i) VALUES (?, ?)", {"t" + std::to_string(i), i}));
        return tx.Exec("UPDATE accounts SET balance = balance + ? WHERE id = 2", {1}).status();
      });
      EXPECT_OK(s);
    }
    writer_done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      // At least a few reads each, then until the writer is done.
      for (int i = 0; i < 5 || !writer_done.load(); ++i) {
        const Status s = db->Read([&](Transaction& tx) -> Status {
          ASSIGN_OR_RETURN(Row row,
                           tx.QueryOne("SELECT CAST(SUM(balance) AS BIGINT) AS total, "
                                       "CAST(MAX(CASE WHEN id = 2 THEN balance ELSE 0 END) AS "
                                       "BIGINT) AS moved FROM accounts"));
          ASSIGN_OR_RETURN(Row log, tx.QueryOne("SELECT COUNT(*) AS n FROM kv"));
          EXPECT_EQ(row.GetInt("total").value(), kTotal);
          EXPECT_EQ(row.GetInt("moved").value(), log.GetInt("n").value());
          return Status::Ok();
        });
        EXPECT_OK(s);
        ++reads;
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  EXPECT_GE(reads.load(), kReaders * 5);
  ASSERT_OK_AND_ASSIGN(std::int64_t n, CountRows(*db, "kv"));
  EXPECT_EQ(n, kTransfers);
}

}  // namespace
}  // namespace moatless::store::conformance
