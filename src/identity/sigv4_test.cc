#include "identity/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace moatless::identity {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kSuiteDir =
    MOATLESS_TESTDATA_DIR "/sigv4/tests/aws-signing-test-suite/v4";
constexpr std::string_view kMissingSentinel = "vectors_not_found";
constexpr std::string_view kAkid = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

core::SecretBytes Secret() { return core::SecretBytes(kSecret); }

core::WallTime At(std::string_view amz_date) {
  const auto t = ParseAmzDate(amz_date);
  EXPECT_TRUE(t.has_value()) << amz_date;
  return t.value_or(core::WallTime());
}

// ---- A request the tests own and mutate; View() borrows from it. ----------------------------

struct OwnedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  HttpRequestView View() const {
    HttpRequestView view{.method = method, .target = target, .body = body};
    for (const auto& [name, value] : headers) view.headers.emplace_back(name, value);
    return view;
  }
  std::string* FindHeader(std::string_view name) {
    return const_cast<std::string*>(std::as_const(*this).FindHeader(name));
  }
  const std::string* FindHeader(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return &v;
      }
    }
    return nullptr;
  }
  void Add(const std::vector<std::pair<std::string, std::string>>& more) {
    headers.insert(headers.end(), more.begin(), more.end());
  }
};

// The suite's text format: request line, header lines (a line starting with whitespace
// continues the previous value: obsolete line folding), a blank line, the body.
OwnedRequest ParseRawRequest(std::string_view text) {
  OwnedRequest request;
  const std::size_t blank = text.find("\n\n");
  const std::string_view head = blank == std::string_view::npos ? text : text.substr(0, blank);
  if (blank != std::string_view::npos) request.body = std::string(text.substr(blank + 2));
  std::size_t pos = 0;
  bool first = true;
  while (pos <= head.size()) {
    std::size_t eol = head.find('\n', pos);
    if (eol == std::string_view::npos) eol = head.size();
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 1;
    if (first) {
      first = false;
      const std::size_t sp1 = line.find(' ');
      const std::size_t sp2 = line.rfind(' ');
      request.method = std::string(line.substr(0, sp1));
      request.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
      continue;
    }
    if (line.empty()) continue;
    if ((line[0] == ' ' || line[0] == '\t') && !request.headers.empty()) {
      request.headers.back().second += "\n" + std::string(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    request.headers.emplace_back(std::string(line.substr(0, colon)),
                                 std::string(line.substr(colon + 1)));
  }
  return request;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// context.json is a flat object of strings, booleans and integers (one nested object whose keys
// are unique in the file), so a key search is enough.
std::optional<std::string> JsonRaw(std::string_view json, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\"";
  std::size_t pos = json.find(quoted);
  if (pos == std::string_view::npos) return std::nullopt;
  pos = json.find(':', pos + quoted.size());
  if (pos == std::string_view::npos) return std::nullopt;
  ++pos;
  while (pos < json.size() && std::isspace(static_cast<unsigned char>(json[pos]))) ++pos;
  if (pos < json.size() && json[pos] == '"') {
    std::string value;
    for (++pos; pos < json.size() && json[pos] != '"'; ++pos) {
      if (json[pos] == '\\' && pos + 1 < json.size()) ++pos;
      value.push_back(json[pos]);
    }
    return value;
  }
  std::size_t end = pos;
  while (end < json.size() && json[end] != ',' && json[end] != '}' &&
         !std::isspace(static_cast<unsigned char>(json[end]))) {
    ++end;
  }
  return std::string(json.substr(pos, end - pos));
}

struct Context {
  std::string access_key_id;
  std::string secret;
  std::optional<std::string> token;
  std::string region;
  std::string service;
  std::string amz_date;  // from "timestamp"
  bool normalize = true;
  bool sign_body = false;
  bool omit_session_token = false;
  std::int64_t expires = 3600;
};

Context ParseContext(std::string_view json) {
  Context c;
  c.access_key_id = JsonRaw(json, "access_key_id").value_or("");
  c.secret = JsonRaw(json, "secret_access_key").value_or("");
  c.token = JsonRaw(json, "token");
  c.region = JsonRaw(json, "region").value_or("");
  c.service = JsonRaw(json, "service").value_or("");
  std::string timestamp = JsonRaw(json, "timestamp").value_or("");  // 2015-08-30T12:36:00Z
  std::erase(timestamp, '-');
  std::erase(timestamp, ':');
  c.amz_date = timestamp;
  c.normalize = JsonRaw(json, "normalize").value_or("true") == "true";
  c.sign_body = JsonRaw(json, "sign_body").value_or("false") == "true";
  c.omit_session_token = JsonRaw(json, "omit_session_token").value_or("false") == "true";
  c.expires = std::stoll(JsonRaw(json, "expiration_in_seconds").value_or("3600"));
  return c;
}

std::string QueryParam(std::string_view target, std::string_view name) {
  const std::string key = std::string(name) + "=";
  std::size_t pos = target.find('?');
  while (pos != std::string_view::npos) {
    ++pos;
    if (target.substr(pos, key.size()) == key) {
      const std::size_t end = target.find('&', pos);
      return std::string(target.substr(pos + key.size(), end == std::string_view::npos
                                                             ? std::string_view::npos
                                                             : end - pos - key.size()));
    }
    pos = target.find('&', pos);
  }
  return "";
}

// Removes "&name=value" from a target.
std::string RemoveParam(std::string target, std::string_view name) {
  const std::string key = "&" + std::string(name) + "=";
  const std::size_t pos = target.find(key);
  if (pos == std::string::npos) return target;
  const std::size_t end = target.find('&', pos + 1);
  target.erase(pos, end == std::string::npos ? std::string::npos : end - pos);
  return target;
}

void ReplaceFirst(std::string& text, std::string_view from, std::string_view to) {
  const std::size_t pos = text.find(from);
  ASSERT_NE(pos, std::string::npos) << from << " not in " << text;
  text.replace(pos, from.size(), to);
}

char Other(char c) { return c == 'a' ? 'b' : 'a'; }
char OtherHex(char c) { return c == '0' ? '1' : '0'; }

core::Status Verify(const OwnedRequest& request, const VerifyOptions& options,
                    std::string_view secret = kSecret) {
  const HttpRequestView view = request.View();
  auto parsed = ParseSignature(view);
  if (!parsed.ok()) return parsed.status();
  return VerifySignature(view, *parsed, core::SecretBytes(secret), options);
}

// No error message may carry the secret key or the signature the verifier computed.
void ExpectClean(const core::Status& status, std::string_view correct_signature,
                 std::string_view secret = kSecret) {
  EXPECT_EQ(status.message().find(secret), std::string::npos) << status;
  if (!correct_signature.empty()) {
    EXPECT_EQ(status.message().find(correct_signature), std::string::npos) << status;
  }
}

void ExpectAwsError(const core::Status& status, std::string_view aws_type, int http,
                    std::string_view what) {
  EXPECT_FALSE(status.ok()) << what;
  EXPECT_EQ(status.aws_type(), aws_type) << what << ": " << status;
  EXPECT_EQ(core::HttpStatusFor(status.code()), http) << what << ": " << status;
}

// ---- The official suite ----------------------------------------------------------------------

std::vector<std::string> VectorNames() {
  std::vector<std::string> names;
  std::error_code ec;
  if (fs::is_directory(std::string(kSuiteDir), ec)) {
    for (const auto& entry : fs::directory_iterator(std::string(kSuiteDir), ec)) {
      if (entry.is_directory() && fs::exists(entry.path() / "context.json")) {
        names.push_back(entry.path().filename().string());
      }
    }
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) names.emplace_back(kMissingSentinel);
  return names;
}

class SigV4SuiteTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == kMissingSentinel) {
      GTEST_SKIP() << "SigV4 test vectors not found at " << kSuiteDir
                   << "; set -DMOATLESS_TESTDATA_DIR";
    }
    dir_ = fs::path(std::string(kSuiteDir)) / GetParam();
    ctx_ = ParseContext(ReadFile(dir_ / "context.json"));
    ASSERT_EQ(ctx_.access_key_id, kAkid);
    ASSERT_EQ(ctx_.secret, kSecret);
    request_ = ParseRawRequest(ReadFile(dir_ / "request.txt"));
    now_ = At(ctx_.amz_date);
  }

  std::string File(std::string_view name) { return ReadFile(dir_ / std::string(name)); }

  SigningParams Params() const {
    SigningParams params{.access_key_id = ctx_.access_key_id,
                         .region = ctx_.region,
                         .service = ctx_.service,
                         .time = now_,
                         .add_content_sha256 = ctx_.sign_body,
                         .canonical = {.normalize_path = ctx_.normalize}};
    if (ctx_.token && !ctx_.omit_session_token) params.security_token = *ctx_.token;
    return params;
  }

  VerifyOptions Options() const {
    return VerifyOptions{.now = now_,
                         .expected_region = ctx_.region,
                         .expected_service = ctx_.service,
                         .normalize_path = ctx_.normalize};
  }

  // Checks the suite's canonical request, string to sign and signature for a signed request.
  void CheckBuildingBlocks(const OwnedRequest& signed_request, std::string_view form) {
    const auto parsed = ParseSignature(signed_request.View());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->presigned, form == "query");
    EXPECT_EQ(parsed->access_key_id, kAkid);
    const auto canonical =
        CanonicalRequest(signed_request.View(), parsed->signed_headers, parsed->payload_hash,
                         {.normalize_path = ctx_.normalize, .presigned = parsed->presigned});
    ASSERT_TRUE(canonical.ok()) << canonical.status();
    const std::string prefix(form);
    EXPECT_EQ(*canonical, File(prefix + "-canonical-request.txt"));
    const std::string sts =
        StringToSign(parsed->amz_date,
                     CredentialScope(parsed->date, parsed->region, parsed->service), *canonical);
    EXPECT_EQ(sts, File(prefix + "-string-to-sign.txt"));
    const std::string signature =
        SignatureHex(SigningKey(Secret(), parsed->date, parsed->region, parsed->service), sts);
    EXPECT_EQ(signature, File(prefix + "-signature.txt"));
    EXPECT_EQ(parsed->signature, signature);
  }

  // Every mutation of a verifying request must fail with SignatureDoesNotMatch.
  void CheckMutations(const OwnedRequest& good, const VerifyOptions& options) {
    const HttpRequestView good_view = good.View();
    const auto parsed = ParseSignature(good_view);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_TRUE(VerifySignature(good_view, *parsed, Secret(), options).ok());
    const std::string signature = parsed->signature;
    int checked = 0;
    auto expect_fail = [&](const OwnedRequest& bad, std::string_view what,
                           std::string_view aws_type = kSignatureDoesNotMatch,
                           const VerifyOptions* opts = nullptr) {
      const core::Status status = Verify(bad, opts ? *opts : options);
      ExpectAwsError(status, aws_type, aws_type == kXAmzContentSha256Mismatch ? 400 : 403, what);
      ExpectClean(status, signature);
      ++checked;
    };
    VerifyOptions any_scope = options;
    any_scope.expected_region = {};
    any_scope.expected_service = {};

    // The signature itself.
    {
      OwnedRequest bad = good;
      if (parsed->presigned) {
        const std::size_t pos = bad.target.find("X-Amz-Signature=") + 16;
        bad.target[pos] = OtherHex(bad.target[pos]);
      } else {
        std::string* auth = bad.FindHeader("authorization");
        const std::size_t pos = auth->find("Signature=") + 10;
        (*auth)[pos] = OtherHex((*auth)[pos]);
      }
      expect_fail(bad, "flipped signature hex digit");
    }
    // One byte of every signed header's value (the date is mutated below).
    for (const std::string& name : parsed->signed_headers) {
      if (name == "x-amz-date") continue;
      OwnedRequest bad = good;
      std::string* value = bad.FindHeader(name);
      ASSERT_NE(value, nullptr) << name;
      const std::size_t pos = value->find_first_not_of(" \t");
      ASSERT_NE(pos, std::string::npos);
      (*value)[pos] = Other((*value)[pos]);
      expect_fail(bad, "changed header " + name);
    }
    // The path (one byte more), the method.
    {
      OwnedRequest bad = good;
      const std::size_t q = bad.target.find('?');
      bad.target.insert(q == std::string::npos ? bad.target.size() : q, "x");
      expect_fail(bad, "changed path");
    }
    {
      OwnedRequest bad = good;
      bad.method = bad.method == "GET" ? "POST" : "GET";
      expect_fail(bad, "changed method");
    }
    // The query.
    {
      OwnedRequest bad = good;
      const std::size_t q = bad.target.find('?');
      if (q == std::string::npos) {
        bad.target += "?a=b";
      } else if (bad.target.compare(q + 1, 6, "X-Amz-") != 0) {
        bad.target[q + 1] = Other(bad.target[q + 1]);
      } else {
        bad.target += "&a=b";
      }
      expect_fail(bad, "changed query");
    }
    if (parsed->presigned) {
      OwnedRequest bad = good;
      const std::string expires = QueryParam(bad.target, "X-Amz-Expires");
      ReplaceFirst(bad.target, "X-Amz-Expires=" + expires,
                   "X-Amz-Expires=" + std::to_string(std::stoll(expires) + 1));
      expect_fail(bad, "changed X-Amz-Expires");
    }
    // The date, by one second (well within the skew window).
    {
      OwnedRequest bad = good;
      const std::string later = FormatAmzDate(parsed->request_time + 1s);
      if (parsed->presigned) {
        ReplaceFirst(bad.target, "X-Amz-Date=" + parsed->amz_date, "X-Amz-Date=" + later);
      } else {
        *bad.FindHeader("x-amz-date") = later;
      }
      expect_fail(bad, "X-Amz-Date + 1 s");
    }
    // The credential scope's region and service, both with and without expectations.
    for (const std::string& part : {parsed->region, parsed->service}) {
      OwnedRequest bad = good;
      const std::string sep = parsed->presigned ? "%2F" : "/";
      if (parsed->presigned) {
        ReplaceFirst(bad.target, sep + part + sep, sep + part + "x" + sep);
      } else {
        ReplaceFirst(*bad.FindHeader("authorization"), sep + part + sep, sep + part + "x" + sep);
      }
      expect_fail(bad, "scope " + part + " (any scope accepted)", kSignatureDoesNotMatch,
                  &any_scope);
      expect_fail(bad, "scope " + part + " (scope expected)");
    }
    // The body.
    {
      OwnedRequest bad = good;
      bad.body += "x";
      expect_fail(
          bad, "changed body",
          parsed->payload_hash_declared ? kXAmzContentSha256Mismatch : kSignatureDoesNotMatch);
    }
    EXPECT_GE(checked, 9);
  }

  fs::path dir_;
  Context ctx_;
  OwnedRequest request_;
  core::WallTime now_;
};

