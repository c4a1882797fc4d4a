#include "runtime/function_registry.h"

#include <boost/json.hpp>
#include <charconv>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <utility>

namespace moatless::runtime {
namespace {

namespace json = boost::json;

constexpr std::string_view kNotFoundType = "ResourceNotFoundException";
constexpr std::string_view kInvalidParameterType = "InvalidParameterValueException";

// Names come from callers: keep what an error message repeats of them short.
std::string Shown(std::string_view name) {
  return name.size() <= 64 ? std::string(name) : std::string(name.substr(0, 64)) + "...";
}

core::Status FunctionNotFound(std::string_view name) {
  return core::NotFoundError("Function not found: " + Shown(name))
      .WithAwsType(std::string(kNotFoundType));
}

core::Status VersionNotFound(std::string_view name, std::int64_t version) {
  return core::NotFoundError("Function not found: " + Shown(name) + " version " +
                             std::to_string(version))
      .WithAwsType(std::string(kNotFoundType));
}

core::Status InvalidParameter(core::Status status) {
  return std::move(status).WithAwsType(std::string(kInvalidParameterType));
}

// "" and "$LATEST": nullopt (the highest version); a decimal number: that version.
core::Result<std::optional<std::int64_t>> ParseQualifier(std::string_view qualifier) {
  if (qualifier.empty() || qualifier == "$LATEST") return std::optional<std::int64_t>();
  std::int64_t version = 0;
  const char* end = qualifier.data() + qualifier.size();
  const bool digits = qualifier.find_first_not_of("0123456789") == std::string_view::npos;
  auto [ptr, ec] = std::from_chars(qualifier.data(), end, version);
  if (!digits || ec != std::errc() || ptr != end || version < 1) {
    return InvalidParameter(core::InvalidArgumentError(
        "qualifier '" + Shown(qualifier) + "' must be $LATEST or a version number (1, 2, ...)"));
  }
  return std::optional<std::int64_t>(version);
}

core::Result<std::string> StringMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return core::InvalidArgumentError("missing \"" + std::string(key) + "\"");
  if (!v->is_string()) {
    return core::InvalidArgumentError("\"" + std::string(key) + "\" is not a string");
  }
  return std::string(v->get_string());
}

// A non-negative integer no larger than max.
core::Result<std::int64_t> IntegerMember(const json::object& o, std::string_view key,
                                         std::int64_t max) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return core::InvalidArgumentError("missing \"" + std::string(key) + "\"");
  std::optional<std::int64_t> n;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64() &&
             v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max())) {
    n = static_cast<std::int64_t>(v->get_uint64());
  }
  if (!n || *n < 0 || *n > max) {
    return core::InvalidArgumentError("\"" + std::string(key) + "\" is not an integer in 0-" +
                                      std::to_string(max));
  }
  return *n;
}

