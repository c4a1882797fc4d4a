// The differential tests' input: a generator writes one JSON object per case and line, then the
// trailer {"end": true, "count": N}. CaseStream reads it and checks at the end that the trailer
// came and counted exactly the cases read, so that a generator that died midway cannot pass for a
// short run.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

namespace moatless::testing {

class CaseStream {
 public:
  // `tool` names the checker in messages.
  CaseStream(std::istream& in, std::string tool) : in_(in), tool_(std::move(tool)) {}

  // The next case, with its raw line in `line`; nullopt at the trailer, at the end of the input,
  // or at a line that is not a JSON object (then Complete() fails).
  std::optional<boost::json::object> Next(std::string& line) {
    while (!done_ && std::getline(in_, line)) {
      if (line.empty()) continue;
      boost::system::error_code ec;
      boost::json::value parsed = boost::json::parse(line, ec);
      if (ec || !parsed.is_object()) {
        std::cerr << tool_ << ": input line is not a JSON object: " << ec.message() << "\n";
        malformed_ = true;
        break;
      }
      boost::json::object& object = parsed.as_object();
      if (object.contains("end")) {
        trailer_count_ = static_cast<std::size_t>(object.at("count").to_number<std::int64_t>());
        break;
      }
      ++cases_;
      return std::move(object);
    }
    done_ = true;
    return std::nullopt;
  }

  std::size_t cases() const { return cases_; }

  // Whether the whole input arrived intact; prints why not.
  bool Complete() const {
    if (malformed_) return false;
    if (!trailer_count_) {
      std::cout << "FAIL: the input ended without the generator's trailer (did it die?)\n";
      return false;
    }
    if (*trailer_count_ != cases_) {
      std::cout << "FAIL: the generator wrote " << *trailer_count_ << " cases, " << cases_
                << " arrived\n";
      return false;
    }
    return true;
  }

 private:
  std::istream& in_;
  const std::string tool_;
  std::size_t cases_ = 0;
  std::optional<std::size_t> trailer_count_;
  bool malformed_ = false;
  bool done_ = false;
};

}  // namespace moatless::testing
