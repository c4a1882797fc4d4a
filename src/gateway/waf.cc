#include "gateway/waf.h"

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rule_message.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

namespace moatless::gateway {
namespace {

// The CRS 3.3 request rule files, in load order (see waf.h for the ones left out and why).
constexpr std::string_view kCrsRuleFiles[] = {
    "REQUEST-901-INITIALIZATION.conf",
    "REQUEST-911-METHOD-ENFORCEMENT.conf",
    "REQUEST-913-SCANNER-DETECTION.conf",
    "REQUEST-920-PROTOCOL-ENFORCEMENT.conf",
    "REQUEST-921-PROTOCOL-ATTACK.conf",
    "REQUEST-922-MULTIPART-ATTACK.conf",
    "REQUEST-930-APPLICATION-ATTACK-LFI.conf",
    "REQUEST-931-APPLICATION-ATTACK-RFI.conf",
    "REQUEST-932-APPLICATION-ATTACK-RCE.conf",
    "REQUEST-933-APPLICATION-ATTACK-PHP.conf",
    "REQUEST-934-APPLICATION-ATTACK-NODEJS.conf",
    "REQUEST-941-APPLICATION-ATTACK-XSS.conf",
    "REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
    "REQUEST-943-APPLICATION-ATTACK-SESSION-FIXATION.conf",
    "REQUEST-944-APPLICATION-ATTACK-JAVA.conf",
    "REQUEST-949-BLOCKING-EVALUATION.conf",
};

// The crs-setup.conf version the rules above expect (rule 901001 refuses every request otherwise).
constexpr int kCrsSetupVersion = 334;
// SecArgumentsLimit: ModSecurity silently drops arguments past this many, so rule 10011 scores a
// request that reaches it.
constexpr int kArgumentsLimit = 1000;
constexpr int kJsonDepthLimit = 512;
// At most this much of a rule's logged data goes into a log line (as ModSecurity does).
constexpr std::size_t kMaxDataBytes = 200;
// Secret values shorter than this are not scrubbed from log lines (they would mangle them).
constexpr std::size_t kMinScrubbedSecret = 4;

// The rules that decide a refusal in anomaly-scoring mode: excluding them would turn the WAF off
// while it still looks on.
bool IsControlRule(int id) {
  return (id >= 901000 && id <= 901999) || (id >= 949000 && id <= 949999);
}
// The tags of 949100/949110 (SecRuleRemoveByTag of one of them removes the blocking decision).
constexpr std::string_view kControlTags[] = {"application-multi", "language-multi",
                                             "platform-multi", "attack-generic"};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// Replaces every occurrence of `secret` (ignoring ASCII case) in `text` with "[redacted]".
void Scrub(std::string& text, std::string_view secret) {
  if (secret.size() < kMinScrubbedSecret) return;
  const std::string lower_secret = Lower(secret);
  std::string lower_text = Lower(text);
  std::size_t pos = 0;
  while ((pos = lower_text.find(lower_secret, pos)) != std::string::npos) {
    text.replace(pos, secret.size(), "[redacted]");
    lower_text.replace(pos, secret.size(), "[redacted]");
    pos += 10;
  }
}

// ModSecurity-style quoting: the result holds no quote, backslash, control or non-ASCII byte, so
// a payload can neither end a field nor start a log line.
std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out.append(buf);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string_view SeverityName(int severity) {
  static constexpr std::string_view kNames[] = {"EMERGENCY", "ALERT",  "CRITICAL", "ERROR",
                                                "WARNING",   "NOTICE", "INFO",     "DEBUG"};
  return severity >= 0 && severity < 8 ? kNames[severity] : "UNKNOWN";
}

// The variable a rule matched, from ModSecurity's match text ("Matched "Operator `Rx' with
// parameter `...' against variable `ARGS:id' (Value: `...' )"); empty if there is none.
std::string_view MatchedVariable(std::string_view match) {
  constexpr std::string_view kStart = "against variable `";
  std::size_t begin = match.find(kStart);
  if (begin == std::string_view::npos) return {};
  begin += kStart.size();
  std::size_t end = match.find("' (Value: `", begin);
  if (end == std::string_view::npos) end = match.find('\'', begin);
  if (end == std::string_view::npos) end = match.size();
  return match.substr(begin, end - begin);
}

// The variable named by CRS's usual logdata ("Matched Data: X found within ARGS:id: ...").
std::string_view DataVariable(std::string_view data) {
  constexpr std::string_view kStart = " found within ";
  std::size_t begin = data.find(kStart);
  if (begin == std::string_view::npos) return {};
  begin += kStart.size();
  return data.substr(begin, data.find(": ", begin) - begin);
}

// The rule ids and log lines of one transaction (it lives on Inspect's stack), with the secret
// header values of its request to scrub.
class TransactionLog {
 public:
  TransactionLog(const std::vector<std::string>& secret_headers, const WafRequest& request)
      : secret_headers_(secret_headers) {
    for (const auto& [name, value] : request.headers) {
      const std::string lower = Lower(name);
      if (std::find(secret_headers_.begin(), secret_headers_.end(), lower) ==
          secret_headers_.end()) {
        continue;
      }
      secret_values_.push_back(value);
      if (lower == "cookie") AddCookieValues(value);
      // "Bearer <token>", "Basic <credentials>", SigV4's "AWS4-HMAC-SHA256 Credential=...".
      if (std::size_t space = value.find(' '); space != std::string::npos) {
        secret_values_.push_back(value.substr(space + 1));
      }
    }
    // Longest first, so that a value containing another is scrubbed whole.
    std::sort(secret_values_.begin(), secret_values_.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }

  void Add(const modsecurity::RuleMessage& message) {
    const int id = static_cast<int>(message.m_ruleId);
    if (id != 0 && std::find(rule_ids_.begin(), rule_ids_.end(), id) == rule_ids_.end()) {
      rule_ids_.push_back(id);
    }
    AddLine(Format(message));
  }

  // For failures of the engine itself.
  void AddNote(std::string_view note) { AddLine("moatless: " + Escape(note)); }

  std::vector<int> TakeRuleIds() { return std::move(rule_ids_); }
  std::string TakeLog() { return std::move(log_); }

 private:
  void AddCookieValues(std::string_view header) {
    while (!header.empty()) {
      std::size_t end = header.find(';');
      std::string_view pair = header.substr(0, end);
      if (std::size_t eq = pair.find('='); eq != std::string_view::npos) {
        secret_values_.emplace_back(pair.substr(eq + 1));
      }
      if (end == std::string_view::npos) break;
      header.remove_prefix(end + 1);
    }
  }

  bool IsSecretVariable(std::string_view variable) const {
    // Arguments (query, form or JSON: "ARGS:json.user.password") whose own name says they hold a
    // credential: what they matched is not logged either.
    if (StartsWithNoCase(variable, "ARGS")) {
      std::string name = Lower(variable.substr(variable.find_last_of(":.") + 1));
      std::erase_if(name, [](char c) { return c == '_' || c == '-'; });
      for (std::string_view word : {"password", "passwd", "secret", "token", "apikey", "credential",
                                    "privatekey", "authorization"}) {
        if (name.find(word) != std::string::npos) return true;
      }
    }
    for (const std::string& header : secret_headers_) {
      if (StartsWithNoCase(variable, "REQUEST_HEADERS:" + header)) return true;
      if (header == "cookie" && StartsWithNoCase(variable, "REQUEST_COOKIES")) return true;
    }
    return false;
  }

  std::string Format(const modsecurity::RuleMessage& message) const {
    const std::string_view variable = MatchedVariable(message.m_match);
    std::string msg = message.m_message;
    std::string data = message.m_data.substr(0, kMaxDataBytes);
    // Some rules (libinjection's 942100, 941100) name the variable only in their logdata.
    if (IsSecretVariable(variable) || IsSecretVariable(DataVariable(message.m_data))) {
      data = "[redacted]";
    }
    for (const std::string& secret : secret_values_) {
      Scrub(msg, secret);
      Scrub(data, secret);
    }
    std::string line = message.m_isDisruptive ? "ModSecurity: Access denied. " : "ModSecurity: ";
    line += "[id \"" + std::to_string(message.m_ruleId) + "\"] [phase \"" +
            std::to_string(message.m_phase) + "\"] [severity \"" +
            std::string(SeverityName(message.m_severity)) + "\"] [msg \"" + Escape(msg) + "\"]";
    if (!variable.empty()) line += " [var \"" + Escape(variable) + "\"]";
    if (!data.empty()) line += " [data \"" + Escape(data) + "\"]";
    return line;
  }

  void AddLine(const std::string& line) {
    if (truncated_) return;
    constexpr std::string_view kTruncated = "[log truncated]";
    if (log_.size() + line.size() + 1 + kTruncated.size() > kMaxWafLogBytes) {
      log_ += kTruncated;
      truncated_ = true;
      return;
    }
    log_ += line;
    log_ += '\n';
  }

  const std::vector<std::string>& secret_headers_;
  std::vector<std::string> secret_values_;
  std::vector<int> rule_ids_;
  std::string log_;
  bool truncated_ = false;
};

// ModSecurity's server log callback. It sees warnings only (a disruptive rule's message goes to
// the intervention instead), so Inspect reads the transaction's complete list of rule messages;
// without a callback, ModSecurity would write every match to std::cerr.
void IgnoreServerLog(void* /*data*/, const void* /*message*/) {}

}  // namespace

core::Status ValidateWafSettings(const WafSettings& s) {
  if (s.paranoia_level < 1 || s.paranoia_level > 4) {
    return core::InvalidArgumentError("WAF paranoia_level must be 1 to 4, not " +
                                      std::to_string(s.paranoia_level));
  }
  if (s.inbound_anomaly_threshold < 1 || s.inbound_anomaly_threshold > 10000) {
    return core::InvalidArgumentError("WAF inbound_anomaly_threshold must be 1 to 10000, not " +
                                      std::to_string(s.inbound_anomaly_threshold));
  }
  if (s.request_body_limit < 1024 || s.request_body_limit > (std::size_t{1} << 30)) {
    return core::InvalidArgumentError("WAF request_body_limit must be 1 KiB to 1 GiB");
  }
  for (int id : s.excluded_rule_ids) {
    if (id <= 0) {
      return core::InvalidArgumentError("WAF excluded rule id " + std::to_string(id) +
                                        " is not a rule id");
    }
    if (IsControlRule(id)) {
      return core::InvalidArgumentError(
          "WAF rule " + std::to_string(id) +
          " cannot be excluded: CRS initialisation and blocking evaluation (901xxx, 949xxx) "
          "decide every verdict; use mode or inbound_anomaly_threshold instead");
    }
  }
  const auto is_tag_char = [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':';
  };
  for (const std::string& tag : s.excluded_tags) {
    if (tag.empty() || tag.size() > 128 || !std::all_of(tag.begin(), tag.end(), is_tag_char)) {
      return core::InvalidArgumentError("WAF excluded tag \"" + tag +
                                        "\" must be 1-128 characters of [A-Za-z0-9_.:/-]");
    }
    for (std::string_view control : kControlTags) {
      if (tag == control) {
        return core::InvalidArgumentError("WAF tag \"" + tag +
                                          "\" cannot be excluded: CRS's blocking evaluation "
                                          "(949110) carries it");
      }
    }
  }
  if (s.allowed_methods.empty()) {
    return core::InvalidArgumentError("WAF allowed_methods must not be empty");
  }
  for (const std::string& method : s.allowed_methods) {
    if (method.empty() || method.size() > 32 ||
        !std::all_of(method.begin(), method.end(), [](unsigned char c) {
          return std::isupper(c) || std::isdigit(c) || c == '-' || c == '_';
        })) {
      return core::InvalidArgumentError("WAF allowed method \"" + method +
                                        "\" must be an upper-case HTTP method name");
    }
  }
  for (const std::string& header : s.secret_headers) {
    if (header.empty()) return core::InvalidArgumentError("WAF secret header name is empty");
  }
  return core::Status::Ok();
}

namespace {

// The folder holding the CRS rule files: `crs_dir` itself, or its rules/ subfolder.
core::Result<std::string> ResolveRulesDir(std::string crs_dir) {
  if (crs_dir.empty()) crs_dir = std::string(kDebianCrsRulesDir);
  std::error_code ec;
  if (!std::filesystem::is_directory(crs_dir, ec)) {
    return core::FailedPreconditionError(
        "WAF rules directory " + crs_dir + " does not exist or is not a directory" +
        (ec ? " (" + ec.message() + ")" : std::string()) + "; install the modsecurity-crs package");
  }
  const std::filesystem::path rules = std::filesystem::path(crs_dir) / "rules";
  if (!std::filesystem::exists(std::filesystem::path(crs_dir) / kCrsRuleFiles[0], ec) &&
      std::filesystem::is_directory(rules, ec)) {
    return rules.string();
  }
  while (crs_dir.size() > 1 && crs_dir.back() == '/') crs_dir.pop_back();
  return crs_dir;
}

core::Result<std::vector<std::string>> RuleFiles(const std::string& rules_dir) {
  std::vector<std::string> files;
  for (std::string_view name : kCrsRuleFiles) {
    std::string path = (std::filesystem::path(rules_dir) / name).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec) || ::access(path.c_str(), R_OK) != 0) {
      return core::FailedPreconditionError("WAF rule file " + path +
                                           " is missing or unreadable (CRS 3.3 layout expected)");
    }
    // ModSecurity's parser takes one Include argument up to the first blank.
    if (path.find_first_of(" \t\r\n\"'") != std::string::npos) {
      return core::FailedPreconditionError("WAF rule file path " + path +
                                           " contains blanks or quotes");
    }
    files.push_back(std::move(path));
  }
  return files;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// Our own rules score the way CRS rules do, so the one decision (949110) sees them.
constexpr std::string_view kCriticalScore =
    "severity:'CRITICAL',setvar:'tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}'";

std::string BuildConfig(const WafSettings& s, const std::vector<std::string>& files) {
  const std::string limit = std::to_string(s.request_body_limit);
  std::string c;
  c += "# moatless gateway WAF: generated by WafEngine::Create; Debian's /etc/modsecurity is not "
       "read.\n";
  c += std::string("SecRuleEngine ") + (s.mode == WafMode::kBlock ? "On" : "DetectionOnly") + "\n";
  c += "SecRequestBodyAccess On\n";
  c += "SecRequestBodyLimit " + limit + "\n";
  c += "SecRequestBodyNoFilesLimit " + limit + "\n";
  c += "SecRequestBodyLimitAction Reject\n";
  c += "SecRequestBodyJsonDepthLimit " + std::to_string(kJsonDepthLimit) + "\n";
  c += "SecArgumentsLimit " + std::to_string(kArgumentsLimit) + "\n";
  c += "SecResponseBodyAccess Off\n";
  c += "SecAuditEngine Off\n";
  // What crs-setup.conf would hold.
  c += "SecDefaultAction \"phase:1,log,auditlog,pass\"\n";
  c += "SecDefaultAction \"phase:2,log,auditlog,pass\"\n";
  c += "SecAction \"id:900000,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=" +
       std::to_string(s.paranoia_level) + "\"\n";
  c +=
      "SecAction \"id:900110,phase:1,pass,nolog,t:none,setvar:tx.inbound_anomaly_score_threshold=" +
      std::to_string(s.inbound_anomaly_threshold) +
      ",setvar:tx.outbound_anomaly_score_threshold=4\"\n";
  c += "SecAction \"id:900200,phase:1,pass,nolog,t:none,setvar:'tx.allowed_methods=" +
       Join(s.allowed_methods, " ") + "'\"\n";
  c +=
      "SecAction \"id:900010,phase:1,pass,nolog,t:none,setvar:tx.enforce_bodyproc_urlencoded=1\"\n";
  c += "SecAction \"id:900990,phase:1,pass,nolog,t:none,setvar:tx.crs_setup_version=" +
       std::to_string(kCrsSetupVersion) + "\"\n";
  // CRS's default list plus text/plain, which we parse as JSON (below).
  c += "SecAction \"id:900220,phase:1,pass,nolog,t:none,setvar:'tx.allowed_request_content_type="
       "|application/x-www-form-urlencoded| |multipart/form-data| |multipart/related| |text/xml| "
       "|application/xml| |application/soap+xml| |application/json| |application/cloudevents+json| "
       "|application/cloudevents-batch+json| |text/plain|'\"\n";
  // Body processors by Content-Type; they must run before 901340/901350 look at
  // REQBODY_PROCESSOR. A body without a Content-Type, or text/plain (what fetch() sends for a
  // string body), is parsed as JSON: functions behind this gateway JSON.parse bodies whatever
  // their declared type, so such a body is inspected as JSON or, if it is not JSON, refused by
  // 10010 (CRS alone would refuse text/plain by policy and let an undeclared body through
  // unparsed).
  c += "SecRule REQUEST_HEADERS:Content-Type \"@rx (?i)^\\s*(?:application/(?:[^;\\s]*\\+)?json|"
       "text/plain)\\s*(?:;|$)\" \"id:10001,phase:1,pass,nolog,t:none,"
       "ctl:requestBodyProcessor=JSON\"\n";
  c += "SecRule REQUEST_HEADERS:Content-Type \"@rx (?i)^\\s*application/x-www-form-urlencoded\\s*"
       "(?:;|$)\" \"id:10002,phase:1,pass,nolog,t:none,ctl:requestBodyProcessor=URLENCODED\"\n";
  c += "SecRule &REQUEST_HEADERS:Content-Type \"@eq 0\" \"id:10003,phase:1,pass,nolog,t:none,"
       "ctl:requestBodyProcessor=JSON\"\n";
  c += "Include " + files.front() + "\n";
  // After 901 (which zeroes the scores in phase 1), before everything that reads them.
  c += "SecRule REQUEST_URI_RAW \"@rx ^[^?#]*%3[fF]\" \"id:10020,phase:1,block,t:none,log,"
       "msg:'Encoded question mark in the path (compensates CVE-2024-1019)',"
       "logdata:'%{MATCHED_VAR}',tag:'moatless',tag:'moatless/cve-2024-1019',"
       "tag:'attack-protocol',";
  c += kCriticalScore;
  c += "\"\n";
  c += "SecRule REQBODY_ERROR \"!@eq 0\" \"id:10010,phase:2,block,t:none,log,"
       "msg:'Request body cannot be inspected',logdata:'%{REQBODY_ERROR_MSG}',"
       "tag:'moatless',tag:'moatless/request-body',tag:'attack-protocol',";
  c += kCriticalScore;
  c += "\"\n";
  c += "SecRule &ARGS \"@ge " + std::to_string(kArgumentsLimit) +
       "\" \"id:10011,phase:2,block,t:none,log,"
       "msg:'Too many arguments to inspect',logdata:'%{MATCHED_VAR} arguments',"
       "tag:'moatless',tag:'moatless/request-body',tag:'attack-protocol',";
  c += kCriticalScore;
  c += "\"\n";
  for (std::size_t i = 1; i < files.size(); ++i) c += "Include " + files[i] + "\n";
  if (!s.excluded_rule_ids.empty()) {
    c += "SecRuleRemoveById";
    for (int id : s.excluded_rule_ids) c += " " + std::to_string(id);
    c += "\n";
  }
  for (const std::string& tag : s.excluded_tags) c += "SecRuleRemoveByTag \"" + tag + "\"\n";
  return c;
}

// ModSecurity's parser error, on one line.
std::string ParserError(const modsecurity::RulesSet& rules) {
  std::string error = rules.m_parserError.str();
  while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
  std::replace(error.begin(), error.end(), '\n', ' ');
  return error.empty() ? "unknown error" : error;
}

}  // namespace

std::string_view WafModeName(WafMode mode) {
  switch (mode) {
    case WafMode::kOff:
      return "off";
    case WafMode::kDetect:
      return "detect";
    case WafMode::kBlock:
      return "block";
  }
  return "unknown";
}

struct WafEngine::Impl {
  WafSettings settings;
  std::vector<std::string> secret_headers;  // lower case
  std::string config;
  std::vector<std::string> files;
  int rule_count = 0;
  // Declared before `rules`: transactions need both, and rules go first on destruction.
  std::unique_ptr<modsecurity::ModSecurity> modsec;
  std::unique_ptr<modsecurity::RulesSet> rules;
};

WafEngine::WafEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WafEngine::~WafEngine() = default;

const WafSettings& WafEngine::settings() const { return impl_->settings; }
const std::string& WafEngine::config() const { return impl_->config; }
const std::vector<std::string>& WafEngine::rule_files() const { return impl_->files; }
int WafEngine::rule_count() const { return impl_->rule_count; }

core::Result<std::unique_ptr<WafEngine>> WafEngine::Create(const WafSettings& settings,
                                                           std::string crs_dir) {
  RETURN_IF_ERROR(ValidateWafSettings(settings));
  auto impl = std::make_unique<Impl>();
  impl->settings = settings;
  for (const std::string& header : settings.secret_headers) {
    impl->secret_headers.push_back(Lower(header));
  }
  if (settings.mode == WafMode::kOff) {
    return std::unique_ptr<WafEngine>(new WafEngine(std::move(impl)));
  }
  ASSIGN_OR_RETURN(std::string rules_dir, ResolveRulesDir(std::move(crs_dir)));
  ASSIGN_OR_RETURN(impl->files, RuleFiles(rules_dir));
  impl->config = BuildConfig(settings, impl->files);
  try {
    impl->modsec = std::make_unique<modsecurity::ModSecurity>();
    impl->modsec->setConnectorInformation("moatless-gateway");
    impl->modsec->setServerLogCb(IgnoreServerLog, modsecurity::RuleMessageLogProperty);
    impl->rules = std::make_unique<modsecurity::RulesSet>();
    impl->rule_count = impl->rules->load(impl->config.c_str(), "moatless-waf.conf");
    if (impl->rule_count < 0) {
      return core::FailedPreconditionError("loading the WAF rules (CRS in " + rules_dir +
                                           "): " + ParserError(*impl->rules));
    }
  } catch (const std::exception& e) {
    return core::FailedPreconditionError("loading the WAF rules (CRS in " + rules_dir +
                                         "): " + e.what());
  } catch (...) {
    return core::FailedPreconditionError("loading the WAF rules (CRS in " + rules_dir +
                                         "): unknown exception");
  }
  auto engine = std::unique_ptr<WafEngine>(new WafEngine(std::move(impl)));
  // A configuration that refuses the plainest request (901001 "deployed without configuration"
  // answers 500 to everything) is as broken as one that does not parse.
  WafRequest probe;
  probe.client_ip = "192.0.2.1";
  probe.client_port = 40000;
  probe.server_ip = "192.0.2.2";
  probe.server_port = 443;
  probe.method = "GET";
  probe.uri = "/";
  probe.headers = {
      {"Host", "moatless.invalid"}, {"User-Agent", "moatless-waf-selftest/1"}, {"Accept", "*/*"}};
  probe.request_id = "moatless-waf-selftest";
  WafVerdict verdict = engine->Inspect(probe);
  if (verdict.matched) {
    return core::FailedPreconditionError("the WAF configuration refuses a plain GET /: " +
                                         verdict.log);
  }
  return engine;
}

WafVerdict WafEngine::Inspect(const WafRequest& request) const {
  WafVerdict verdict;
  if (impl_->settings.mode == WafMode::kOff) return verdict;
  TransactionLog log(impl_->secret_headers, request);
  try {
    std::string unique_id = request.request_id;
    // The constructor taking an id builds a std::string from it: never pass nullptr.
    std::optional<modsecurity::Transaction> transaction;
    if (unique_id.empty()) {
      transaction.emplace(impl_->modsec.get(), impl_->rules.get(), nullptr);
    } else {
      transaction.emplace(impl_->modsec.get(), impl_->rules.get(), unique_id.data(), nullptr);
    }
    modsecurity::Transaction& tx = *transaction;
    bool intervened = false;
    // Asked after every phase: a disruptive action ends the request (only with SecRuleEngine On).
    const auto intervention = [&] {
      modsecurity::ModSecurityIntervention it;
      it.status = 200;
      it.pause = 0;
      it.url = nullptr;
      it.log = nullptr;
      it.disruptive = 0;
      if (tx.intervention(&it)) {
        intervened = true;
        verdict.status = it.status >= 300 ? it.status : 403;
      }
      // The rule that intervened is in m_rulesMessages too; these copies are ours to free.
      modsecurity::intervention::free(&it);
      return intervened;
    };
    tx.processConnection(request.client_ip.c_str(), request.client_port, request.server_ip.c_str(),
                         request.server_port);
    if (!intervention()) {
      tx.processURI(request.uri.c_str(), request.method.c_str(), request.http_version.c_str());
    }
    if (!intervention()) {
      for (const auto& [name, value] : request.headers) tx.addRequestHeader(name, value);
      tx.processRequestHeaders();
    }
    if (!intervention() && !request.body.empty()) {
      tx.appendRequestBody(reinterpret_cast<const unsigned char*>(request.body.data()),
                           request.body.size());
    }
    // Phase 2 runs for bodiless requests too: CRS 3.3 decides (949110) only there.
    if (!intervention()) {
      tx.processRequestBody();
      intervention();
    }
    tx.processLogging();
    for (const modsecurity::RuleMessage& message : tx.m_rulesMessages) log.Add(message);
    // tx.anomaly_score: the sum 949060-949063 make of the per-paranoia-level scores.
    if (auto score = tx.m_collections.m_tx_collection->resolveFirst("anomaly_score")) {
      int value = 0;
      auto [end, ec] = std::from_chars(score->data(), score->data() + score->size(), value);
      if (ec == std::errc() && end == score->data() + score->size()) verdict.anomaly_score = value;
    }
    verdict.rule_ids = log.TakeRuleIds();
    const bool blocking_rule = std::any_of(verdict.rule_ids.begin(), verdict.rule_ids.end(),
                                           [](int id) { return id == 949100 || id == 949110; });
    verdict.blocked = intervened;
    verdict.matched = intervened || blocking_rule ||
                      verdict.anomaly_score >= impl_->settings.inbound_anomaly_threshold;
    if (!verdict.blocked) verdict.status = 0;
    verdict.log = log.TakeLog();
    return verdict;
  } catch (const std::exception& e) {
    log.AddNote(std::string("WAF failure, request refused: ") + e.what());
  } catch (...) {
    log.AddNote("WAF failure, request refused: unknown exception");
  }
  // Fail closed: a request the WAF could not inspect is one it did not pass.
  WafVerdict failed;
  failed.matched = true;
  failed.blocked = impl_->settings.mode == WafMode::kBlock;
  failed.status = failed.blocked ? 500 : 0;
  failed.rule_ids = log.TakeRuleIds();
  failed.log = log.TakeLog();
  return failed;
}

}  // namespace moatless::gateway
