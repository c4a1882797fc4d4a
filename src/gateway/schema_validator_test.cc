// Tests of CompiledSchema: the official JSON-Schema-Test-Suite (draft4, draft7, optional/ counted
// apart; every failure must be listed in testdata/json_schema_known_failures.txt and every listed
// test must still fail), the refusals of Compile and where they point, linear-time regexes,
// violation pointers, messages and caps, the bounds on work and recursion, and threads.
#include "gateway/schema_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace moatless::gateway {

void PrintTo(const Violation& violation, std::ostream* os) {
  *os << "{\"" << violation.pointer << "\", \"" << violation.message << "\"}";
}

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- The official JSON-Schema-Test-Suite ----------------------------------------------------

const fs::path kSuite = fs::path(MOATLESS_TESTDATA_DIR) / "json-schema-test-suite";
const fs::path kKnownFailures =
    fs::path(__FILE__).parent_path() / "testdata" / "json_schema_known_failures.txt";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One test of the suite: "draft4/ref.json", the group's and the test's descriptions.
using TestId = std::tuple<std::string, std::string, std::string>;

std::string Show(const TestId& id) {
  return std::get<0>(id) + "\t" + std::get<1>(id) + "\t" + std::get<2>(id);
}

struct Outcome {
  TestId id;
  bool optional = false;
  bool passed = false;
  bool remote_ref_refused = false;  // compile refused a remote $ref (by design)
  std::string detail;
};

std::vector<Outcome> RunDraft(const std::string& draft, SchemaDraft default_draft) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(kSuite / "tests" / draft)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Outcome> outcomes;
  for (const fs::path& file : files) {
    const std::string name = fs::relative(file, kSuite / "tests").generic_string();
    const bool optional = name.find("/optional/") != std::string::npos;
    const json::value groups = json::parse(ReadFile(file));
    for (const json::value& group : groups.as_array()) {
      const std::string group_description(group.at("description").as_string());
      const core::Result<CompiledSchema> schema =
          CompiledSchema::Compile(json::serialize(group.at("schema")), default_draft);
      for (const json::value& test : group.at("tests").as_array()) {
        Outcome outcome{
            .id = {name, group_description, std::string(test.at("description").as_string())},
            .optional = optional};
        if (!schema.ok()) {
          outcome.detail = "compile: " + schema.status().message();
          outcome.remote_ref_refused =
              schema.status().message().find("remote reference") != std::string::npos;
        } else {
          const std::vector<Violation> violations = schema->Validate(test.at("data"));
          const bool expected = test.at("valid").as_bool();
          outcome.passed = violations.empty() == expected;
          if (!outcome.passed) {
            outcome.detail = expected ? "refused: " + violations.front().pointer + " " +
                                            violations.front().message
                                      : "accepted an invalid document";
          }
        }
        outcomes.push_back(std::move(outcome));
      }
    }
  }
  return outcomes;
}

// The remotes/ path of the document a refused remote $ref names ("folder/x.json"), or
// "metaschema" for json-schema.org's; "" if the message names neither.
std::string RemoteDocument(const std::string& detail) {
  const std::string marker = "(it names ";
  const std::size_t start = detail.find(marker);
  if (start == std::string::npos) return "";
  const std::size_t end = detail.find(", another document)", start);
  if (end == std::string::npos) return "";
  const std::string uri = detail.substr(start + marker.size(), end - start - marker.size());
  if (uri.starts_with("http://json-schema.org/")) return "metaschema";
  const std::string served = "http://localhost:1234/";
  return uri.starts_with(served) ? uri.substr(served.size()) : "";
}

struct KnownFailure {
  std::string reason;
  int line = 0;
};

// Lines "file<TAB>group description<TAB>test description<TAB>reason"; '#' starts a comment.
std::map<TestId, KnownFailure> LoadKnownFailures() {
  std::map<TestId, KnownFailure> known;
  std::istringstream in(ReadFile(kKnownFailures));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    EXPECT_EQ(fields.size(), 4u) << kKnownFailures << ":" << number << ": " << line;
    if (fields.size() != 4) continue;
    const bool inserted =
        known.emplace(TestId{fields[0], fields[1], fields[2]}, KnownFailure{fields[3], number})
            .second;
    EXPECT_TRUE(inserted) << kKnownFailures << ":" << number << " is listed twice";
  }
  return known;
}

struct Tally {
  int total = 0;
  int passed = 0;
  int remote = 0;  // failed because a remote $ref is refused by design

  double Rate() const { return total == 0 ? 0 : 100.0 * passed / total; }
  double RateWithoutRemote() const {
    return total == remote ? 0 : 100.0 * passed / (total - remote);
  }
};