TEST_P(SigV4SuiteTest, HeaderForm) {
  const OwnedRequest signed_request = ParseRawRequest(File("header-signed-request.txt"));
  CheckBuildingBlocks(signed_request, "header");

  // The signer reproduces the suite's Authorization header from the unsigned request.
  const auto added = SignRequest(request_.View(), Params(), Secret());
  ASSERT_TRUE(added.ok()) << added.status();
  OwnedRequest resigned = request_;
  resigned.Add(*added);
  EXPECT_EQ(*resigned.FindHeader("authorization"), *signed_request.FindHeader("authorization"));

  VerifyOptions options = Options();
  if (ctx_.omit_session_token) {
    // The token was added after signing: refused unless explicitly allowed.
    const core::Status refused = Verify(signed_request, options);
    ExpectAwsError(refused, kIncompleteSignature, 400, "unsigned X-Amz-Security-Token");
    EXPECT_NE(refused.message().find("X-Amz-Security-Token"), std::string::npos);
    options.allow_unsigned_security_token = true;
  }
  EXPECT_TRUE(Verify(signed_request, options).ok()) << Verify(signed_request, options);
  EXPECT_TRUE(Verify(resigned, options).ok()) << Verify(resigned, options);
  CheckMutations(signed_request, options);
}

TEST_P(SigV4SuiteTest, QueryForm) {
  OwnedRequest signed_request = ParseRawRequest(File("query-signed-request.txt"));
  if (ctx_.omit_session_token) {
    // The suite appends the token after signing, so it is not in the signed canonical query:
    // the URL as given must not verify; without the token it must.
    const core::Status refused = Verify(signed_request, Options());
    ExpectAwsError(refused, kSignatureDoesNotMatch, 403, "token appended after presigning");
    ExpectClean(refused, QueryParam(signed_request.target, "X-Amz-Signature"));
    signed_request.target = RemoveParam(signed_request.target, "X-Amz-Security-Token");
  }
  CheckBuildingBlocks(signed_request, "query");

  // The presigner reproduces the suite's URL, parameter for parameter.
  const auto target =
      PresignRequest(request_.View(), Params(), Secret(), std::chrono::seconds(ctx_.expires));
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(*target, signed_request.target);

  EXPECT_TRUE(Verify(signed_request, Options()).ok()) << Verify(signed_request, Options());
  CheckMutations(signed_request, Options());
}