core::Result<FunctionConfig> DecodeObject(const json::value& root) {
  if (!root.is_object()) return core::InvalidArgumentError("not a JSON object");
  const json::object& o = root.get_object();
  FunctionConfig f;
  f.version = "$LATEST";
  ASSIGN_OR_RETURN(f.name, StringMember(o, "name"));
  ASSIGN_OR_RETURN(const std::string runtime, StringMember(o, "runtime"));
  ASSIGN_OR_RETURN(f.runtime, ParseRuntime(runtime));
  ASSIGN_OR_RETURN(f.handler, StringMember(o, "handler"));
  ASSIGN_OR_RETURN(f.code_dir, StringMember(o, "code_dir"));
  ASSIGN_OR_RETURN(const std::int64_t memory,
                   IntegerMember(o, "memory_mb", std::numeric_limits<std::uint32_t>::max()));
  f.memory_mb = static_cast<std::uint32_t>(memory);
  ASSIGN_OR_RETURN(const std::int64_t timeout_ms,
                   IntegerMember(o, "timeout_ms", std::numeric_limits<std::int64_t>::max()));
  f.timeout = std::chrono::milliseconds(timeout_ms);
  const json::value* env = o.if_contains("environment");
  if (env == nullptr || !env->is_object()) {
    return core::InvalidArgumentError("\"environment\" is not an object");
  }
  for (const auto& [key, value] : env->get_object()) {
    if (!value.is_string()) {
      return core::InvalidArgumentError("environment variable '" + std::string(key) +
                                        "' is not a string");
    }
    f.environment.emplace(std::string(key), std::string(value.get_string()));
  }
  ASSIGN_OR_RETURN(f.role_arn, StringMember(o, "role_arn"));
  if (const json::value* rc = o.if_contains("reserved_concurrency"); rc && !rc->is_null()) {
    ASSIGN_OR_RETURN(
        const std::int64_t reserved,
        IntegerMember(o, "reserved_concurrency", std::numeric_limits<std::uint32_t>::max()));
    f.reserved_concurrency = static_cast<std::uint32_t>(reserved);
  }
  const json::value* egress = o.if_contains("egress");
  if (egress == nullptr || !egress->is_array()) {
    return core::InvalidArgumentError("\"egress\" is not an array");
  }
  for (const json::value& entry : egress->get_array()) {
    if (!entry.is_string()) return core::InvalidArgumentError("an egress entry is not a string");
    f.egress.emplace_back(entry.get_string());
  }
  return f;
}

// A stored row as the configuration it holds, validated; kInternal if it is not one.
core::Result<FunctionConfig> DecodeRow(const store::Row& row) {
  ASSIGN_OR_RETURN(const std::string name, row.GetText("name"));
  ASSIGN_OR_RETURN(const std::int64_t version, row.GetInt("version"));
  ASSIGN_OR_RETURN(const std::string config, row.GetText("config"));
  const std::string what =
      "stored configuration of function " + Shown(name) + " version " + std::to_string(version);
  core::Result<FunctionConfig> decoded = FunctionConfigFromJson(config);
  if (!decoded.ok())
    return core::InternalError(what + " is corrupt: " + decoded.status().message());
  FunctionConfig f = std::move(decoded).value();
  if (f.name != name) return core::InternalError(what + " is corrupt: it names another function");
  f.version = std::to_string(version);
  if (core::Status valid = ValidateFunction(f); !valid.ok()) {
    return core::InternalError(what + " is corrupt: " + valid.message());
  }
  return f;
}