void CheckDraft(const std::string& draft, SchemaDraft default_draft) {
  if (!fs::exists(kSuite / "tests" / draft)) {
    GTEST_SKIP() << "JSON-Schema-Test-Suite not found at " << kSuite / "tests" / draft
                 << " (set -DMOATLESS_TESTDATA_DIR): the official tests did NOT run";
  }
  ASSERT_TRUE(fs::exists(kSuite / "remotes")) << kSuite / "remotes";
  ASSERT_TRUE(fs::exists(kKnownFailures)) << kKnownFailures;
  const std::vector<Outcome> outcomes = RunDraft(draft, default_draft);
  const std::map<TestId, KnownFailure> known = LoadKnownFailures();

  Tally required;
  Tally optional;
  int served_refs = 0;      // remote $refs to a document of remotes/
  int metaschema_refs = 0;  // remote $refs to a draft metaschema
  std::set<TestId> seen;
  std::ostringstream unexpected;
  for (const Outcome& outcome : outcomes) {
    seen.insert(outcome.id);
    Tally& tally = outcome.optional ? optional : required;
    ++tally.total;
    tally.passed += outcome.passed;
    tally.remote += outcome.remote_ref_refused;
    const auto listed = known.find(outcome.id);
    if (outcome.passed) {
      EXPECT_TRUE(listed == known.end())
          << "listed as a known failure (line " << listed->second.line
          << ") but passes now; remove it: " << Show(outcome.id);
      continue;
    }
    if (listed == known.end()) {
      unexpected << Show(outcome.id) << "\t" << outcome.detail << "\n";
      continue;
    }
    // A failure blamed on the refusal of remote references must really be that, and of a
    // document the suite would serve locally (remotes/ at http://localhost:1234/) or of a draft
    // metaschema: the test did offer what the schema asked for; the validator refused it.
    if (listed->second.reason.starts_with("remote $ref")) {
      EXPECT_TRUE(outcome.remote_ref_refused)
          << Show(outcome.id) << " is listed as a remote $ref, but: " << outcome.detail;
      const std::string local = RemoteDocument(outcome.detail);
      if (local == "metaschema") {
        ++metaschema_refs;
      } else {
        EXPECT_TRUE(fs::is_regular_file(kSuite / "remotes" / local))
            << Show(outcome.id) << ": not a document of remotes/: " << outcome.detail;
        ++served_refs;
      }
    }
  }
  EXPECT_TRUE(unexpected.str().empty()) << "failing tests missing from " << kKnownFailures << ":\n"
                                        << unexpected.str();
  for (const auto& [id, failure] : known) {
    if (std::get<0>(id).starts_with(draft + "/")) {
      EXPECT_TRUE(seen.contains(id)) << "line " << failure.line << " names no test: " << Show(id);
    }
  }

  std::cout << "[ SUITE    ] " << draft << " required: " << required.passed << "/" << required.total
            << " passed (" << required.Rate() << "%); " << required.remote
            << " of the failures are remote $refs, refused by design; "
            << "without them " << required.passed << "/" << required.total - required.remote << " ("
            << required.RateWithoutRemote() << "%)\n"
            << "[ SUITE    ] " << draft << " optional: " << optional.passed << "/" << optional.total
            << " passed (" << optional.Rate() << "%); " << optional.remote << " remote $refs\n"
            << "[ SUITE    ] " << draft << " remote $refs refused: " << served_refs
            << " to documents of remotes/ (served at http://localhost:1234/), " << metaschema_refs
            << " to a draft metaschema\n";
  EXPECT_GE(required.total, 600);
  // Remote references are refused by design (see schema_validator.h); the bar applies to the
  // rest. With them counted, 98% is out of reach by construction (draft4: 19 of 618 tests need
  // a remote document).
  EXPECT_GE(required.RateWithoutRemote(), 98.0);
}

TEST(JsonSchemaTestSuite, Draft4) { CheckDraft("draft4", SchemaDraft::kDraft4); }

TEST(JsonSchemaTestSuite, Draft7) { CheckDraft("draft7", SchemaDraft::kDraft7); }

// ---- Helpers --------------------------------------------------------------------------------

CompiledSchema MustCompile(std::string_view schema, SchemaLimits limits = {}) {
  core::Result<CompiledSchema> compiled = CompiledSchema::Compile(schema, limits);
  EXPECT_TRUE(compiled.ok()) << schema << "\n" << compiled.status();
  return std::move(compiled).value();
}

// The message of the refusal of `schema`, which must be refused.
std::string Refusal(std::string_view schema, SchemaLimits limits = {},
                    SchemaDraft draft = SchemaDraft::kDraft7) {
  const core::Result<CompiledSchema> compiled = CompiledSchema::Compile(schema, draft, limits);
  EXPECT_FALSE(compiled.ok()) << "compiled: " << schema;
  if (compiled.ok()) return "";
  EXPECT_EQ(compiled.status().code(), core::StatusCode::kInvalidArgument) << compiled.status();
  return compiled.status().message();
}

std::string Nested(std::string_view open, std::string_view inner, std::string_view close,
                   int levels) {
  std::string out;
  for (int i = 0; i < levels; ++i) out += open;
  out += inner;
  for (int i = 0; i < levels; ++i) out += close;
  return out;
}

std::size_t Bytes(const std::vector<Violation>& violations) {
  std::size_t bytes = 0;
  for (const Violation& v : violations) bytes += v.pointer.size() + v.message.size();
  return bytes;
}

// ---- Compile refuses malformed schemas, with the pointer of the offending location ----------