TEST(SigV4Suite, VectorsPresent) {
  const std::vector<std::string> names = VectorNames();
  if (names.size() == 1 && names[0] == kMissingSentinel) {
    GTEST_SKIP() << "SigV4 test vectors not found at " << kSuiteDir
                 << "; set -DMOATLESS_TESTDATA_DIR";
  }
  EXPECT_GE(names.size(), 30u);
}

INSTANTIATE_TEST_SUITE_P(AwsSigningTestSuite, SigV4SuiteTest, ::testing::ValuesIn(VectorNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// ---- Building blocks -------------------------------------------------------------------------

TEST(SigV4Blocks, Sha256AndSigningKey) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // The AWS documentation's key-derivation example.
  const core::SecretBytes key = SigningKey(Secret(), "20120215", "us-east-1", "iam");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (std::uint8_t b : key.RevealBytes()) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  EXPECT_EQ(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(SigV4Blocks, CanonicalUri) {
  const CanonicalOptions normalized;
  const CanonicalOptions raw{.normalize_path = false};
  const CanonicalOptions s3{.normalize_path = false, .double_encode_path = false};
  EXPECT_EQ(CanonicalUri("", normalized), "/");
  EXPECT_EQ(CanonicalUri("", raw), "/");
  EXPECT_EQ(CanonicalUri("/a/./b/../c", normalized), "/a/c");
  EXPECT_EQ(CanonicalUri("/a//b/", normalized), "/a/b/");
  // As botocore and smithy sign it: a trailing "." or ".." segment leaves no trailing slash.
  EXPECT_EQ(CanonicalUri("/a/b/..", normalized), "/a");
  EXPECT_EQ(CanonicalUri("/a/.", normalized), "/a");
  EXPECT_EQ(CanonicalUri("/a/./", normalized), "/a/");
  EXPECT_EQ(CanonicalUri("/../..", normalized), "/");
  EXPECT_EQ(CanonicalUri("/a/./b/../c", raw), "/a/./b/../c");
  EXPECT_EQ(CanonicalUri("/my%20key", normalized), "/my%2520key");  // double encoding
  EXPECT_EQ(CanonicalUri("/my%20key", s3), "/my%20key");
  EXPECT_EQ(CanonicalUri("/my key+", s3), "/my%20key%2B");
}

TEST(SigV4Blocks, CanonicalQueryString) {
  EXPECT_EQ(CanonicalQueryString("", {}), "");
  EXPECT_EQ(CanonicalQueryString("b=2&a=1&a=0&c", {}), "a=0&a=1&b=2&c=");
  EXPECT_EQ(CanonicalQueryString("a=x+y&&b=%zz&c=%2f%7E", {}), "a=x%2By&b=%25zz&c=%2F~");
  EXPECT_EQ(CanonicalQueryString("X-Amz-Signature=abc&a=1", {}), "X-Amz-Signature=abc&a=1");
  EXPECT_EQ(CanonicalQueryString("X-Amz-Signature=abc&a=1", {.presigned = true}), "a=1");
}

TEST(SigV4Blocks, CanonicalHeadersJoinsDuplicatesAndTrims) {
  OwnedRequest request{.method = "GET", .target = "/"};
  request.headers = {{"Host", "h"},
                     {"My-Header", "a"},
                     {"X-Other", " x "},
                     {"my-header", "   b    c  "},
                     {"MY-HEADER", "d\n  e"}};
  const std::vector<std::string> names = {"host", "my-header"};
  const auto lines = CanonicalHeaders(request.View(), names);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, "host:h\nmy-header:a,b c,d e\n");
  const std::vector<std::string> absent = {"host", "nope"};
  ExpectAwsError(CanonicalHeaders(request.View(), absent).status(), kSignatureDoesNotMatch, 403,
                 "absent signed header");
}

TEST(SigV4Blocks, AmzDates) {
  EXPECT_EQ(FormatAmzDate(At("20150830T123600Z")), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(At("20000229T235959Z") + 1s), "20000301T000000Z");
  for (std::string_view bad : {"", "20150830T123600", "20150830 123600Z", "20150230T000000Z",
                               "20150830T240000Z", "20150830T126000Z", "2015083OT123600Z",
                               "20150830T123600ZZ", "99991231T000000Z", "00010101T000000Z"}) {
    EXPECT_FALSE(ParseAmzDate(bad).has_value()) << bad;
  }
}

// ---- Verification edge cases -----------------------------------------------------------------

const core::WallTime kT = ParseAmzDate("20150830T123600Z").value();

SigningParams BaseParams() {
  return SigningParams{
      .access_key_id = kAkid, .region = "us-east-1", .service = "service", .time = kT};
}

VerifyOptions BaseOptions() {
  return VerifyOptions{.now = kT, .expected_region = "us-east-1", .expected_service = "service"};
}

OwnedRequest Unsigned(std::string body = "") {
  OwnedRequest request{.method = "POST", .target = "/path?q=1"};
  request.headers = {{"Host", "example.amazonaws.com"}, {"Content-Type", "text/plain"}};
  request.body = std::move(body);
  return request;
}

OwnedRequest HeaderSigned(OwnedRequest request, const SigningParams& params = BaseParams()) {
  auto added = SignRequest(request.View(), params, Secret());
  EXPECT_TRUE(added.ok()) << added.status();
  if (added.ok()) request.Add(*added);
  return request;
}

OwnedRequest Presigned(OwnedRequest request, std::chrono::seconds expires,
                       const SigningParams& params = BaseParams()) {
  auto target = PresignRequest(request.View(), params, Secret(), expires);
  EXPECT_TRUE(target.ok()) << target.status();
  if (target.ok()) request.target = *target;
  return request;
}

// Signs `request` by hand with the given signed headers and date source, for requests the signer
// would never produce.
OwnedRequest HandSigned(OwnedRequest request, const std::vector<std::string>& signed_headers,
                        std::string_view amz_date, std::string_view scope_date = "20150830") {
  const std::string payload = Sha256Hex(request.body);
  const auto canonical = CanonicalRequest(request.View(), signed_headers, payload, {});
  EXPECT_TRUE(canonical.ok()) << canonical.status();
  const std::string scope = CredentialScope(scope_date, "us-east-1", "service");
  const std::string signature =
      SignatureHex(SigningKey(Secret(), scope_date, "us-east-1", "service"),
                   StringToSign(amz_date, scope, canonical.value_or("")));
  std::string list;
  for (const auto& h : signed_headers) list += (list.empty() ? "" : ";") + h;
  request.headers.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + scope +
                                                    ", SignedHeaders=" + list +
                                                    ", Signature=" + signature);
  return request;
}

TEST(SigV4Verify, RoundTrip) {
  const OwnedRequest request = HeaderSigned(Unsigned("hello"));
  EXPECT_TRUE(Verify(request, BaseOptions()).ok()) << Verify(request, BaseOptions());
  const auto parsed = ParseSignature(request.View());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->access_key_id, kAkid);
  EXPECT_EQ(parsed->date, "20150830");
  EXPECT_EQ(parsed->amz_date, "20150830T123600Z");
  EXPECT_EQ(parsed->date_header, "x-amz-date");
  EXPECT_EQ(parsed->signed_headers,
            (std::vector<std::string>{"content-type", "host", "x-amz-date"}));
  EXPECT_FALSE(parsed->payload_hash_declared);
  EXPECT_EQ(parsed->payload_hash, Sha256Hex("hello"));
  // A wrong secret never verifies, and the message names neither secret.
  const core::Status wrong = Verify(request, BaseOptions(), "another-secret");
  ExpectAwsError(wrong, kSignatureDoesNotMatch, 403, "wrong secret");
  ExpectClean(wrong, parsed->signature, "another-secret");
  ExpectClean(wrong, parsed->signature, kSecret);
  EXPECT_NE(wrong.message().find("String-to-Sign"), std::string::npos);
}

