// Micro-benchmarks of the gateway's request protection: the body JSON Schema check
// (CompiledSchema::Validate) and the WAF (WafEngine::Inspect, libmodsecurity + OWASP CRS 3.3 at
// paranoia 1 in block mode). Built only with -DMOATLESS_BUILD_BENCH=ON:
//   build-bench/src/gateway/gateway_bench --benchmark_filter=...
// Target: validating a 1 KB body ≤ 20 µs.
//
// kOrderSchema and kOrderBody are also the schema and the request body of the end-to-end
// benchmark (bench/gateway/stages-app/schemas/order.json and request.json, sent by
// bench/gateway/stages.py, which refuses to run when they differ from the ones here).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/schema_validator.h"
#include "gateway/waf.h"

namespace moatless::gateway {
namespace {

// An order as a shop's API takes it: typed properties, nested objects, an array of objects,
// patterns, enums and formats (annotations in draft-07: not asserted).
constexpr char kOrderSchema[] = R"json({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "order",
  "type": "object",
  "required": ["order_id", "customer", "status", "currency", "created_at", "items", "shipping",
               "total"],
  "additionalProperties": false,
  "properties": {
    "order_id": {"type": "string", "pattern": "^ord_[A-Za-z0-9]{16}$"},
    "customer": {
      "type": "object",
      "required": ["id", "name", "email"],
      "additionalProperties": false,
      "properties": {
        "id": {"type": "string", "pattern": "^cus_[A-Za-z0-9]{12}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "phone": {"type": "string", "pattern": "^\\+[0-9 ]{7,20}$"}
      }
    },
    "status": {"enum": ["pending", "paid", "shipped", "delivered", "cancelled"]},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "created_at": {"type": "string", "format": "date-time"},
    "channel": {"type": "string", "enum": ["web", "ios", "android", "pos"]},
    "locale": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
    "items": {
      "type": "array",
      "minItems": 1,
      "maxItems": 100,
      "items": {
        "type": "object",
        "required": ["sku", "quantity", "unit_price"],
        "additionalProperties": false,
        "properties": {
          "sku": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}-[A-Z0-9]{2}$"},
          "name": {"type": "string", "maxLength": 200},
          "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
          "unit_price": {"type": "number", "minimum": 0},
          "tags": {
            "type": "array",
            "maxItems": 10,
            "uniqueItems": true,
            "items": {"type": "string", "pattern": "^[a-z-]{1,32}$"}
          }
        }
      }
    },
    "shipping": {
      "type": "object",
      "required": ["method", "address"],
      "additionalProperties": false,
      "properties": {
        "method": {"enum": ["standard", "express", "pickup"]},
        "address": {
          "type": "object",
          "required": ["line1", "city", "postcode", "country"],
          "additionalProperties": false,
          "properties": {
            "line1": {"type": "string", "minLength": 1, "maxLength": 200},
            "line2": {"type": "string", "maxLength": 200},
            "city": {"type": "string", "minLength": 1, "maxLength": 100},
            "postcode": {"type": "string", "pattern": "^[A-Z0-9 -]{3,10}$"},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
          }
        }
      }
    },
    "gift": {"type": "boolean"},
    "notes": {"type": ["string", "null"], "maxLength": 500},
    "coupon": {"type": "string", "pattern": "^[A-Z0-9]{4,16}$"},
    "total": {"type": "number", "minimum": 0}
  }
})json";

// A valid order, 1001 bytes.
constexpr char kOrderBody[] =
    R"json({"order_id":"ord_7Hq2mX9kLp4Rt8Vz",)json"
    R"json("customer":{"id":"cus_3Fj8Kd2Lm9Qx","name":"Ada Lovelace",)json"
    R"json("email":"ada.lovelace@example.com","phone":"+41 44 668 18 00"},)json"
    R"json("status":"pending","currency":"CHF","created_at":"2024-05-14T09:21:37Z",)json"
    R"json("channel":"web","locale":"en-GB",)json"
    R"json("items":[{"sku":"BK-1043-PB","name":"Notebook, dotted, A5","quantity":3,)json"
    R"json("unit_price":12.5,"tags":["stationery","paper"]},)json"
    R"json({"sku":"PN-2210-BL","name":"Fountain pen, blue ink","quantity":1,)json"
    R"json("unit_price":48.9,"tags":["pens"]},)json"
    R"json({"sku":"IN-0087-BK","name":"Ink cartridges, black, pack of 6","quantity":2,)json"
    R"json("unit_price":7.25,"tags":["pens","refills"]},)json"
    R"json({"sku":"DS-5501-OK","name":"Desk organiser, oak","quantity":1,)json"
    R"json("unit_price":64.0,"tags":["desk","wood"]}],)json"
    R"json("shipping":{"method":"standard","address":{"line1":"Bahnhofstrasse 12",)json"
    R"json("line2":"3rd floor, apartment 7","city":"Zurich","postcode":"8001","country":"CH"}},)json"
    R"json("gift":false,)json"
    R"json("notes":"Please leave the parcel with the concierge if nobody answers the door. )json"
    R"json(Thank you!","coupon":"SPRING24","total":192.4})json";

