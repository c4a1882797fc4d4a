// WafEngine: the gateway's web application firewall — libmodsecurity 3 (Debian's 3.0.9) running
// the OWASP Core Rule Set 3.3 (Debian's modsecurity-crs 3.3.4) in anomaly-scoring mode: every
// matching rule adds to the request's anomaly score and rule 949110 refuses the request (403)
// once the score reaches the inbound threshold.
//
// Configuration is ours, generated in code (WafEngine::config() shows it), never Debian's
// /etc/modsecurity files: the engine mode, request body access and limits, the JSON and
// urlencoded body processors chosen by Content-Type, what crs-setup.conf would set (setup version,
// paranoia level, thresholds, allowed methods), a few rules of our own (ids 10000-10099, tag
// `moatless`) and the exclusions. The CRS request rule files are then included one by one by name;
// each must exist, so a missing or unreadable file, or a rule ModSecurity cannot parse, makes
// Create fail (kFailedPrecondition naming the file and ModSecurity's error) instead of running
// with fewer rules. Left out on purpose: the application exclusion packages (903.9xxx), 905
// (Apache's internal dummy connection exception: it turns the engine off for `GET /` from
// loopback), 910 (IP reputation, needs GeoIP/RBL lookups), 912 (DoS protection; the gateway
// meters rates itself) and the RESPONSE-* files (the WAF sees requests only).
//
// Our own rules close gaps of the engine: a request body that cannot be parsed (or is over the
// no-files limit) and a request with more arguments than ModSecurity keeps would otherwise hide
// their content from every rule; both score as critical. So does an encoded '?' in the path
// (see CVE-2024-1019 below). A body without a Content-Type, or text/plain (what fetch() sends
// for a string), is parsed as JSON: functions JSON.parse bodies whatever their declared type, so
// such a body is inspected as JSON or refused as uninspectable (CRS alone would pass it
// unparsed, or refuse text/plain by policy). Other types without a body processor are parsed as
// urlencoded (CRS's tx.enforce_bodyproc_urlencoded) so that their content reaches ARGS.
//
// CVE-2024-1019 (WAF bypass for path-based payloads, fixed upstream in 3.0.12): Debian's
// libmodsecurity3 3.0.9-1+deb12u2 does NOT carry the fix. Its changelog lists only
// CVE-2023-28882, CVE-2023-38285, CVE-2026-30923 and CVE-2026-42268, and the installed library
// still percent-decodes the whole request-target before splitting off the query: for
// "/api/a%3Fb/.env?x=1" it sets REQUEST_FILENAME to "/api/a" and REQUEST_BASENAME to "a" (checked
// against the binary; 3.0.12 gives "/api/a?b/.env"). Rules on the path variables (restricted
// files 930130, restricted extensions 920440, backup files 920500, CR/LF in the path 921190,
// scanner URLs 913120, and the path targets of 933150-933210, 941110, 944130) never see what
// follows an encoded '?'. http/path.h does not help here: it refuses encoded traversal, NUL and
// bad escapes, but "%3F" is a well-formed escape of an ordinary path character. Hence: feed the
// WAF the raw request-target exactly as received (never a decoded or re-encoded one, which would
// hide or invent such splits), and our rule 10020 scores an encoded '?' in the path as critical.
// An API that really needs '?' inside a path segment can exclude 10020 (or the tag
// `moatless/cve-2024-1019`) and loses only this compensation.
//
// Secrets: the verdict's log never holds the values of the headers named in
// WafSettings::secret_headers (Authorization, Cookie, API keys...): matches in them are logged by
// variable name with the data "[redacted]", and their values are scrubbed from every line. The
// same goes for what matched in arguments (query, form, JSON) whose name says they hold a
// credential (password, passwd, secret, token, api key, credential, private key, authorization,
// ignoring case, '_' and '-'). Log
// lines escape control and non-ASCII bytes, so a payload cannot forge log lines.
//
// Ownership and threads: a WafEngine owns its own ModSecurity instance and rule set; nothing is
// global. Create parses some 490 rules (about 30 ms) and Inspect costs, at PL1, about 1.1 ms of CPU
// for a GET with ordinary headers and about 6.3 ms for a 1 KB JSON order with nested objects and an
// array (docs/benchmarks.md: most of it is the engine's allocations and transformations, run by
// every rule over every value), so build one engine per configuration and keep it. Inspect is const
// and safe to call from many threads at once: the rule set is shared read-only and each call has
// its own transaction and its own log collector. Note that libmodsecurity's ModSecurity destructor
// calls process-wide cleanups (xmlCleanupParser, curl_global_cleanup); our configuration uses
// neither the XML body processor nor remote rules, so destroying one engine while another works is
// harmless, but no engine may be destroyed during its own Inspect.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace moatless::gateway {

