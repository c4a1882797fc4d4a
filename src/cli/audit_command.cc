#include <boost/json.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/iam_client.h"
#include "core/clock.h"
#include "core/secret_bytes.h"
#include "observe/audit_log.h"
#include "observe/audit_query.h"

namespace moatless::cli {
namespace {

namespace json = boost::json;

// "SEQ:HASH" as printed by `audit verify`.
bool ParseHead(const std::string& text, observe::AuditHead* head) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + colon, head->seq);
  if (ec != std::errc() || ptr != text.data() + colon) return false;
  head->hash = text.substr(colon + 1);
  return head->hash.size() == 64 &&
         head->hash.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The HMAC the server's audit key gives `value`; the value goes only in the request body.
std::optional<std::string> HashValue(const ClientSettings& settings, const std::string& value,
                                     std::string_view command) {
  auto answer = CallRestJson(settings, http::Verb::post, "/moatless/v1/audit/hash",
                             json::serialize(json::object{{"Value", value}}), "application/json",
                             "audit " + std::string(command));
  if (!answer) return std::nullopt;
  const auto* hmac = answer->if_contains("Hmac");
  if (hmac == nullptr || !hmac->is_string()) {
    std::cerr << "moatless audit " << command << ": the answer has no Hmac\n";
    return std::nullopt;
  }
  return std::string(hmac->as_string());
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

void PrintTable(const std::vector<json::object>& records) {
  static constexpr std::array<std::string_view, 6> kColumns = {"time",   "outcome",  "actor",
                                                               "action", "resource", "reason"};
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"TIME", "OUTCOME", "ACTOR", "ACTION", "RESOURCE", "REASON"});
  for (const json::object& r : records) {
    std::array<std::string, 6> row;
    for (std::size_t i = 0; i < kColumns.size(); ++i) row[i] = Str(r, kColumns[i]);
    rows.push_back(std::move(row));
  }
  std::array<std::size_t, 6> width{};
  for (const auto& row : rows) {
    for (std::size_t i = 0; i + 1 < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void AddFilterFlags(CLI::App* app, std::string& principal, std::string& action,
                    std::string& resource, std::string& decision, std::string& since,
                    std::string& until, std::vector<std::string>& fields,
                    std::vector<std::string>& secret_fields) {
  app->add_option("--principal", principal, "actor ARN or id; a trailing * matches a prefix");
  app->add_option("--action", action, "action, e.g. iam:CreateUser or iam:* (* matches any run)");
  app->add_option("--resource", resource, "resource ARN; * matches any run (arn:aws:iam::*)");
  app->add_option("--decision", decision, "allowed, denied (or deny) or error");
  app->add_option("--since", since, "from this time: RFC 3339 or ago (10m, 2h, 7d)");
  app->add_option("--until", until, "before this time: RFC 3339 or ago (10m, 2h, 7d)");
  app->add_option("--field", fields, "KEY=VALUE that a record's fields hold in clear (repeatable)");
  app->add_option("--secret-field", secret_fields,
                  "KEY=VALUE of a sensitive field: VALUE is hashed by the server's audit key "
                  "(audit hash) and the records holding that hash are shown (repeatable)");
}

}  // namespace

AuditCommands::AuditCommands(CLI::App& parent) {
  audit_ = parent.add_subcommand("audit", "Work with the tamper-evident audit log");
  audit_->require_subcommand(1);
  verify_ = audit_->add_subcommand(
      "verify",
      "Recompute the audit log's hash chain (the archived segments, then the active file) and "
      "report the first edited, deleted, reordered or malformed record. Exit 0 if intact, 1 if "
      "not.");
  auto* dir = verify_->add_option(
      "--data-dir", data_dir_,
      "data dir whose audit log (audit/archive/*, audit/audit.log) to verify [default: .moatless]");
  auto* file =
      verify_->add_option("--file", file_, "verify this one audit log file instead")->excludes(dir);
  verify_
      ->add_flag("--segment", segment_,
                 "with --file: the file is one segment of a longer log (its first record need "
                 "not be seq 1)")
      ->needs(file);
  verify_->add_option("--expect-head", expect_head_,
                      "SEQ:HASH of a head recorded earlier: also detects a log cut short or "
                      "rewritten since");
  verify_->add_flag("--json", json_, "print the report as JSON");

  query_ = audit_->add_subcommand(
      "query",
      "Search the server's audit log (signed API call, moatless:QueryAuditLog); a table of time, "
      "outcome, actor, action, resource and reason");
  AddFilterFlags(query_, principal_, action_, resource_, decision_, since_, until_, fields_,
                 secret_fields_);
  query_->add_option("--limit", limit_, "at most this many records (oldest first) [100]")
      ->check(CLI::Range(1, 1'000'000));
  query_->add_flag("--json", json_, "print the records as JSON lines, as stored");
  AddConnectionFlags(query_, connection_);

  export_ = audit_->add_subcommand(
      "export",
      "Print every matching record of the server's audit log as JSON lines, exactly as stored "
      "(for a SIEM); pages through the whole log");
  AddFilterFlags(export_, principal_, action_, resource_, decision_, since_, until_, fields_,
                 secret_fields_);
  AddConnectionFlags(export_, connection_);

  hash_ = audit_->add_subcommand(
      "hash",
      "Print the HMAC under the server's audit key of VALUE (moatless:HashAuditValue): what a "
      "sensitive field (an access key id, a token) holds when that value was recorded");
  hash_->add_option("value", value_, "the value, or - to read it from stdin")->required();
  AddConnectionFlags(hash_, connection_);
}

int AuditCommands::Run(const std::map<std::string, std::string>& environment) {
  if (verify_->parsed()) return RunVerify();
  if (query_->parsed()) return RunQuery(environment, /*exporting=*/false);
  if (export_->parsed()) return RunQuery(environment, /*exporting=*/true);
  if (hash_->parsed()) return RunHash(environment);
  return kExitUsage;
}

int AuditCommands::RunHash(const std::map<std::string, std::string>& environment) {
  std::string value = value_;
  if (value == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) {
    std::cerr << "moatless audit hash: " << settings.status().message() << "\n";
    return kExitUsage;
  }
  const auto hmac = HashValue(*settings, value, "hash");
  if (!hmac) return kExitRuntime;
  std::cout << *hmac << "\n";
  return kExitOk;
}

int AuditCommands::RunQuery(const std::map<std::string, std::string>& environment, bool exporting) {
  const std::string command = exporting ? "export" : "query";
  auto usage = [&](const std::string& message) {
    std::cerr << "moatless audit " << command << ": " << message << "\n";
    return kExitUsage;
  };
  std::string decision = decision_;
  if (decision == "deny") decision = "denied";
  if (decision == "allow") decision = "allowed";
  if (!decision.empty() && decision != "allowed" && decision != "denied" && decision != "error") {
    return usage("--decision must be allowed, denied (deny) or error");
  }
  // Relative times are fixed now, so that every page of an export asks for the same window.
  std::vector<std::pair<std::string, std::string>> params;
  const core::WallTime now = core::RealClock().Now();
  for (const auto& [name, text] : {std::pair{"since", &since_}, std::pair{"until", &until_}}) {
    if (text->empty()) continue;
    auto t = observe::ParseAuditTime(*text, now);
    if (!t.ok()) return usage(std::string("--") + name + ": " + t.status().message());
    params.emplace_back(name, core::FormatRfc3339(*t));
  }
  if (!principal_.empty()) params.emplace_back("principal", principal_);
  if (!action_.empty()) params.emplace_back("action", action_);
  if (!resource_.empty()) params.emplace_back("resource", resource_);
  if (!decision.empty()) params.emplace_back("decision", decision);
  for (const std::string& f : fields_) {
    if (f.find('=') == std::string::npos || f.front() == '=') {
      return usage("--field must be KEY=VALUE");
    }
    params.emplace_back("field", f);
  }
  auto settings = ResolveClientSettings(connection_.endpoint, connection_.profile,
                                        connection_.region, environment);
  if (!settings.ok()) return usage(settings.status().message());
  for (const std::string& f : secret_fields_) {
    const auto eq = f.find('=');
    if (eq == std::string::npos || eq == 0) return usage("--secret-field must be KEY=VALUE");
    const auto hmac = HashValue(*settings, f.substr(eq + 1), command);
    if (!hmac) return kExitRuntime;
    params.emplace_back("field", f.substr(0, eq) + "=" + *hmac);
  }

  const std::size_t wanted = exporting ? SIZE_MAX : limit_;
  std::size_t got = 0;
  std::vector<json::object> table;
  std::string after;
  for (;;) {
    boost::urls::url url("/moatless/v1/audit/records");
    for (const auto& [k, v] : params) url.params().append({k, v});
    url.params().append({"limit", std::to_string(std::min<std::size_t>(
                                      wanted - got, observe::kMaxAuditQueryLimit))});
    if (!after.empty()) url.params().append({"after", after});
    auto page = CallRestJson(*settings, http::Verb::get, std::string(url.buffer()), "", "",
                             "audit " + std::string(command));
    if (!page) return kExitRuntime;
    const json::value* records = page->if_contains("Records");
    if (records == nullptr || !records->is_array()) {
      std::cerr << "moatless audit " << command << ": the answer has no Records\n";
      return kExitRuntime;
    }
    for (const json::value& r : records->as_array()) {
      if (!r.is_object() || got >= wanted) continue;
      ++got;
      // Records are stored in canonical form (Boost.JSON's own serialisation), so printing the
      // parsed object gives back the stored bytes.
      if (exporting || json_) {
        std::cout << json::serialize(r) << "\n";
      } else {
        table.push_back(r.as_object());
      }
    }
    std::cout.flush();
    after = Str(*page, "NextToken");
    if (after.empty() || got >= wanted) break;
  }
  if (!exporting && !json_) PrintTable(table);
  return kExitOk;
}

int AuditCommands::RunVerify() {
  observe::AuditVerifyOptions options;
  if (!expect_head_.empty()) {
    observe::AuditHead head;
    if (!ParseHead(expect_head_, &head)) {
      std::cerr << "moatless audit verify: --expect-head must be SEQ:HASH (64 hex digits)\n";
      return kExitUsage;
    }
    options.expected_head = head;
  }
  options.segment = segment_;
  const std::string path = file_.empty() ? data_dir_ + "/audit/audit.log" : file_;
  auto report = file_.empty() ? observe::VerifyAuditSegments(path, options)
                              : observe::VerifyAuditLog(path, options);
  if (!report.ok()) {
    std::cerr << "moatless audit verify: " << report.status().message() << "\n";
    return kExitRuntime;
  }
  if (json_) {
    json::object out{{"ok", report->ok()},
                     {"file", path},
                     {"files", report->files},
                     {"records", report->records},
                     {"head", {{"seq", report->head.seq}, {"hash", report->head.hash}}}};
    if (!report->ok()) {
      json::object bad{{"problem", observe::AuditProblemName(report->problem)},
                       {"file", report->file},
                       {"line", report->line},
                       {"detail", report->detail}};
      if (report->seq) bad["seq"] = *report->seq;
      out["first_bad"] = std::move(bad);
    }
    std::cout << json::serialize(out) << "\n";
  } else {
    std::cout << report->ToString() << "\n";
    if (report->ok()) {
      std::cout << "head " << report->head.seq << ":" << report->head.hash
                << "  (keep it elsewhere; pass it as --expect-head to detect truncation)\n";
    }
  }
  return report->ok() ? kExitOk : kExitRuntime;
}

}  // namespace moatless::cli
