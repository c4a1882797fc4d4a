#include <boost/json.hpp>
#include <charconv>
#include <iostream>

#include "cli/commands.h"
#include "observe/audit_log.h"

namespace moatless::cli {
namespace {

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

}  // namespace

AuditCommands::AuditCommands(CLI::App& parent) {
  audit_ = parent.add_subcommand("audit", "Work with the tamper-evident audit log");
  audit_->require_subcommand(1);
  verify_ = audit_->add_subcommand(
      "verify",
      "Recompute the audit log's hash chain and report the first edited, deleted, reordered or "
      "malformed record. Exit 0 if intact, 1 if not.");
  auto* dir = verify_->add_option("--data-dir", data_dir_,
                                  "data dir whose audit/audit.log to verify [default: .moatless]");
  verify_->add_option("--file", file_, "verify this audit log file instead")->excludes(dir);
  verify_->add_option("--expect-head", expect_head_,
                      "SEQ:HASH of a head recorded earlier: also detects a log cut short or "
                      "rewritten since");
  verify_->add_flag("--json", json_, "print the report as JSON");
}

int AuditCommands::Run() {
  observe::AuditVerifyOptions options;
  if (!expect_head_.empty()) {
    observe::AuditHead head;
    if (!ParseHead(expect_head_, &head)) {
      std::cerr << "moatless audit verify: --expect-head must be SEQ:HASH (64 hex digits)\n";
      return kExitUsage;
    }
    options.expected_head = head;
  }
  const std::string path = file_.empty() ? data_dir_ + "/audit/audit.log" : file_;
  auto report = observe::VerifyAuditLog(path, options);
  if (!report.ok()) {
    std::cerr << "moatless audit verify: " << report.status().message() << "\n";
    return kExitRuntime;
  }
  if (json_) {
    boost::json::object out{{"ok", report->ok()},
                            {"file", path},
                            {"records", report->records},
                            {"head", {{"seq", report->head.seq}, {"hash", report->head.hash}}}};
    if (!report->ok()) {
      boost::json::object bad{{"problem", observe::AuditProblemName(report->problem)},
                              {"line", report->line},
                              {"detail", report->detail}};
      if (report->seq) bad["seq"] = *report->seq;
      out["first_bad"] = std::move(bad);
    }
    std::cout << boost::json::serialize(out) << "\n";
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