TEST(SchemaCompile, WrongKeywordTypes) {
  EXPECT_THAT(Refusal(R"({"type": 5})"), StartsWith("at #/type: must be one of"));
  EXPECT_THAT(Refusal(R"({"type": "strin"})"), StartsWith("at #/type: "));
  EXPECT_THAT(Refusal(R"({"type": ["string", "string"]})"), StartsWith("at #/type/1: "));
  EXPECT_THAT(Refusal(R"({"properties": []})"), StartsWith("at #/properties: must be an object"));
  EXPECT_THAT(Refusal(R"({"minLength": -1})"),
              StartsWith("at #/minLength: must be a non-negative integer"));
  EXPECT_THAT(Refusal(R"({"maxItems": 1.5})"), StartsWith("at #/maxItems: "));
  EXPECT_THAT(Refusal(R"({"multipleOf": 0})"), StartsWith("at #/multipleOf: "));
  EXPECT_THAT(Refusal(R"({"required": "a"})"), StartsWith("at #/required: "));
  EXPECT_THAT(Refusal(R"({"required": ["a", "a"]})"), StartsWith("at #/required/1: "));
  EXPECT_THAT(Refusal(R"({"enum": 1})"), StartsWith("at #/enum: "));
  EXPECT_THAT(Refusal(R"({"anyOf": []})"), StartsWith("at #/anyOf: must be a non-empty array"));
  EXPECT_THAT(Refusal(R"({"allOf": [{}, 3]})"), StartsWith("at #/allOf/1: a schema must be"));
  EXPECT_THAT(Refusal(R"({"items": [{"type": {}}]})"), StartsWith("at #/items/0/type: "));
  EXPECT_THAT(Refusal(R"({"additionalProperties": "no"})"),
              StartsWith("at #/additionalProperties: "));
  EXPECT_THAT(Refusal(R"({"properties": {"a/b": {"properties": {"c": {"minimum": "1"}}}}})"),
              StartsWith("at #/properties/a~1b/properties/c/minimum: must be a number"));
  EXPECT_THAT(Refusal(R"({"dependencies": {"a": [1]}})"), StartsWith("at #/dependencies/a/0: "));
  EXPECT_THAT(Refusal(R"({"$schema": "http://json-schema.org/draft-06/schema#"})"),
              StartsWith("at #/$schema: unsupported"));
  EXPECT_THAT(Refusal("[]"), StartsWith("at #: a schema must be an object or a boolean"));
  // draft-04 specifics
  EXPECT_THAT(Refusal(R"({"not": true})", {}, SchemaDraft::kDraft4),
              StartsWith("at #/not: a schema must be an object"));
  EXPECT_THAT(Refusal(R"({"exclusiveMinimum": true})", {}, SchemaDraft::kDraft4),
              StartsWith("at #/exclusiveMinimum: needs minimum"));
  EXPECT_THAT(Refusal(R"({"$schema": "http://json-schema.org/draft-04/schema#",
                          "exclusiveMaximum": 3})"),
              StartsWith("at #/exclusiveMaximum: must be a boolean"));
}

TEST(SchemaCompile, InvalidJsonAndLimits) {
  EXPECT_THAT(Refusal(R"({"type": "string")"), StartsWith("at #: the schema is not valid JSON"));
  EXPECT_THAT(Refusal(""), StartsWith("at #: the schema is not valid JSON"));

  SchemaLimits small;
  small.max_schema_bytes = 64;
  const std::string big = R"({"description": ")" + std::string(100, 'x') + R"("})";
  EXPECT_THAT(Refusal(big, small),
              StartsWith("at #: the schema is 119 bytes, over the limit of 64"));
  EXPECT_TRUE(CompiledSchema::Compile(big).ok());

  // 64 levels of JSON nesting are allowed, 65 are not.
  const std::string deep_ok = Nested(R"({"not":)", "{}", "}", 63);
  const std::string too_deep = Nested(R"({"not":)", "{}", "}", 64);
  EXPECT_TRUE(CompiledSchema::Compile(deep_ok).ok());
  EXPECT_THAT(Refusal(too_deep), StartsWith("at #: the schema nests deeper than 64 levels"));
  SchemaLimits shallow;
  shallow.max_depth = 3;
  EXPECT_THAT(Refusal(R"({"properties": {"a": {"items": {}}}})", shallow),
              HasSubstr("nests deeper than 3 levels"));
  EXPECT_TRUE(CompiledSchema::Compile(R"({"properties": {"a": {}}})", shallow).ok());
}