TEST(SigV4Verify, ClockSkewBoundary) {
  const OwnedRequest request = HeaderSigned(Unsigned());
  VerifyOptions options = BaseOptions();
  for (auto offset : {-900s, -1s, 0s, 1s, 900s}) {
    options.now = kT + offset;
    EXPECT_TRUE(Verify(request, options).ok()) << offset.count();
  }
  options.now = kT + 901s;
  const core::Status late = Verify(request, options);
  ExpectAwsError(late, kRequestTimeTooSkewed, 403, "15 min + 1 s late");
  EXPECT_NE(late.message().find("Signature expired"), std::string::npos) << late;
  options.now = kT - 901s;
  ExpectAwsError(Verify(request, options), kRequestTimeTooSkewed, 403, "15 min + 1 s early");
  options.max_skew = 300s;
  options.now = kT + 301s;
  ExpectAwsError(Verify(request, options), kRequestTimeTooSkewed, 403, "custom skew");
}

TEST(SigV4Verify, PresignedExpiry) {
  const OwnedRequest request = Presigned(Unsigned("body"), 60s);
  VerifyOptions options = BaseOptions();
  for (auto offset : {-900s, 0s, 60s}) {
    options.now = kT + offset;
    EXPECT_TRUE(Verify(request, options).ok()) << offset.count() << Verify(request, options);
  }
  options.now = kT + 61s;
  const core::Status expired = Verify(request, options);
  ExpectAwsError(expired, kAccessDenied, 403, "expired");
  EXPECT_EQ(expired.message(), "Request has expired");
  options.now = kT - 901s;
  ExpectAwsError(Verify(request, options), kRequestTimeTooSkewed, 403, "not yet valid");
}