// The same order with mistakes all over it (about 1 KB): wrong types, an unknown enum value,
// patterns not matched, a number below its minimum, a missing required property and an extra
// one. Validation collects every violation (a second pass after the first failure).
constexpr char kBadOrderBody[] =
    R"json({"order_id":7294011,)json"
    R"json("customer":{"id":"cus_3Fj8Kd2Lm9Qx","name":"Ada Lovelace",)json"
    R"json("email":42,"phone":"+41 44 668 18 00"},)json"
    R"json("status":"unknown","currency":"chf","created_at":"2024-05-14T09:21:37Z",)json"
    R"json("channel":"web","locale":"en-GB",)json"
    R"json("items":[{"sku":"BK-1043-PB","name":"Notebook, dotted, A5","quantity":3,)json"
    R"json("unit_price":12.5,"tags":["stationery","paper"]},)json"
    R"json({"sku":"PN-2210-BL","name":"Fountain pen, blue ink","quantity":0,)json"
    R"json("unit_price":48.9,"tags":["pens"]},)json"
    R"json({"sku":"ink","name":"Ink cartridges, black, pack of 6","quantity":2,)json"
    R"json("unit_price":"7.25","tags":["pens","refills"]},)json"
    R"json({"sku":"DS-5501-OK","name":"Desk organiser, oak","quantity":1,)json"
    R"json("unit_price":64.0,"tags":["desk","desk"]}],)json"
    R"json("shipping":{"method":"standard","address":{"line1":"Bahnhofstrasse 12",)json"
    R"json("line2":"3rd floor, apartment 7","city":"Zurich","postcode":"8001"}},)json"
    R"json("gift":"no","discount":10,)json"
    R"json("notes":"Please leave the parcel with the concierge if nobody answers the door. )json"
    R"json(Thank you!","coupon":"SPRING24","total":-192.4})json";

// The route's schema, compiled once (at deploy in the gateway).
const CompiledSchema* OrderSchema(benchmark::State& state) {
  static std::string failure;
  static const CompiledSchema* schema = [] {
    auto compiled = CompiledSchema::Compile(kOrderSchema);
    if (!compiled.ok()) {
      failure = compiled.status().ToString();
      return static_cast<const CompiledSchema*>(nullptr);
    }
    return static_cast<const CompiledSchema*>(new CompiledSchema(std::move(*compiled)));
  }();
  if (schema == nullptr)
    state.SkipWithError(("the order schema does not compile: " + failure).c_str());
  return schema;
}