core::Result<std::vector<FunctionConfig>> DecodeRows(const std::vector<store::Row>& rows) {
  std::vector<FunctionConfig> out;
  out.reserve(rows.size());
  for (const store::Row& row : rows) {
    ASSIGN_OR_RETURN(FunctionConfig f, DecodeRow(row));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string FunctionConfigToJson(const FunctionConfig& f) {
  json::object o;
  o["name"] = f.name;
  o["runtime"] = RuntimeName(f.runtime);
  o["handler"] = f.handler;
  o["code_dir"] = f.code_dir;
  o["memory_mb"] = static_cast<std::int64_t>(f.memory_mb);
  o["timeout_ms"] = static_cast<std::int64_t>(f.timeout.count());
  json::object env;
  for (const auto& [key, value] : f.environment) env[key] = value;
  o["environment"] = std::move(env);
  o["role_arn"] = f.role_arn;
  if (f.reserved_concurrency) {
    o["reserved_concurrency"] = static_cast<std::int64_t>(*f.reserved_concurrency);
  }
  json::array egress;
  for (const std::string& entry : f.egress) egress.emplace_back(entry);
  o["egress"] = std::move(egress);
  return json::serialize(o);
}

core::Result<FunctionConfig> FunctionConfigFromJson(std::string_view text) {
  try {
    boost::system::error_code ec;
    json::value root = json::parse(text, ec);
    if (ec) return core::InvalidArgumentError("not JSON: " + ec.message());
    return DecodeObject(root);
  } catch (const std::exception& e) {
    // Boost.JSON throws only for exhausted memory and limits (e.g. nesting depth).
    return core::InvalidArgumentError(std::string("not a function configuration: ") + e.what());
  }
}

FunctionRegistry::FunctionRegistry(store::Database& db, const core::Clock& clock)
    : db_(db), clock_(clock) {}

core::Result<FunctionConfig> FunctionRegistry::Publish(FunctionConfig f) {
  return store::TransactValue(db_, {}, [&](store::Transaction& tx) { return PublishIn(tx, f); });
}

core::Result<FunctionConfig> FunctionRegistry::PublishIn(store::Transaction& tx, FunctionConfig f) {
  f.version = "$LATEST";  // what the caller sent is not ours to keep
  if (core::Status valid = ValidateFunction(f); !valid.ok()) return InvalidParameter(valid);
  const std::string config = FunctionConfigToJson(f);
  const std::string created_at = core::FormatRfc3339(clock_.Now());
  ASSIGN_OR_RETURN(
      const store::Row row,
      tx.QueryOne("SELECT COALESCE(MAX(version), 0) AS v FROM functions WHERE name = ?", {f.name}));
  ASSIGN_OR_RETURN(const std::int64_t highest, row.GetInt("v"));
  const std::int64_t next = highest + 1;
  RETURN_IF_ERROR(
      tx.Exec("INSERT INTO functions (name, version, config, created_at) VALUES (?, ?, ?, ?)",
              {f.name, next, config, created_at}));
  f.version = std::to_string(next);
  return f;
}

core::Result<FunctionConfig> FunctionRegistry::Get(std::string_view name,
                                                   std::string_view qualifier) {
  ASSIGN_OR_RETURN(const std::optional<std::int64_t> version, ParseQualifier(qualifier));
  ASSIGN_OR_RETURN(
      const std::optional<store::Row> row,
      store::TransactValue(
          db_, {.access = store::Access::kReadOnly},
          [&](store::Transaction& tx) -> core::Result<std::optional<store::Row>> {
            if (version) {
              return tx.QueryOptional(
                  "SELECT name, version, config FROM functions WHERE name = ? AND version = ?",
                  {name, *version});
            }
            return tx.QueryOptional(
                "SELECT name, version, config FROM functions WHERE name = ? AND version = "
                "(SELECT MAX(version) FROM functions WHERE name = ?)",
                {name, name});
          }));
  if (!row) return version ? VersionNotFound(name, *version) : FunctionNotFound(name);
  return DecodeRow(*row);
}

core::Result<std::vector<FunctionConfig>> FunctionRegistry::List() {
  ASSIGN_OR_RETURN(
      const std::vector<store::Row> rows,
      store::TransactValue(db_, {.access = store::Access::kReadOnly}, [&](store::Transaction& tx) {
        return tx.Query(
            "SELECT f.name AS name, f.version AS version, "
            "f.config AS config FROM functions f JOIN "
            "(SELECT name, MAX(version) AS v FROM functions "
            "GROUP BY name) m ON f.name = m.name AND "
            "f.version = m.v ORDER BY f.name");
      }));
  return DecodeRows(rows);
}

core::Result<std::vector<FunctionConfig>> FunctionRegistry::Versions(std::string_view name) {
  ASSIGN_OR_RETURN(
      const std::vector<store::Row> rows,
      store::TransactValue(db_, {.access = store::Access::kReadOnly}, [&](store::Transaction& tx) {
        return tx.Query(
            "SELECT name, version, config FROM functions "
            "WHERE name = ? ORDER BY version",
            {name});
      }));
  if (rows.empty()) return FunctionNotFound(name);
  return DecodeRows(rows);
}

core::Status FunctionRegistry::Delete(std::string_view name) {
  return db_.Write([&](store::Transaction& tx) { return DeleteIn(tx, name); });
}

core::Status FunctionRegistry::DeleteIn(store::Transaction& tx, std::string_view name) {
  ASSIGN_OR_RETURN(const std::int64_t removed,
                   tx.Exec("DELETE FROM functions WHERE name = ?", {name}));
  if (removed == 0) return FunctionNotFound(name);
  return tx.Exec("DELETE FROM async_invocations WHERE function_name = ?", {name}).status();
}

}  // namespace moatless::runtime