TEST(SigV4Verify, PresignedExpiresOverAWeekRejected) {
  const OwnedRequest week = Presigned(Unsigned(), 604800s);
  VerifyOptions options = BaseOptions();
  EXPECT_TRUE(Verify(week, options).ok());
  OwnedRequest longer = week;
  ReplaceFirst(longer.target, "X-Amz-Expires=604800", "X-Amz-Expires=604801");
  const core::Status status = Verify(longer, options);
  ExpectAwsError(status, kAccessDenied, 403, "expires > 7 days");
  EXPECT_NE(status.message().find("604800"), std::string::npos);
  EXPECT_FALSE(PresignRequest(Unsigned().View(), BaseParams(), Secret(), 604801s).ok());
}

TEST(SigV4Verify, MissingAuthentication) {
  OwnedRequest request = Unsigned();
  request.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  ExpectAwsError(ParseSignature(request.View()).status(), kMissingAuthenticationToken, 403,
                 "no auth");
  request.target = "/?X-Amz-Date=20150830T123600Z&X-Amz-Expires=60";  // not presigned either
  ExpectAwsError(ParseSignature(request.View()).status(), kMissingAuthenticationToken, 403,
                 "no auth params");
}

TEST(SigV4Verify, MalformedAuthorizationIsIncomplete) {
  const std::string good_sig(64, 'a');
  const std::string cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
  const std::string sh = "SignedHeaders=host;x-amz-date";
  const std::string sig = "Signature=" + good_sig;
  const std::vector<std::string> variants = {
      "",
      " ",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA256 ",
      "AWS4-HMAC-SHA1 " + cred + ", " + sh + ", " + sig,
      "Bearer abc",
      cred + ", " + sh + ", " + sig,
      "AWS4-HMAC-SHA256 " + sh + ", " + sig,
      "AWS4-HMAC-SHA256 " + cred + ", " + sig,
      "AWS4-HMAC-SHA256 " + cred + ", " + sh,
      "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ", " + sig,
      "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ", Extra=1",
      "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ",",
      "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=",
      "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=, " + sig,
      "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x-amz-date, " + sig,
      "AWS4-HMAC-SHA256 " + cred + " " + sh + " " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, " + sh +
          ", " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, " + sh + ", " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, " + sh +
          ", " + sig,
      "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, " + sh + ", " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, " + sh +
          ", " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20151330/us-east-1/service/aws4_request, " + sh +
          ", " + sig,
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//service/aws4_request, " + sh + ", " + sig,
      "AWS4-HMAC-SHA256 Credential, " + sh + ", " + sig,
      std::string("AWS4-HMAC-SHA256 \0\xff\x01", 20),
  };
  for (const std::string& auth : variants) {
    OwnedRequest request = Unsigned();
    request.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
    request.headers.emplace_back("Authorization", auth);
    const core::Status status = ParseSignature(request.View()).status();
    ExpectAwsError(status, kIncompleteSignature, 400, "Authorization: " + auth);
  }
  // Two Authorization headers; header and query auth together.
  OwnedRequest twice = HeaderSigned(Unsigned());
  twice.headers.emplace_back("authorization", *twice.FindHeader("authorization"));
  ExpectAwsError(ParseSignature(twice.View()).status(), kIncompleteSignature, 400, "two headers");
  OwnedRequest both = HeaderSigned(Unsigned());
  both.target += "&X-Amz-Signature=" + good_sig;
  ExpectAwsError(ParseSignature(both.View()).status(), kIncompleteSignature, 400, "both forms");
}

