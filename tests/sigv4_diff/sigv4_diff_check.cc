// Differential check of the SigV4 verifier: reads the NDJSON requests of sign.mjs (each signed by
// the AWS SDK for JavaScript v3's signer, @smithy/signature-v4), verifies every one with
// moatless's ParseSignature/VerifySignature as the service endpoint does (normalized,
// double-encoded paths), then tampers with each request in three ways chosen by the case's
// tamper_seed and expects every tampered request to be refused.
//
//   node sign.mjs --seed 7 --count 3000 | sigv4_diff_check [--show N]
//
// Tamperings: flip a hex digit of the signature; change one byte of a signed header's value;
// change one byte of the path (a valid, canonically different path); add or change a query
// parameter; change the body when its hash is signed; shift X-Amz-Date by one second; expect
// another region; expect another service. The run fails on any signed request that does not
// verify, any tampered request that does, a refusal of an unexpected AWS error type, and an input
// that ends without the generator's trailer (a generator that died).
//
// Exit status: 0 all as expected; 1 otherwise; 2 usage.
#include <array>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/case_stream.h"
#include "core/secret_bytes.h"
#include "core/status.h"
#include "identity/sigv4.h"

namespace moatless::identity {
namespace {

namespace json = boost::json;

// A request as received: owns the strings a HttpRequestView borrows.
struct Request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  HttpRequestView View() const {
    HttpRequestView view{.method = method, .target = target, .headers = {}, .body = body};
    for (const auto& [name, value] : headers) view.headers.emplace_back(name, value);
    return view;
  }
};

struct Case {
  std::int64_t id = 0;
  Request request;
  std::string key_id;
  std::string secret;
  std::string region;
  std::string service;
  core::WallTime time;
  bool presigned = false;
  std::uint32_t tamper_seed = 0;
};

enum class Tamper { kSignature, kHeader, kPath, kQuery, kBody, kDate, kRegion, kService };
constexpr std::array<Tamper, 8> kTampers = {Tamper::kSignature, Tamper::kHeader, Tamper::kPath,
                                            Tamper::kQuery,     Tamper::kBody,   Tamper::kDate,
                                            Tamper::kRegion,    Tamper::kService};

std::string_view TamperName(Tamper t) {
  switch (t) {
    case Tamper::kSignature:
      return "signature hex digit";
    case Tamper::kHeader:
      return "signed header byte";
    case Tamper::kPath:
      return "path byte";
    case Tamper::kQuery:
      return "query parameter";
    case Tamper::kBody:
      return "body (hash signed)";
    case Tamper::kDate:
      return "X-Amz-Date +-1 s";
    case Tamper::kRegion:
      return "expected region";
    case Tamper::kService:
      return "expected service";
  }
  return "?";
}

constexpr std::array<std::string_view, 5> kRegions = {"us-east-1", "eu-west-3", "ap-southeast-2",
                                                      "local", "us-west-2"};
constexpr std::array<std::string_view, 6> kServices = {"sts",    "iam",         "secretsmanager",
                                                       "lambda", "execute-api", "s3"};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::optional<std::string> Base64Decode(std::string_view text) {
  namespace b64 = boost::beast::detail::base64;
  while (text.ends_with('=')) text.remove_suffix(1);  // decode() stops at the padding
  std::string out((text.size() + 3) / 4 * 3, '\0');
  const auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  if (read != text.size()) return std::nullopt;
  out.resize(written);
  return out;
}

std::optional<Case> LoadCase(const json::object& c) {
  Case out;
  try {
    out.id = c.at("id").to_number<std::int64_t>();
    out.request.method = std::string(c.at("method").as_string());
    out.request.target = std::string(c.at("target").as_string());
    for (const json::value& h : c.at("headers").as_array()) {
      const json::array& pair = h.as_array();
      out.request.headers.emplace_back(std::string(pair.at(0).as_string()),
                                       std::string(pair.at(1).as_string()));
    }
    const std::optional<std::string> body = Base64Decode(c.at("body").as_string());
    if (!body) return std::nullopt;
    out.request.body = *body;
    out.key_id = std::string(c.at("key_id").as_string());
    out.secret = std::string(c.at("secret").as_string());
    out.region = std::string(c.at("region").as_string());
    out.service = std::string(c.at("service").as_string());
    out.time = core::WallTime(std::chrono::seconds(c.at("time").to_number<std::int64_t>()));
    out.presigned = c.at("presigned").as_bool();
    out.tamper_seed = static_cast<std::uint32_t>(c.at("tamper_seed").to_number<std::int64_t>());
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return out;
}

// What the service endpoint would pass: the case's own scope, a clock a few seconds after signing.
VerifyOptions BaseOptions(const Case& c) {
  return VerifyOptions{.now = c.time + std::chrono::seconds(3),
                       .expected_region = c.region,
                       .expected_service = c.service,
                       .normalize_path = true};
}

core::Status Verify(const Case& c, const Request& request, const VerifyOptions& options,
                    ParsedSignature* parsed_out = nullptr) {
  const HttpRequestView view = request.View();
  core::Result<ParsedSignature> parsed = ParseSignature(view);
  if (!parsed.ok()) return parsed.status();
  if (parsed->access_key_id != c.key_id || parsed->presigned != c.presigned) {
    return core::InternalError("parsed access key id or presigned flag differs from the case's");
  }
  if (parsed_out != nullptr) *parsed_out = *parsed;
  const core::SecretBytes secret(c.secret);
  return VerifySignature(view, *parsed, secret, options);
}

// Deterministic choices from a case's tamper_seed (mt19937 is fully specified by the standard).
class Chooser {
 public:
  explicit Chooser(std::uint32_t seed) : engine_(seed) {}
  std::size_t Below(std::size_t n) { return n == 0 ? 0 : engine_() % n; }

 private:
  std::mt19937 engine_;
};

// A different character of the same class, so that the text stays valid where it is.
char OtherChar(char c, Chooser& choose) {
  const auto step = [&](char base, int size) {
    return static_cast<char>(base +
                             (c - base + 1 + static_cast<int>(choose.Below(size - 1))) % size);
  };
  if (c >= '0' && c <= '9') return step('0', 10);
  if (c >= 'a' && c <= 'z') return step('a', 26);
  if (c >= 'A' && c <= 'Z') return step('A', 26);
  return c == 'Z' ? 'Y' : 'Z';
}

char OtherHexDigit(char c, Chooser& choose) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  const std::size_t at = kHex.find(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return kHex[(at + 1 + choose.Below(15)) % 16];
}

std::pair<std::size_t, std::size_t> PathBounds(const std::string& target) {
  const std::size_t q = target.find('?');
  return {0, q == std::string::npos ? target.size() : q};
}

// The value range [begin, end) of the query parameter `name` (exact) in the target.
std::optional<std::pair<std::size_t, std::size_t>> QueryValue(const std::string& target,
                                                              std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::size_t pos = q + 1;
  while (pos <= target.size()) {
    std::size_t end = target.find('&', pos);
    if (end == std::string::npos) end = target.size();
    const std::string_view piece(target.data() + pos, end - pos);
    if (piece.size() > name.size() && piece.substr(0, name.size()) == name &&
        piece[name.size()] == '=') {
      return std::make_pair(pos + name.size() + 1, end);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

struct Tampered {
  Request request;
  VerifyOptions options;
  // AWS error types that count as the expected refusal; empty: any refusal.
  std::vector<std::string_view> expected;
  std::string what;  // the edit made, for the failure report
};

std::optional<Tampered> Apply(Tamper kind, const Case& c, const ParsedSignature& parsed,
                              Chooser& choose) {
  Tampered t{.request = c.request, .options = BaseOptions(c), .expected = {}, .what = {}};
  Request& r = t.request;
  switch (kind) {
    case Tamper::kSignature: {
      t.expected = {kSignatureDoesNotMatch};
      std::optional<std::pair<std::size_t, std::size_t>> range;
      std::string* text = nullptr;
      if (c.presigned) {
        range = QueryValue(r.target, "X-Amz-Signature");
        text = &r.target;
      } else {
        for (auto& [name, value] : r.headers) {
          if (!EqualsIgnoreCase(name, "authorization")) continue;
          const std::size_t at = value.find("Signature=");
          if (at != std::string::npos) {
            range = std::make_pair(at + 10, value.size());
            text = &value;
          }
        }
      }
      if (!range || range->second <= range->first) return std::nullopt;
      const std::size_t at = range->first + choose.Below(range->second - range->first);
      (*text)[at] = OtherHexDigit((*text)[at], choose);
      t.what = "signature digit " + std::to_string(at - range->first);
      return t;
    }
    case Tamper::kHeader: {
      // A byte that is not whitespace, in a value of a signed header.
      std::vector<std::pair<std::size_t, std::size_t>> candidates;
      for (std::size_t i = 0; i < r.headers.size(); ++i) {
        bool is_signed = false;
        for (const std::string& name : parsed.signed_headers) {
          is_signed = is_signed || EqualsIgnoreCase(name, r.headers[i].first);
        }
        if (!is_signed) continue;
        const std::string& value = r.headers[i].second;
        for (std::size_t j = 0; j < value.size(); ++j) {
          if (!IsSpace(value[j])) candidates.emplace_back(i, j);
        }
      }
      if (candidates.empty()) return std::nullopt;
      const auto [i, j] = candidates[choose.Below(candidates.size())];
      r.headers[i].second[j] = OtherChar(r.headers[i].second[j], choose);
      t.what = "header " + r.headers[i].first + " byte " + std::to_string(j) + " -> '" +
               r.headers[i].second + "'";
      return t;
    }
    case Tamper::kPath: {
      t.expected = {kSignatureDoesNotMatch};
      const auto [begin, end] = PathBounds(r.target);
      const std::string path = r.target.substr(begin, end - begin);
      const CanonicalOptions canonical{.normalize_path = true, .double_encode_path = true};
      const std::string before = CanonicalUri(path, canonical);
      // Bytes outside %XX triplets become another letter or digit; a triplet's hex digit becomes
      // another hex digit. Either way the path stays valid; keep the first whose canonical form
      // differs (a segment removed by a later ".." does not count).
      std::vector<std::size_t> positions;
      for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] != '/') positions.push_back(i);
      }
      const std::size_t offset = choose.Below(positions.size() + 1);
      for (std::size_t k = 0; k < positions.size(); ++k) {
        const std::size_t i = positions[(k + offset) % positions.size()];
        std::string changed = path;
        const bool in_triplet = (i >= 1 && path[i - 1] == '%' && IsHex(path[i])) ||
                                (i >= 2 && path[i - 2] == '%' && IsHex(path[i - 1]));
        if (path[i] == '%') continue;
        changed[i] = in_triplet ? OtherHexDigit(path[i], choose) : OtherChar(path[i], choose);
        if (changed[i] == '.' || CanonicalUri(changed, canonical) == before) continue;
        r.target.replace(begin, end - begin, changed);
        t.what = "path byte " + std::to_string(i) + " -> " + changed;
        return t;
      }
      const std::string changed = path + (path.ends_with('/') ? "z" : "/z");
      r.target.replace(begin, end - begin, changed);
      t.what = "path -> " + changed;
      return t;
    }
    case Tamper::kQuery: {
      t.expected = {kSignatureDoesNotMatch};
      const std::size_t q = r.target.find('?');
      // Pieces outside the presigned parameters, which have tamperings of their own.
      std::vector<std::pair<std::size_t, std::size_t>> pieces;
      if (q != std::string::npos) {
        std::size_t pos = q + 1;
        while (pos <= r.target.size()) {
          std::size_t end = r.target.find('&', pos);
          if (end == std::string::npos) end = r.target.size();
          std::string head(std::string_view(r.target).substr(pos, 6));
          for (char& ch : head)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (end > pos && head != "x-amz-") {
            pieces.emplace_back(pos, end);
          }
          pos = end + 1;
        }
      }
      if (!pieces.empty() && choose.Below(2) == 0) {
        const auto [pos, end] = pieces[choose.Below(pieces.size())];
        r.target.insert(end, "z");
        t.what = "query piece '" + r.target.substr(pos, end + 1 - pos) + "'";
      } else {
        r.target += q == std::string::npos ? "?tampered=1" : "&tampered=1";
        t.what = "query + tampered=1";
      }
      return t;
    }
    case Tamper::kBody: {
      if (parsed.payload_hash == kUnsignedPayload) return std::nullopt;
      t.expected = {kSignatureDoesNotMatch, kXAmzContentSha256Mismatch};
      if (r.body.empty()) {
        r.body = "x";
      } else {
        const std::size_t at = choose.Below(r.body.size());
        r.body[at] = static_cast<char>(r.body[at] ^ (1 + choose.Below(255)));
      }
      t.what = "body byte";
      return t;
    }
    case Tamper::kDate: {
      t.expected = {kSignatureDoesNotMatch};
      const auto shift = choose.Below(2) == 0 ? std::chrono::seconds(1) : std::chrono::seconds(-1);
      if (c.presigned) {
        const auto range = QueryValue(r.target, "X-Amz-Date");
        if (!range) return std::nullopt;
        const auto time = ParseAmzDate(r.target.substr(range->first, range->second - range->first));
        if (!time) return std::nullopt;
        r.target.replace(range->first, range->second - range->first, FormatAmzDate(*time + shift));
      } else {
        bool found = false;
        for (auto& [name, value] : r.headers) {
          if (!EqualsIgnoreCase(name, "x-amz-date")) continue;
          const auto time = ParseAmzDate(value);
          if (!time) return std::nullopt;
          value = FormatAmzDate(*time + shift);
          found = true;
        }
        if (!found) return std::nullopt;
      }
      t.what = shift.count() > 0 ? "X-Amz-Date + 1 s" : "X-Amz-Date - 1 s";
      return t;
    }
    case Tamper::kRegion:
    case Tamper::kService: {
      t.expected = {kSignatureDoesNotMatch};
      const bool region = kind == Tamper::kRegion;
      std::string_view& slot = region ? t.options.expected_region : t.options.expected_service;
      const std::string_view own = region ? c.region : c.service;
      std::vector<std::string_view> others;
      for (std::string_view v : region ? std::span<const std::string_view>(kRegions)
                                       : std::span<const std::string_view>(kServices)) {
        if (v != own) others.push_back(v);
      }
      slot = others[choose.Below(others.size())];
      t.what = std::string(region ? "expected region " : "expected service ") + std::string(slot);
      return t;
    }
  }
  return std::nullopt;
}

struct Stats {
  std::size_t cases = 0;
  std::size_t verified = 0;
  std::size_t presigned = 0;
  std::size_t failures = 0;
  std::map<Tamper, std::size_t> refused;
  std::map<std::string, std::size_t> refused_by_type;
};

int Run(int show) {
  Stats stats;
  int shown = 0;
  const auto report = [&](const std::string& what, const std::string& line) {
    ++stats.failures;
    if (shown++ < show) std::cout << "FAIL " << what << "\n  case: " << line << "\n";
  };
  testing::CaseStream input(std::cin, "sigv4_diff_check");
  std::string line;
  while (const std::optional<json::object> object = input.Next(line)) {
    ++stats.cases;
    const std::optional<Case> c = LoadCase(*object);
    if (!c) {
      report("unreadable case", line);
      continue;
    }
    ParsedSignature parsed;
    const core::Status status = Verify(*c, c->request, BaseOptions(*c), &parsed);
    if (!status.ok()) {
      report("case " + std::to_string(c->id) + ": signed request refused: " + status.ToString(),
             line);
      continue;
    }
    ++stats.verified;
    if (c->presigned) ++stats.presigned;

    // Three distinct tamperings among those that apply to this case.
    Chooser choose(c->tamper_seed);
    std::vector<Tamper> order(kTampers.begin(), kTampers.end());
    for (std::size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[choose.Below(i + 1)]);
    }
    int applied = 0;
    for (Tamper kind : order) {
      if (applied == 3) break;
      const std::optional<Tampered> t = Apply(kind, *c, parsed, choose);
      if (!t) continue;
      ++applied;
      const core::Status result = Verify(*c, t->request, t->options);
      const std::string where = "case " + std::to_string(c->id) + ", tampering '" +
                                std::string(TamperName(kind)) + "' (" + t->what + "): ";
      if (result.ok()) {
        report(where + "accepted", line);
        continue;
      }
      const std::string type(result.aws_type());
      bool expected = t->expected.empty();
      for (std::string_view e : t->expected) expected = expected || type == e;
      if (!expected) {
        report(where + "refused with an unexpected error: " + result.ToString(), line);
        continue;
      }
      ++stats.refused[kind];
      ++stats.refused_by_type[type.empty() ? "(no AWS type)" : type];
    }
    if (applied < 3) report("case " + std::to_string(c->id) + ": fewer than 3 tamperings", line);
  }

  std::size_t refused = 0;
  for (const auto& [kind, n] : stats.refused) refused += n;
  std::cout << "sigv4 differential: " << stats.verified << " cases verified (of " << stats.cases
            << ", " << stats.presigned << " presigned), " << refused << " tamperings refused, "
            << stats.failures << " failures\n";
  for (const auto& [kind, n] : stats.refused) {
    std::cout << "  refused " << TamperName(kind) << ": " << n << "\n";
  }
  for (const auto& [type, n] : stats.refused_by_type) {
    std::cout << "  refusals as " << type << ": " << n << "\n";
  }
  if (!input.Complete()) return 1;
  return stats.failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace moatless::identity

int main(int argc, char** argv) {
  int show = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--show" && i + 1 < argc) {
      show = std::atoi(argv[++i]);
    } else {
      std::cerr << "usage: sign.mjs ... | sigv4_diff_check [--show N]\n";
      return 2;
    }
  }
  return moatless::identity::Run(show);
}
