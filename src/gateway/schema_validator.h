// CompiledSchema: a JSON Schema (draft-04 or draft-07) compiled once and then used to validate
// JSON documents — the gateway's request bodies today, queue events later; nothing here knows
// HTTP. Validation runs on valijson 1.0, with every `pattern` and `patternProperties` regex on
// RE2 (linear time: no ReDoS) instead of valijson's std::regex.
//
// Compile refuses (kInvalidArgument, message `at #/pointer: what`, the pointer naming the
// offending location of the schema document; for invalid JSON and nesting, `at #` and the byte
// offset) anything it could not validate with exactly the meaning the schema states:
//   - invalid JSON, a document over SchemaLimits::max_schema_bytes or nesting deeper than
//     max_depth;
//   - keywords of the wrong type or range (`{"type": 5}`, `{"properties": []}`,
//     `{"minLength": -1}`, an unknown type name, an empty allOf/anyOf/oneOf, ...), and NUL
//     characters in property names;
//   - regexes RE2 cannot run with their ECMA-262 meaning: backreferences (`\1`, `\k<name>`),
//     lookahead and lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`), inline modifiers (`(?i)`),
//     unknown escapes (`\a`), octal escapes, lone surrogates, and RE2's own limits (repetition
//     counts over 1000, programs over 4 MiB);
//   - `$ref`s that leave the document. Only references resolving inside the schema itself are
//     followed: JSON pointers (`#/definitions/a`), and the `$id` (draft-07) / `id` (draft-04)
//     URIs and plain-name anchors (`#foo`) that the document itself declares. Remote
//     references — another document, the draft metaschemas included — are refused at compile
//     time, never fetched;
//   - `$ref`s to a location that does not exist; reference cycles that never consume input
//     (`{"$ref": "#"}`, a definition whose allOf/anyOf/oneOf/not/if/then/else/dependencies lead
//     back to itself through `$ref` without descending into a property or an item), and chains of
//     such in-place schemas longer than max_depth.
// Compile never aborts and never throws; valijson's and Boost.JSON's exceptions stay inside. It
// briefly runs valijson's parser on a thread of its own (its recursion follows every reference,
// so the thread's stack is sized for the schema).
//
// Semantics: the draft is the document's `$schema` (draft-04 or draft-07; anything else is
// refused); without one, the default draft (draft-07 unless the caller says otherwise). As in both
// drafts, a `$ref` overrides its sibling keywords and unknown keywords are ignored. `format` is an
// annotation: it is not asserted (draft-07's default, and optional in draft-04); nor are
// contentMediaType / contentEncoding. `pattern` follows ECMA-262 as closely as RE2 allows: `.`
// excludes line terminators, `\s` is ECMA's whitespace set (outside character classes; inside
// one, `\S` keeps RE2's ASCII meaning), `\d` and `\w` are ASCII, `\uXXXX` / `\u{...}` / `\cX` are
// translated, `(?<name>` groups and `\p{Letter}`-style long property names are mapped to RE2's
// spelling. Numbers: draft-07 counts 1.0 as an integer, draft-04 does not; integers beyond 64
// bits arrive as doubles (draft-04 does not count them as integers) and numbers compare as
// doubles. Duplicate keys in a document: the last one counts (as for JavaScript's JSON.parse).
//
// Validate never throws either. It returns no violation for a valid document; otherwise at most
// max_violations violations whose pointers and messages total at most max_message_bytes (a last
// "more violations not shown" entry says when some were left out), each with the JSON pointer of
// the offending location of the document; names taken from the document are shortened in
// messages. A malformed document is one violation {"", "the body is not valid JSON"}. The work a
// document can cause is bounded: nesting deeper than max_instance_depth, more than max_steps
// subschema evaluations in a pass (about 50 ms), or evaluations nested over 1000 deep is one
// violation at "" — the document is refused, never waved through.
//
// Thread safety: a CompiledSchema is immutable; copies share it; Validate is const and may run on
// any number of threads at once.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace moatless::gateway {

enum class SchemaDraft { kDraft4, kDraft7 };

// Compile raises max_violations to at least 1 and max_message_bytes to at least 256, and lowers
// max_depth and max_instance_depth to at most 256.
struct SchemaLimits {
  std::size_t max_schema_bytes = 256 * 1024;
  std::size_t max_depth = 64;            // nesting of the schema document (objects and arrays)
  std::size_t max_violations = 20;       // reported per validation
  std::size_t max_message_bytes = 4096;  // total size of the reported violations
  std::size_t max_instance_depth = 64;   // nesting of a validated document
  // Subschema evaluations per pass of Validate (a valid document takes one pass, an invalid one a
  // second pass to collect its violations).
  std::size_t max_steps = 1'000'000;
};

// One reason a document does not match: `pointer` is the RFC 6901 JSON pointer of the offending
// location in the validated document ("" for the whole document, "/title", "/items/3"), `message`
// says what is wrong in plain words ("expected string, got integer").
struct Violation {
  std::string pointer;
  std::string message;

  friend bool operator==(const Violation&, const Violation&) = default;
};

class CompiledSchema {
 public:
  // Parses and compiles a JSON Schema document; see the top of this file for what is refused.
  static core::Result<CompiledSchema> Compile(std::string_view schema_json,
                                              SchemaLimits limits = {});
  // The same, with the draft to assume when the document has no `$schema` (API Gateway models and
  // the JSON-Schema-Test-Suite leave it out).
  static core::Result<CompiledSchema> Compile(std::string_view schema_json,
                                              SchemaDraft default_draft, SchemaLimits limits = {});

  // Validates a JSON document given as text. Empty = valid.
  std::vector<Violation> Validate(std::string_view instance_json) const;
  std::vector<Violation> Validate(const char* instance_json) const {
    return Validate(std::string_view(instance_json));
  }
  // Validates a parsed document (numbers: int64, uint64 and double all count as JSON numbers).
  std::vector<Violation> Validate(const boost::json::value& instance) const;

  SchemaDraft draft() const;
  const SchemaLimits& limits() const;

  struct Impl;  // schema_validator.cc

 private:
  explicit CompiledSchema(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  std::shared_ptr<const Impl> impl_;
};

}  // namespace moatless::gateway