TEST(SigV4Verify, BadOrMissingDateIsIncomplete) {
  OwnedRequest request = HeaderSigned(Unsigned());
  *request.FindHeader("x-amz-date") = "2015-08-30T12:36:00Z";
  ExpectAwsError(Verify(request, BaseOptions()), kIncompleteSignature, 400, "bad date");
  std::erase_if(request.headers, [](const auto& h) { return h.first == "X-Amz-Date"; });
  ExpectAwsError(Verify(request, BaseOptions()), kIncompleteSignature, 400, "no date");
}

TEST(SigV4Verify, MalformedPresignedIsIncomplete) {
  const OwnedRequest good = Presigned(Unsigned(), 60s);
  ASSERT_TRUE(Verify(good, BaseOptions()).ok());
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA512"},
      {"&X-Amz-Expires=60", ""},
      {"&X-Amz-Expires=60", "&X-Amz-Expires=-60"},
      {"&X-Amz-Expires=60", "&X-Amz-Expires=6O"},
      {"&X-Amz-Expires=60", "&X-Amz-Expires=99999999999999999999"},
      {"&X-Amz-Expires=60", "&X-Amz-Expires=60&X-Amz-Expires=60"},
      {"X-Amz-Date=20150830T123600Z", "X-Amz-Date=20150830"},
      {"aws4_request", "aws5_request"},
      {"&X-Amz-SignedHeaders=", "&X-Amz-Other="},
  };
  for (const auto& [from, to] : edits) {
    OwnedRequest bad = good;
    ReplaceFirst(bad.target, from, to);
    ExpectAwsError(Verify(bad, BaseOptions()), kIncompleteSignature, 400, bad.target);
  }
}

TEST(SigV4Verify, HostAndDateMustBeSigned) {
  OwnedRequest base = Unsigned();
  base.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  const OwnedRequest no_host = HandSigned(base, {"x-amz-date"}, "20150830T123600Z");
  const core::Status status = Verify(no_host, BaseOptions());
  ExpectAwsError(status, kIncompleteSignature, 400, "host unsigned");
  EXPECT_NE(status.message().find("'Host'"), std::string::npos) << status;
  const OwnedRequest no_date = HandSigned(base, {"host"}, "20150830T123600Z");
  ExpectAwsError(Verify(no_date, BaseOptions()), kIncompleteSignature, 400, "date unsigned");
  const OwnedRequest both = HandSigned(base, {"host", "x-amz-date"}, "20150830T123600Z");
  EXPECT_TRUE(Verify(both, BaseOptions()).ok()) << Verify(both, BaseOptions());
}