TEST(SchemaCompile, RegexesRE2CannotRunAreRefused) {
  EXPECT_THAT(Refusal(R"({"pattern": "("})"),
              StartsWith("at #/pattern: invalid regular expression: missing )"));
  EXPECT_THAT(Refusal(R"({"pattern": "a{1001}"})"), StartsWith("at #/pattern: invalid"));
  EXPECT_THAT(Refusal(R"({"properties": {"p": {"pattern": "^(?=a)b"}}})"),
              StartsWith("at #/properties/p/pattern: lookahead (?= is not supported"));
  EXPECT_THAT(Refusal(R"j({"pattern": "a(?!b)"})j"), HasSubstr("lookahead (?! is not supported"));
  EXPECT_THAT(Refusal(R"({"pattern": "(?<=a)b"})"), HasSubstr("lookbehind (?<= is not"));
  EXPECT_THAT(Refusal(R"({"pattern": "(?<!a)b"})"), HasSubstr("lookbehind (?<! is not"));
  EXPECT_THAT(Refusal(R"({"pattern": "(a)\\1"})"),
              StartsWith("at #/pattern: backreferences (\\1) are not supported"));
  EXPECT_THAT(Refusal(R"({"pattern": "(?<x>a)\\k<x>"})"), HasSubstr("named backreferences"));
  EXPECT_THAT(Refusal(R"({"pattern": "(?i)abc"})"), HasSubstr("inline modifiers"));
  EXPECT_THAT(Refusal(R"({"pattern": "\\a"})"), HasSubstr("unknown escape \\a"));
  EXPECT_THAT(Refusal(R"({"pattern": "\\ud800"})"), HasSubstr("lone surrogate"));
  EXPECT_THAT(Refusal(R"j({"patternProperties": {"^(?!x)": {}}})j"),
              StartsWith("at #/patternProperties/^(?!x): lookahead"));
  EXPECT_THAT(Refusal(R"({"patternProperties": {"a/[": {}}})"),
              StartsWith("at #/patternProperties/a~1[: invalid regular expression"));
}

TEST(SchemaCompile, References) {
  EXPECT_THAT(Refusal(R"({"$ref": "#/definitions/missing"})"),
              StartsWith("at #/$ref: \"#/definitions/missing\" does not resolve"));
  EXPECT_THAT(Refusal(R"({"properties": {"a": {"$ref": "#/definitions/b"}},
                          "definitions": {"c": {}}})"),
              StartsWith("at #/properties/a/$ref: \"#/definitions/b\" does not resolve"));
  EXPECT_THAT(Refusal(R"({"$ref": "#nowhere"})"), HasSubstr("names no anchor"));
  EXPECT_THAT(Refusal(R"({"$ref": 5})"), StartsWith("at #/$ref: $ref must be a string"));
  // Cycles that never consume input.
  EXPECT_THAT(Refusal(R"({"$ref": "#"})"),
              StartsWith("at #/$ref: reference cycle that never consumes input: # -> #"));
  EXPECT_THAT(
      Refusal(R"({"definitions": {"a": {"$ref": "#/definitions/a"}}, "$ref": "#/definitions/a"})"),
      StartsWith("at #/definitions/a/$ref: reference cycle that never consumes input: "
                 "#/definitions/a -> #/definitions/a"));
  EXPECT_THAT(Refusal(R"({"definitions": {"a": {"allOf": [{"$ref": "#/definitions/b"}]},
                                          "b": {"not": {"anyOf": [{"$ref": "#/definitions/a"}]}}},
                          "properties": {"x": {"$ref": "#/definitions/a"}}})"),
              HasSubstr("reference cycle that never consumes input"));
  EXPECT_THAT(Refusal(R"({"definitions": {"a": {"if": {"$ref": "#/definitions/a"}}}})"),
              HasSubstr("reference cycle"));
  // Recursion that consumes input is fine.
  const CompiledSchema tree =
      MustCompile(R"({"type": "object", "properties": {"child": {"$ref": "#"}, "n": {"type":
                    "integer"}}})");
  EXPECT_TRUE(tree.Validate(R"({"child": {"child": {"n": 1}}})").empty());
  EXPECT_EQ(tree.Validate(R"({"child": {"child": {"n": "x"}}})"),
            (std::vector<Violation>{{"/child/child/n", "expected integer, got string"}}));
  // A long chain of references that never consume input is refused too.
  std::string chain = R"({"$ref": "#/definitions/d0", "definitions": {)";
  for (int i = 0; i < 70; ++i) {
    chain += "\"d" + std::to_string(i) + R"(": {"allOf": [{"$ref": "#/definitions/d)" +
             std::to_string(i + 1) + "\"}]},";
  }
  chain += R"("d70": {}}})";
  EXPECT_THAT(Refusal(chain), HasSubstr("deep, over the limit of 64"));
}

TEST(SchemaCompile, RemoteReferencesAreRefused) {
  EXPECT_THAT(Refusal(R"({"$ref": "http://example.com/schema.json"})"),
              StartsWith("at #/$ref: remote reference \"http://example.com/schema.json\" refused"));
  EXPECT_THAT(Refusal(R"({"properties": {"a": {"$ref": "other.json#/a"}}})"),
              StartsWith("at #/properties/a/$ref: remote reference \"other.json#/a\" refused"));
  EXPECT_THAT(Refusal(R"({"$ref": "http://json-schema.org/draft-07/schema#"})"),
              HasSubstr("remote reference"));
  EXPECT_THAT(Refusal(R"({"$id": "http://example.com/root.json", "items": {"$ref": "item.json"}})"),
              StartsWith("at #/items/$ref: remote reference \"item.json\" refused (it names "
                         "http://example.com/item.json, another document)"));
  // A $ref's sibling $id is ignored, like every sibling of $ref.
  EXPECT_THAT(Refusal(R"({"$id": "http://example.com/root.json", "$ref": "item.json"})"),
              HasSubstr("remote reference \"item.json\" refused (it names another document)"));
}

// References to what the document itself declares are local, whatever their spelling.
TEST(SchemaCompile, InDocumentIdentifiersResolve) {
  const CompiledSchema schema = MustCompile(R"({
      "$id": "http://example.com/root.json",
      "definitions": {
        "a": {"$id": "a.json", "type": "integer"},
        "b": {"$id": "#bee", "type": "string"},
        "c~/%": {"type": "boolean"}
      },
      "properties": {
        "a": {"$ref": "a.json"},
        "b": {"$ref": "#bee"},
        "c": {"$ref": "http://example.com/root.json#/definitions/c~0~1%25"}
      }})");
  EXPECT_TRUE(schema.Validate(R"({"a": 1, "b": "x", "c": true})").empty());
  EXPECT_EQ(schema.Validate(R"({"a": "1", "b": 2, "c": null})").size(), 3u);
}

// Compile answers every malformed schema with a Status: it never throws, never aborts.
TEST(SchemaCompile, NeverThrowsOnWrongValues) {
  const std::vector<std::string> keywords = {"type",
                                             "enum",
                                             "const",
                                             "multipleOf",
                                             "maximum",
                                             "minimum",
                                             "exclusiveMaximum",
                                             "exclusiveMinimum",
                                             "maxLength",
                                             "minLength",
                                             "pattern",
                                             "items",
                                             "additionalItems",
                                             "maxItems",
                                             "minItems",
                                             "uniqueItems",
                                             "contains",
                                             "maxProperties",
                                             "minProperties",
                                             "required",
                                             "properties",
                                             "patternProperties",
                                             "additionalProperties",
                                             "dependencies",
                                             "propertyNames",
                                             "if",
                                             "then",
                                             "else",
                                             "allOf",
                                             "anyOf",
                                             "oneOf",
                                             "not",
                                             "format",
                                             "$ref",
                                             "$id",
                                             "id",
                                             "definitions",
                                             "title",
                                             "description",
                                             "default",
                                             "$schema",
                                             "$comment"};
  const std::vector<std::string> values = {"null",
                                           "true",
                                           "false",
                                           "0",
                                           "-1",
                                           "1.5",
                                           "1e400",
                                           "18446744073709551615",
                                           "\"\"",
                                           "\"#\"",
                                           "\"x\"",
                                           "\"(\"",
                                           "[]",
                                           "[1]",
                                           "[\"a\"]",
                                           "[{}]",
                                           "[true]",
                                           "{}",
                                           "{\"a\": 1}",
                                           "{\"a\": {}}",
                                           "{\"(\": {}}",
                                           "{\"a\": [1]}",
                                           "{\"$ref\": \"#\"}"};
  int compiled = 0;
  for (const SchemaDraft draft : {SchemaDraft::kDraft4, SchemaDraft::kDraft7}) {
    for (const std::string& keyword : keywords) {
      for (const std::string& value : values) {
        const std::string schema = "{\"" + keyword + "\": " + value + "}";
        core::Result<CompiledSchema> result = CompiledSchema::Compile(schema, draft);
        if (result.ok()) {
          ++compiled;
          // Whatever compiled validates something without surprises.
          for (const char* doc : {"null", "1", "\"a\"", "[1, 1]", "{\"a\": 1}"}) {
            static_cast<void>(result->Validate(doc));
          }
        } else {
          EXPECT_EQ(result.status().code(), core::StatusCode::kInvalidArgument)
              << schema << ": " << result.status();
          EXPECT_THAT(result.status().message(), StartsWith("at #")) << schema;
        }
      }
    }
  }
  EXPECT_GT(compiled, 100);
}

// ---- Validation -------------------------------------------------------------------------------

TEST(SchemaValidate, ReDoSPatternRunsInLinearTime) {
  const CompiledSchema schema = MustCompile(R"({"type": "string", "pattern": "^(a+)+$"})");
  EXPECT_TRUE(schema.Validate(R"("aaaa")").empty());
  const std::string evil = "\"" + std::string(100'000, 'a') + "!\"";
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Violation> violations = schema.Validate(evil);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::cout << "[ REDOS    ] ^(a+)+$ against 100,000 a's and a '!': "
            << std::chrono::duration<double, std::milli>(elapsed).count() << " ms\n";
  EXPECT_EQ(violations, (std::vector<Violation>{{"", "does not match the pattern '^(a+)+$'"}}));

  // The same through patternProperties, on a long property name.
  const CompiledSchema names = MustCompile(
      R"({"patternProperties": {"^(a|aa)+$": {"type": "integer"}},
          "additionalProperties": false})");
  const std::string key = std::string(100'000, 'a') + "!";
  const std::vector<Violation> refused = names.Validate("{\"" + key + "\": 1}");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0].message, StartsWith("(somewhere below this location) property 'aaa"));
  EXPECT_TRUE(names.Validate(R"({"aaaa": 1})").empty());
}

TEST(SchemaValidate, PatternsFollowEcma262) {
  auto matches = [](std::string_view pattern, std::string_view json_string) {
    const std::string schema = "{\"pattern\": " + json::serialize(json::value(pattern)) + "}";
    const core::Result<CompiledSchema> compiled = CompiledSchema::Compile(schema);
    EXPECT_TRUE(compiled.ok()) << schema << ": " << compiled.status();
    return compiled.ok() && compiled->Validate(json_string).empty();
  };
  EXPECT_TRUE(matches("^\\d+$", R"("123")"));
  EXPECT_FALSE(matches("^\\d+$", "\"\u0661\""));  // Arabic-Indic digit: \d is ASCII
  EXPECT_TRUE(matches("^\\p{Letter}+$", R"("été")"));
  EXPECT_TRUE(matches("^\\p{digit}+$", "\"\u0661\""));
  EXPECT_TRUE(matches("^\\s$", R"("\u00a0")"));  // ECMA whitespace includes NBSP
  EXPECT_TRUE(matches("^\\s$", R"("\u000b")"));
  EXPECT_FALSE(matches("^\\S$", R"("\ufeff")"));
  EXPECT_FALSE(matches("^.$", R"("\n")"));
  EXPECT_FALSE(matches("^.$", R"("\u2028")"));
  EXPECT_TRUE(matches("^.$", R"("é")"));  // one code point
  EXPECT_TRUE(matches("^\\u00e9$", R"("é")"));
  EXPECT_TRUE(matches("^\\uD83D\\uDE00$", "\"\U0001F600\""));
  EXPECT_TRUE(matches("^\\u{1F600}$", "\"\U0001F600\""));
  EXPECT_TRUE(matches("^\\cC$", R"("\u0003")"));
  EXPECT_FALSE(matches("^abc$", R"("abc\n")"));
  EXPECT_TRUE(matches("^(?<year>\\d{4})-\\d{2}$", R"("2024-05")"));
  EXPECT_TRUE(matches("^[^]$", R"("\n")"));
  EXPECT_FALSE(matches("[]", R"("a")"));
  EXPECT_TRUE(matches("^[\\s\\d]+$", R"("1\u00a02")"));
  EXPECT_TRUE(matches("^[\\b]$", R"("\b")"));
  EXPECT_TRUE(matches("a", R"("bab")"));  // not anchored
}

TEST(SchemaValidate, PointersAndMessages) {
  const CompiledSchema schema = MustCompile(R"({
      "type": "object",
      "required": ["title", "address"],
      "additionalProperties": false,
      "properties": {
        "title": {"type": "string", "minLength": 3},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4},
                 "uniqueItems": true},
        "address": {
          "type": "object",
          "required": ["city", "zip"],
          "properties": {
            "city": {"type": "string"},
            "zip": {"type": "string", "pattern": "^[0-9]{5}$"}
          }
        },
        "count": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10, "multipleOf": 2},
        "kind": {"enum": ["a", "b"]},
        "a/b~c": {"type": "boolean"}
      }})");
  EXPECT_TRUE(
      schema.Validate(R"({"title": "abc", "address": {"city": "X", "zip": "12345"}})").empty());

  EXPECT_EQ(schema.Validate(R"({"title": 5, "address": {"city": 1, "zip": "1234"},
                                "tags": ["ok", 3, "toolong", "ok"], "extra": 1,
                                "count": 10.5, "kind": "c", "a/b~c": "no"})"),
            (std::vector<Violation>{
                {"/title", "expected string, got integer"},
                {"/address/city", "expected string, got integer"},
                {"/address/zip", "does not match the pattern '^[0-9]{5}$'"},
                {"/tags/1", "expected string, got integer"},
                {"/tags/2", "must be at most 4 characters long"},
                {"/tags", "items 0 and 3 are equal; items must be unique"},
                {"/extra", "property 'extra' is not allowed"},
                {"/count", "must be < 10"},
                {"/count", "must be a multiple of 2"},
                {"/count", "expected integer, got number"},
                {"/kind", "must be one of the values listed in enum"},
                {"/a~1b~0c", "expected boolean, got string"},
            }));
  EXPECT_EQ(schema.Validate(R"({"address": {"city": "X"}})"),
            (std::vector<Violation>{{"/address", "missing required property 'zip'"},
                                    {"", "missing required property 'title'"}}));
  EXPECT_EQ(schema.Validate(R"([1])"),
            (std::vector<Violation>{{"", "expected object, got array"}}));
}

TEST(SchemaValidate, CompositionMessages) {
  const CompiledSchema schema = MustCompile(R"({
      "properties": {
        "any": {"anyOf": [{"type": "string"}, {"type": "number"}]},
        "one": {"oneOf": [{"minimum": 0}, {"maximum": 10}]},
        "not": {"not": {"type": "null"}},
        "ifs": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": false},
        "list": {"type": "array", "items": [{"type": "integer"}], "additionalItems": false,
                 "contains": {"const": 7}}
      },
      "dependencies": {"a": ["b"]}})");
  EXPECT_EQ(schema.Validate(R"({"any": true, "one": 5, "not": null, "ifs": "x",
                                "list": [1, 2], "a": 1})"),
            (std::vector<Violation>{
                {"", "missing property 'b', required by dependencies"},
                {"/any", "expected string, got boolean"},
                {"/any", "expected number, got boolean"},
                {"/any", "does not match any of the schemas in anyOf"},
                {"/one", "matches more than one of the schemas in oneOf"},
                {"/not", "must not match the schema in not"},
                {"/ifs", "must be at least 2 characters long"},
                {"/list", "no item matches the schema in contains"},
                {"/list/1", "item 1 is not allowed: the array may have at most 1 items"},
            }));
  EXPECT_EQ(schema.Validate(R"({"ifs": 3})"),
            (std::vector<Violation>{{"/ifs", "no value is allowed here"}}));
}

TEST(SchemaValidate, MalformedAndTooDeepDocuments) {
  const CompiledSchema schema = MustCompile(R"({"type": "object"})");
  const std::vector<Violation> not_json = {{"", "the body is not valid JSON"}};
  EXPECT_EQ(schema.Validate(R"({"a": )"), not_json);
  EXPECT_EQ(schema.Validate(""), not_json);
  EXPECT_EQ(schema.Validate(R"({"a": 1} x)"), not_json);
  EXPECT_EQ(schema.Validate("\"\xff\""), not_json);  // not UTF-8

  const CompiledSchema any = MustCompile("{}");
  const std::string deep = Nested("[", "", "]", 65);
  const std::vector<Violation> too_deep = {{"", "the body nests deeper than 64 levels"}};
  EXPECT_EQ(any.Validate(deep), too_deep);
  EXPECT_EQ(any.Validate(json::parse(deep, {}, {.max_depth = 100})), too_deep);
  EXPECT_TRUE(any.Validate(Nested("[", "", "]", 64)).empty());
}

TEST(SchemaValidate, CapsHoldForThousandsOfErrors) {
  const CompiledSchema schema = MustCompile(
      R"({"type": "array", "items": {"type": "object", "required": ["id"],
          "properties": {"id": {"type": "string"}}, "additionalProperties": false}})");
  std::string body = "[";
  for (int i = 0; i < 5000; ++i) body += std::string(i ? "," : "") + R"({"id": 1, "x": 2})";
  body += "]";
  const std::vector<Violation> violations = schema.Validate(body);
  ASSERT_EQ(violations.size(), 20u);
  EXPECT_LE(Bytes(violations), 4096u);
  EXPECT_EQ(violations[0], (Violation{"/0/id", "expected string, got integer"}));
  EXPECT_EQ(violations[1], (Violation{"/0/x", "property 'x' is not allowed"}));
  EXPECT_EQ(violations.back(), (Violation{"", "more violations not shown"}));

  SchemaLimits limits;
  limits.max_violations = 3;
  limits.max_message_bytes = 300;
  const CompiledSchema tight =
      MustCompile(R"({"type": "array", "items": {"type": "string", "maxLength": 1}})", limits);
  std::string strings = "[";
  for (int i = 0; i < 3000; ++i)
    strings += std::string(i ? "," : "") + "\"" + std::string(50, 'x') + "\"";
  strings += "]";
  const std::vector<Violation> capped = tight.Validate(strings);
  EXPECT_LE(capped.size(), 3u);
  EXPECT_LE(Bytes(capped), 300u);
  EXPECT_EQ(capped.back().message, "more violations not shown");

  // A name taken from the document is shortened in messages.
  const std::string long_name(5000, 'n');
  const std::vector<Violation> named =
      MustCompile(R"({"additionalProperties": false})").Validate("{\"" + long_name + "\": 1}");
  ASSERT_EQ(named.size(), 1u);
  EXPECT_LE(Bytes(named), 4096u);
  EXPECT_THAT(named[0].message, HasSubstr("nnn...' is not allowed"));

  // One violation always fits, even in the smallest budget.
  SchemaLimits minimal;
  minimal.max_violations = 0;     // raised to 1
  minimal.max_message_bytes = 0;  // raised to 256
  const std::vector<Violation> one = MustCompile(R"({"additionalProperties": false})", minimal)
                                         .Validate("{\"" + long_name + "\": 1, \"b\": 2}");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_LE(Bytes(one), 256u);
}