enum class WafMode {
  kOff,     // nothing is inspected; Inspect always allows (no rules are loaded)
  kDetect,  // SecRuleEngine DetectionOnly: verdicts report matches, nothing is blocked
  kBlock,   // SecRuleEngine On
};

std::string_view WafModeName(WafMode mode);

// Where Debian's modsecurity-crs package puts the CRS rule files.
inline constexpr std::string_view kDebianCrsRulesDir = "/usr/share/modsecurity-crs/rules";

struct WafSettings {
  WafMode mode = WafMode::kBlock;
  int paranoia_level = 1;             // 1..4 (tx.paranoia_level)
  int inbound_anomaly_threshold = 5;  // CRS default: one critical match blocks
  // SecRuleRemoveById / SecRuleRemoveByTag (exact tag, e.g. "attack-sqli"). CRS's initialisation
  // and blocking evaluation (901xxx, 949xxx) and the tags 949110 carries are refused: removing them
  // would switch blocking off while the WAF looks on.
  std::vector<int> excluded_rule_ids;
  std::vector<std::string> excluded_tags;
  // tx.allowed_methods: CRS's default (GET HEAD POST OPTIONS) would refuse every REST update.
  std::vector<std::string> allowed_methods = {"GET",   "HEAD",   "POST",   "PUT",
                                              "PATCH", "DELETE", "OPTIONS"};
  // Bodies over this size are refused (SecRequestBodyLimitAction Reject, also the no-files limit):
  // the server's own limit (http::ServerOptions::max_body_bytes) is the same by default, so only a
  // larger server limit makes this bite.
  std::size_t request_body_limit = 6 * 1024 * 1024;
  // Headers whose values never reach the verdict's log (case-insensitive names). "cookie" also
  // covers every cookie value.
  std::vector<std::string> secret_headers = {"authorization", "proxy-authorization", "cookie",
                                             "x-api-key", "x-amz-security-token"};
};

// The checks Create makes on `settings` without loading anything: kInvalidArgument naming the
// setting (a paranoia level out of range, an excluded rule or tag that decides verdicts...).
core::Status ValidateWafSettings(const WafSettings& settings);

struct WafRequest {
  std::string client_ip;
  int client_port = 0;
  std::string server_ip;
  int server_port = 0;
  std::string method;
  std::string uri;  // request-target exactly as received (path + query), never decoded
  std::string http_version = "1.1";
  std::vector<std::pair<std::string, std::string>> headers;  // as received, Cookie headers too
  std::string body;
  std::string request_id;  // becomes ModSecurity's unique_id; generated when empty
};

struct WafVerdict {
  bool blocked = false;  // refuse the request with `status` (only in kBlock mode)
  bool matched = false;  // the request would be refused in kBlock mode (kDetect and kBlock)
  int status = 0;        // the HTTP status when blocked (403; 500 if the WAF itself failed)
  // The rules that matched, in order, once each: for logs and audit, never for the client.
  std::vector<int> rule_ids;
  int anomaly_score = 0;  // CRS's inbound anomaly score once the request body phase ran
  // One line per matched rule (ModSecurity-style "[id \"942100\"] [msg ...]"), at most
  // kMaxWafLogBytes, secrets redacted.
  std::string log;
};

inline constexpr std::size_t kMaxWafLogBytes = 8 * 1024;

class WafEngine {
 public:
  // Builds the configuration described above and loads the CRS rule files from `crs_dir` (the
  // folder holding REQUEST-901-INITIALIZATION.conf, or its parent holding rules/; empty means
  // kDebianCrsRulesDir). Invalid settings → kInvalidArgument; a missing or broken rules directory
  // or file, or an engine that refuses a plain GET / → kFailedPrecondition.
  static core::Result<std::unique_ptr<WafEngine>> Create(const WafSettings& settings,
                                                         std::string crs_dir = "");
  ~WafEngine();
  WafEngine(const WafEngine&) = delete;
  WafEngine& operator=(const WafEngine&) = delete;

  // Runs one ModSecurity transaction: connection, request line, every header, the body, checking
  // for an intervention after each phase. Never throws; if the engine itself fails, the verdict
  // in kBlock mode is blocked with status 500 (fail closed) and the log says why.
  WafVerdict Inspect(const WafRequest& request) const;

  const WafSettings& settings() const;
  // The generated main configuration (what ModSecurity parsed, Include lines included).
  const std::string& config() const;
  // The rule files the configuration includes, in order.
  const std::vector<std::string>& rule_files() const;
  // How many rules ModSecurity loaded (0 in kOff mode).
  int rule_count() const;

 private:
  struct Impl;
  explicit WafEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moatless::gateway