TEST(SigV4Verify, DateHeaderFallback) {
  OwnedRequest base = Unsigned();
  base.headers.emplace_back("Date", "Sun, 30 Aug 2015 12:36:00 GMT");
  const OwnedRequest request = HandSigned(base, {"date", "host"}, "20150830T123600Z");
  EXPECT_TRUE(Verify(request, BaseOptions()).ok()) << Verify(request, BaseOptions());
  const auto parsed = ParseSignature(request.View());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->date_header, "date");
  EXPECT_EQ(parsed->amz_date, "20150830T123600Z");
}

TEST(SigV4Verify, ScopeChecks) {
  OwnedRequest base = Unsigned();
  base.headers.emplace_back("X-Amz-Date", "20150830T235959Z");
  // The scope date must be the date of X-Amz-Date, even one second away.
  const OwnedRequest next_day =
      HandSigned(base, {"host", "x-amz-date"}, "20150830T235959Z", "20150831");
  VerifyOptions options = BaseOptions();
  options.now = At("20150830T235959Z");
  const core::Status status = Verify(next_day, options);
  ExpectAwsError(status, kSignatureDoesNotMatch, 403, "scope date");
  EXPECT_NE(status.message().find("Date in Credential scope"), std::string::npos) << status;

  const OwnedRequest request = HeaderSigned(Unsigned());
  options = BaseOptions();
  options.expected_region = "eu-west-1";
  const core::Status region = Verify(request, options);
  ExpectAwsError(region, kSignatureDoesNotMatch, 403, "region");
  EXPECT_NE(region.message().find("valid region"), std::string::npos) << region;
  options = BaseOptions();
  options.expected_service = "lambda";
  const core::Status service = Verify(request, options);
  ExpectAwsError(service, kSignatureDoesNotMatch, 403, "service");
  EXPECT_NE(service.message().find("correct service: 'lambda'"), std::string::npos) << service;
  options.expected_region = {};
  options.expected_service = {};
  EXPECT_TRUE(Verify(request, options).ok());
}

TEST(SigV4Verify, SecurityToken) {
  SigningParams params = BaseParams();
  params.security_token = "session-token/with+chars==";
  const OwnedRequest signed_token = HeaderSigned(Unsigned(), params);
  EXPECT_TRUE(Verify(signed_token, BaseOptions()).ok());
  const auto parsed = ParseSignature(signed_token.View());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->security_token, "session-token/with+chars==");

  // A token added after signing.
  OwnedRequest unsigned_token = HeaderSigned(Unsigned());
  unsigned_token.headers.emplace_back("X-Amz-Security-Token", "session-token");
  ExpectAwsError(Verify(unsigned_token, BaseOptions()), kIncompleteSignature, 400,
                 "unsigned token");
  VerifyOptions allow = BaseOptions();
  allow.allow_unsigned_security_token = true;
  EXPECT_TRUE(Verify(unsigned_token, allow).ok());

  // The session token is a credential: a mismatch message blanks it out.
  OwnedRequest tampered = signed_token;
  *tampered.FindHeader("content-type") = "text/html";
  const core::Status status = Verify(tampered, BaseOptions());
  ExpectAwsError(status, kSignatureDoesNotMatch, 403, "tampered");
  EXPECT_EQ(status.message().find("session-token/with+chars=="), std::string::npos) << status;
  EXPECT_NE(status.message().find("x-amz-security-token:[redacted]"), std::string::npos) << status;

  const OwnedRequest presigned = Presigned(Unsigned(), 60s, params);
  EXPECT_TRUE(Verify(presigned, BaseOptions()).ok());
  OwnedRequest presigned_tampered = presigned;
  presigned_tampered.target.insert(presigned_tampered.target.find('?'), "x");
  const core::Status presigned_status = Verify(presigned_tampered, BaseOptions());
  ExpectAwsError(presigned_status, kSignatureDoesNotMatch, 403, "presigned tampered");
  EXPECT_EQ(presigned_status.message().find("session-token%2Fwith%2Bchars%3D%3D"),
            std::string::npos)
      << presigned_status;
}

TEST(SigV4Verify, UnsignedAmzHeadersAllowed) {
  OwnedRequest request = HeaderSigned(Unsigned());
  request.headers.emplace_back("X-Amz-Target", "Service.Op");
  request.headers.emplace_back("User-Agent", "test");
  EXPECT_TRUE(Verify(request, BaseOptions()).ok());
}

TEST(SigV4Verify, DuplicateHeadersVerify) {
  OwnedRequest base = Unsigned();
  base.headers.emplace_back("X-Dup", "one");
  base.headers.emplace_back("x-dup", "  two   three ");
  const OwnedRequest request = HeaderSigned(base);
  EXPECT_TRUE(Verify(request, BaseOptions()).ok());
  OwnedRequest reordered = request;
  std::swap(reordered.headers[2], reordered.headers[3]);
  ExpectAwsError(Verify(reordered, BaseOptions()), kSignatureDoesNotMatch, 403, "reordered");
}