TEST(SchemaValidate, WorkIsBounded) {
  // anyOf of two failing branches, 24 levels deep: 2^24 evaluations without a budget.
  std::string schema = R"({"$ref": "#/definitions/d0", "definitions": {)";
  for (int i = 0; i < 24; ++i) {
    const std::string next = "{\"$ref\": \"#/definitions/d" + std::to_string(i + 1) + "\"}";
    schema += "\"d" + std::to_string(i) + "\": {\"anyOf\": [" + next + ", " + next + "]},";
  }
  schema += R"("d24": {"type": "string"}}})";
  const CompiledSchema exponential = MustCompile(schema);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(
      exponential.Validate("1"),
      (std::vector<Violation>{{"", "the body is too complex to validate against this schema"}}));
  std::cout
      << "[ BUDGET   ] 2^24 anyOf branches refused after "
      << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count()
      << " ms\n";
  EXPECT_TRUE(exponential.Validate("\"s\"").empty());

  SchemaLimits few;
  few.max_steps = 10;
  const CompiledSchema items = MustCompile(R"({"items": {"type": "integer"}})", few);
  EXPECT_TRUE(items.Validate("[1, 2, 3]").empty());
  EXPECT_EQ(items.Validate("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]").size(), 1u);

  // uniqueItems sorts: 50,000 distinct items are quick, and a duplicate among them is found.
  std::string numbers = "[";
  for (int i = 0; i < 50'000; ++i) numbers += (i ? "," : "") + std::to_string(i);
  const CompiledSchema unique = MustCompile(R"({"uniqueItems": true})");
  EXPECT_TRUE(unique.Validate(numbers + "]").empty());
  EXPECT_EQ(unique.Validate(numbers + ", 17.0]"),
            (std::vector<Violation>{{"", "items 17 and 50000 are equal; items must be unique"}}));
}

// Deep structures cannot exhaust a stack: valijson's parser (recursing once per level of the
// references it follows) runs on a thread sized for the schema, and validation stops at 1000
// nested evaluations, refusing the document.
TEST(SchemaValidate, DeepReferencesNeitherCrashCompileNorValidate) {
  std::string chain = R"({"$ref": "#/definitions/d0", "definitions": {)";
  for (int i = 0; i < 3000; ++i) {
    chain += "\"d" + std::to_string(i) + R"(": {"properties": {"x": {"$ref": "#/definitions/d)" +
             std::to_string(i + 1) + "\"}}},";
  }
  chain += R"("d3000": {"type": "string"}}})";
  const CompiledSchema long_chain = MustCompile(chain);
  EXPECT_TRUE(long_chain.Validate(Nested(R"({"x":)", "1", "}", 60)).empty());

  // 20 schemas chained through allOf per level of the document: 41 nested evaluations a level.
  std::string loop = R"({"$ref": "#/definitions/a0", "definitions": {)";
  for (int i = 0; i < 20; ++i) {
    loop += "\"a" + std::to_string(i) + R"(": {"allOf": [{"$ref": "#/definitions/a)" +
            std::to_string(i + 1) + "\"}]},";
  }
  loop += R"("a20": {"properties": {"x": {"$ref": "#/definitions/a0"}}}}})";
  const CompiledSchema nested = MustCompile(loop);
  EXPECT_TRUE(nested.Validate(Nested(R"({"x":)", "1", "}", 20)).empty());
  EXPECT_EQ(
      nested.Validate(Nested(R"({"x":)", "1", "}", 60)),
      (std::vector<Violation>{{"", "the body is too complex to validate against this schema"}}));
}

TEST(SchemaValidate, Semantics) {
  // format is an annotation.
  EXPECT_TRUE(MustCompile(R"({"format": "email"})").Validate(R"("not an email")").empty());
  // uint64 values are numbers and integers; 1.0 is an integer in draft-07, not in draft-04.
  const CompiledSchema integer = MustCompile(R"({"type": "integer", "maximum": 1e30})");
  EXPECT_TRUE(integer.Validate("18446744073709551615").empty());
  EXPECT_TRUE(integer.Validate("1.0").empty());
  const core::Result<CompiledSchema> draft4 = CompiledSchema::Compile(
      R"({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"})");
  ASSERT_TRUE(draft4.ok());
  EXPECT_EQ(draft4->draft(), SchemaDraft::kDraft4);
  EXPECT_EQ(draft4->Validate("1.0").size(), 1u);
  EXPECT_TRUE(draft4->Validate("-5").empty());
  // Strings are compared whole, NUL included.
  const CompiledSchema nul = MustCompile(R"({"enum": ["a\u0000b"], "maxLength": 3})");
  EXPECT_TRUE(nul.Validate(R"("a\u0000b")").empty());
  EXPECT_EQ(nul.Validate(R"("a")").size(), 1u);
  EXPECT_EQ(MustCompile(R"({"maxLength": 2})").Validate(R"("a\u0000bc")").size(), 1u);
  // Lengths count code points.
  EXPECT_TRUE(MustCompile(R"({"maxLength": 2})").Validate(R"("é😀")").empty());
  // Duplicate keys: the last one counts, as for JSON.parse.
  EXPECT_TRUE(MustCompile(R"({"properties": {"a": {"type": "string"}}})")
                  .Validate(R"({"a": 1, "a": "x"})")
                  .empty());
  // Parsed documents give the same answers as text.
  const CompiledSchema object = MustCompile(R"({"required": ["a"]})");
  EXPECT_EQ(object.Validate(json::parse(R"({"b": 1})")), object.Validate(R"({"b": 1})"));
  EXPECT_EQ(object.Validate(std::string(R"({"a": 1})")), std::vector<Violation>{});
}

// ---- Threads ----------------------------------------------------------------------------------

TEST(SchemaValidate, ConcurrentValidateOnOneSchema) {
  const CompiledSchema schema = MustCompile(R"({
      "type": "object", "required": ["name"],
      "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"},
                     "tags": {"type": "array", "items": {"enum": ["x", "y"]},
                              "uniqueItems": true}}})");
  const CompiledSchema copy = schema;  // copies share the compiled schema
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const CompiledSchema& mine = t % 2 ? copy : schema;
      for (int i = 0; i < 500; ++i) {
        if (!mine.Validate(R"({"name": "abc", "tags": ["x", "y"]})").empty()) ++mismatches[t];
        const std::vector<Violation> bad = mine.Validate(R"({"name": "ABC", "tags": ["x", "x"]})");
        const std::vector<Violation> expected = {
            {"/name", "does not match the pattern '^[a-z]+$'"},
            {"/tags", "items 0 and 1 are equal; items must be unique"}};
        if (bad != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(8, 0));
}

}  // namespace
}  // namespace moatless::gateway