void BM_SchemaValidateValid1KB(benchmark::State& state) {
  const CompiledSchema* schema = OrderSchema(state);
  if (schema == nullptr) return;
  const std::string body = kOrderBody;
  if (auto violations = schema->Validate(body); !violations.empty()) {
    state.SkipWithError(
        ("the valid order is refused: " + violations[0].pointer + ": " + violations[0].message)
            .c_str());
    return;
  }
  for (auto _ : state) {
    auto violations = schema->Validate(body);
    benchmark::DoNotOptimize(violations);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_SchemaValidateValid1KB)->Unit(benchmark::kMicrosecond);

void BM_SchemaValidateInvalid1KB(benchmark::State& state) {
  const CompiledSchema* schema = OrderSchema(state);
  if (schema == nullptr) return;
  const std::string body = kBadOrderBody;
  const std::size_t expected = schema->Validate(body).size();
  if (expected == 0) {
    state.SkipWithError("the invalid order is accepted");
    return;
  }
  for (auto _ : state) {
    auto violations = schema->Validate(body);
    benchmark::DoNotOptimize(violations);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
  state.counters["violations"] = static_cast<double>(expected);
}
BENCHMARK(BM_SchemaValidateInvalid1KB)->Unit(benchmark::kMicrosecond);

// The schema compiled at deploy, once per route: for scale, not on the request path.
void BM_SchemaCompile(benchmark::State& state) {
  for (auto _ : state) {
    auto compiled = CompiledSchema::Compile(kOrderSchema);
    if (!compiled.ok()) {
      state.SkipWithError(compiled.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(compiled);
  }
}
BENCHMARK(BM_SchemaCompile)->Unit(benchmark::kMicrosecond);

// --- WAF
// ------------------------------------------------------------------------------------------

// The default engine of a route (block at paranoia 1), built once: Create parses the CRS.
const WafEngine* DefaultWaf(std::string* error) {
  static std::string failure;
  static const WafEngine* engine = [] {
    auto created = WafEngine::Create(WafSettings{});
    if (!created.ok()) {
      failure = created.status().ToString();
      return static_cast<const WafEngine*>(nullptr);
    }
    return static_cast<const WafEngine*>(created->release());
  }();
  *error = failure;
  return engine;
}

// What a browser or an API client sends: the usual headers, a bearer token and cookies.
WafRequest ApiRequest(std::string method, std::string uri) {
  WafRequest r;
  r.client_ip = "203.0.113.7";
  r.client_port = 51234;
  r.server_ip = "10.0.0.10";
  r.server_port = 443;
  r.method = std::move(method);
  r.uri = std::move(uri);
  r.request_id = "b7e1f0c2-6a3d-4e59-8f21-0c9d7a6b5e43";
  r.headers = {
      {"Host", "api.example.com"},
      {"User-Agent",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36"},
      {"Accept", "application/json, text/plain, */*"},
      {"Accept-Language", "en-GB,en;q=0.9,de-CH;q=0.8"},
      {"Accept-Encoding", "gzip, deflate, br"},
      {"Authorization",
       "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS0xIiwidHlwIjoiSldUIn0."
       "eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbS8iLCJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoibm90ZXMi"
       "LCJleHAiOjE3MzAwMDAwMDAsInNjb3BlIjoibm90ZXM6cmVhZCBub3Rlczp3cml0ZSJ9."
       "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYmFzZTY0dXJsLWVuY29kZWQtLS0tLS0tLS0tLS0tLS0tLS0tLS0"},
      {"Origin", "https://shop.example.com"},
      {"Referer", "https://shop.example.com/orders?page=2&sort=-created_at"},
      {"Cookie", "session=7f3c9a1e-5b2d-4c8e-9f1a-2d3e4f5a6b7c; theme=dark"},
      {"X-Request-Id", "0c9d7a6b-5e43-4e59-8f21-b7e1f0c26a3d"},
  };
  return r;
}

WafRequest JsonPost(std::string uri, std::string body) {
  WafRequest r = ApiRequest("POST", std::move(uri));
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Content-Length", std::to_string(body.size()));
  r.body = std::move(body);
  return r;
}

void RunWaf(benchmark::State& state, const WafRequest& request, bool want_blocked) {
  std::string error;
  const WafEngine* waf = DefaultWaf(&error);
  if (waf == nullptr) {
    state.SkipWithError(("the WAF cannot start: " + error).c_str());
    return;
  }
  const WafVerdict check = waf->Inspect(request);
  if (check.blocked != want_blocked) {
    state.SkipWithError((std::string(want_blocked ? "not blocked" : "blocked") +
                         " (anomaly score " + std::to_string(check.anomaly_score) +
                         "): " + check.log)
                            .c_str());
    return;
  }
  for (auto _ : state) {
    WafVerdict verdict = waf->Inspect(request);
    benchmark::DoNotOptimize(verdict);
  }
  state.counters["rules"] = static_cast<double>(waf->rule_count());
  state.counters["anomaly_score"] = static_cast<double>(check.anomaly_score);
}

void BM_WafInspectGet(benchmark::State& state) {
  RunWaf(state, ApiRequest("GET", "/shop/prod/orders/ord_7Hq2mX9kLp4Rt8Vz?expand=items&page=2"),
         false);
}
BENCHMARK(BM_WafInspectGet)->Unit(benchmark::kMicrosecond);

void BM_WafInspectPostJson1KB(benchmark::State& state) {
  RunWaf(state, JsonPost("/shop/prod/orders", kOrderBody), false);
}
BENCHMARK(BM_WafInspectPostJson1KB)->Unit(benchmark::kMicrosecond);

// The same POST with a classic SQL injection in one string of the body: blocked (403).
void BM_WafInspectPostSqliBlocked(benchmark::State& state) {
  std::string body = kOrderBody;
  const std::string coupon = R"("coupon":"SPRING24")";
  body.replace(body.find(coupon), coupon.size(),
               R"("coupon":"x' OR '1'='1' UNION SELECT password FROM users --")");
  RunWaf(state, JsonPost("/shop/prod/orders", std::move(body)), true);
}
BENCHMARK(BM_WafInspectPostSqliBlocked)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace moatless::gateway