TEST(SigV4Verify, UnsignedPayload) {
  OwnedRequest base = Unsigned("streamed elsewhere");
  base.headers.emplace_back("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
  OwnedRequest request = HeaderSigned(base);
  EXPECT_TRUE(Verify(request, BaseOptions()).ok()) << Verify(request, BaseOptions());
  request.body = "something else entirely";
  EXPECT_TRUE(Verify(request, BaseOptions()).ok());
}

TEST(SigV4Verify, DeclaredPayloadHashMustMatchBody) {
  SigningParams params = BaseParams();
  params.add_content_sha256 = true;
  OwnedRequest request = HeaderSigned(Unsigned("hello"), params);
  EXPECT_EQ(*request.FindHeader("x-amz-content-sha256"), Sha256Hex("hello"));
  EXPECT_TRUE(Verify(request, BaseOptions()).ok());
  request.body = "hellO";
  const core::Status status = Verify(request, BaseOptions());
  ExpectAwsError(status, kXAmzContentSha256Mismatch, 400, "body changed");
  VerifyOptions streaming = BaseOptions();
  streaming.verify_payload_hash = false;  // the caller checks while streaming
  EXPECT_TRUE(Verify(request, streaming).ok());
  // Without a declared hash, a changed body breaks the signature.
  OwnedRequest plain = HeaderSigned(Unsigned("hello"));
  plain.body = "hellO";
  ExpectAwsError(Verify(plain, BaseOptions()), kSignatureDoesNotMatch, 403, "undeclared hash");
}

TEST(SigV4Verify, UnsupportedPayloadHashes) {
  OwnedRequest streaming = Unsigned();
  streaming.headers.emplace_back("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  const core::Status status = Verify(HeaderSigned(streaming), BaseOptions());
  EXPECT_EQ(status.code(), core::StatusCode::kUnimplemented) << status;
  OwnedRequest junk = Unsigned();
  junk.headers.emplace_back("X-Amz-Content-Sha256", "not-a-hash");
  const core::Status junk_status = Verify(HeaderSigned(junk), BaseOptions());
  EXPECT_EQ(junk_status.code(), core::StatusCode::kInvalidArgument) << junk_status;
  EXPECT_EQ(junk_status.aws_type(), "InvalidArgument");
}

TEST(SigV4Verify, S3StylePath) {
  OwnedRequest base = Unsigned();
  base.target = "/bucket/my%20key/../x";
  SigningParams params = BaseParams();
  params.canonical = {.normalize_path = false, .double_encode_path = false};
  const OwnedRequest request = HeaderSigned(base, params);
  VerifyOptions options = BaseOptions();
  ExpectAwsError(Verify(request, options), kSignatureDoesNotMatch, 403, "wrong path style");
  options.normalize_path = false;
  options.double_encode_path = false;
  EXPECT_TRUE(Verify(request, options).ok()) << Verify(request, options);
}

TEST(SigV4Verify, SignerRejectsBadInput) {
  OwnedRequest no_host = Unsigned();
  no_host.headers.erase(no_host.headers.begin());
  EXPECT_FALSE(SignRequest(no_host.View(), BaseParams(), Secret()).ok());
  EXPECT_FALSE(PresignRequest(no_host.View(), BaseParams(), Secret(), 60s).ok());
  const OwnedRequest signed_once = HeaderSigned(Unsigned());
  EXPECT_FALSE(SignRequest(signed_once.View(), BaseParams(), Secret()).ok());
  const OwnedRequest presigned_once = Presigned(Unsigned(), 60s);
  EXPECT_FALSE(PresignRequest(presigned_once.View(), BaseParams(), Secret(), 60s).ok());
}

// Random byte changes and truncations of a valid Authorization header never crash and never
// verify (a changed access key id is the caller's lookup failure, simulated here).
TEST(SigV4Verify, FuzzedAuthorizationNeverVerifies) {
  const OwnedRequest good = HeaderSigned(Unsigned("payload"));
  ASSERT_TRUE(Verify(good, BaseOptions()).ok());
  const std::string header = *good.FindHeader("authorization");
  std::mt19937 rng(20150830);
  int rejected = 0;
  for (int i = 0; i < 4000; ++i) {
    OwnedRequest bad = good;
    std::string& auth = *bad.FindHeader("authorization");
    if (i % 10 == 9) {
      auth.resize(std::uniform_int_distribution<std::size_t>(0, auth.size() - 1)(rng));
    } else {
      const int changes = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int c = 0; c < changes; ++c) {
        const std::size_t pos = std::uniform_int_distribution<std::size_t>(0, auth.size() - 1)(rng);
        const char replacement =
            static_cast<char>((static_cast<unsigned char>(auth[pos]) +
                               std::uniform_int_distribution<int>(1, 255)(rng)) &
                              0xff);
        auth[pos] = replacement;
      }
    }
    if (auth == header) continue;
    const HttpRequestView view = bad.View();
    const auto parsed = ParseSignature(view);
    if (!parsed.ok()) {
      EXPECT_FALSE(parsed.status().message().empty());
      ExpectClean(parsed.status(), "");
      ++rejected;
      continue;
    }
    if (parsed->access_key_id != kAkid) {  // unknown key: the caller's lookup rejects it
      ++rejected;
      continue;
    }
    const core::Status status = VerifySignature(view, *parsed, Secret(), BaseOptions());
    EXPECT_FALSE(status.ok()) << "verified: " << auth;
    ExpectClean(status, "");
    ++rejected;
  }
  EXPECT_GT(rejected, 3000);
}

}  // namespace
}  // namespace moatless::identity
