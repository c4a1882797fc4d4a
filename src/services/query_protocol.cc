#include "services/query_protocol.h"

#include <boost/url/parse_query.hpp>
#include <charconv>

namespace moatless::services {
namespace {

constexpr std::size_t kMaxFormBytes = 64 * 1024;
constexpr std::size_t kMaxParams = 500;

core::Status Malformed(std::string message) {
  return core::InvalidArgumentError(std::move(message)).WithAwsType("MalformedQueryString");
}

}  // namespace

std::optional<std::string> QueryRequest::Get(std::string_view name) const {
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return it->second;
}

core::Result<std::string> QueryRequest::Require(std::string_view name) const {
  auto value = Get(name);
  if (!value) {
    return core::InvalidArgumentError("The request must contain the parameter " + std::string(name))
        .WithAwsType("MissingParameter");
  }
  return *value;
}

core::Result<std::optional<std::int64_t>> QueryRequest::GetInt(std::string_view name) const {
  auto text = Get(name);
  if (!text) return std::optional<std::int64_t>();
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return core::InvalidArgumentError(std::string(name) + " must be an integer")
        .WithAwsType("ValidationError");
  }
  return std::optional<std::int64_t>(value);
}

std::map<std::string, std::string> QueryRequest::Tags() const {
  std::map<std::string, std::string> tags;
  // One past IAM's limit of 50, so that the service's own check sees too many.
  for (int n = 1; n <= 51; ++n) {
    const std::string prefix = "Tags.member." + std::to_string(n) + ".";
    auto key = Get(prefix + "Key");
    if (!key) break;
    tags[*key] = Get(prefix + "Value").value_or("");
  }
  return tags;
}

core::Result<QueryRequest> ParseQueryRequest(std::string_view form) {
  if (form.size() > kMaxFormBytes) return Malformed("the request parameters are too large");
  // Boost.URL 1.81's parse_query reads an empty view as a C string (past its end, or from null):
  // no parameters never reach it.
  if (form.empty()) {
    return core::InvalidArgumentError("The request must contain the parameter Action")
        .WithAwsType("MissingAction");
  }
  auto parsed = boost::urls::parse_query(boost::core::string_view(form.data(), form.size()));
  if (!parsed) return Malformed("the request parameters are not valid form encoding");
  QueryRequest out;
  std::size_t count = 0;
  for (const auto& param : *parsed) {
    if (++count > kMaxParams) return Malformed("too many request parameters");
    // Form encoding: '+' is a space.
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    opts.disallow_null = true;
    std::string key = param.key.decode(opts);
    std::string value = param.has_value ? param.value.decode(opts) : "";
    if (key.empty()) continue;
    std::string* slot = nullptr;
    if (key == "Action") {
      slot = &out.action;
    } else if (key == "Version") {
      slot = &out.version;
    }
    if (slot != nullptr) {
      if (!slot->empty()) return Malformed("parameter " + key + " is given twice");
      *slot = std::move(value);
      continue;
    }
    if (!out.params.emplace(std::move(key), std::move(value)).second) {
      return Malformed("a parameter is given twice");
    }
  }
  if (out.action.empty()) {
    return core::InvalidArgumentError("The request must contain the parameter Action")
        .WithAwsType("MissingAction");
  }
  return out;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab and newlines are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "&#xFFFD;";
        } else {
          out += c;
        }
    }
  }
  return out;
}

XmlWriter::XmlWriter() : out_("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") {}

XmlWriter& XmlWriter::Begin(std::string_view name, std::string_view ns) {
  out_ += "<" + std::string(name);
  if (!ns.empty()) out_ += " xmlns=\"" + XmlEscape(ns) + "\"";
  out_ += ">";
  open_.emplace_back(name);
  return *this;
}

XmlWriter& XmlWriter::End() {
  out_ += "</" + open_.back() + ">";
  open_.pop_back();
  return *this;
}

XmlWriter& XmlWriter::Leaf(std::string_view name, std::string_view text) {
  out_ += "<" + std::string(name) + ">" + XmlEscape(text) + "</" + std::string(name) + ">";
  return *this;
}

std::string XmlWriter::Finish() {
  while (!open_.empty()) End();
  out_ += "\n";
  return std::move(out_);
}

std::string QueryErrorXml(const core::Status& status, std::string_view request_id,
                          std::string_view ns) {
  const bool server_fault = status.code() == core::StatusCode::kInternal ||
                            status.code() == core::StatusCode::kUnavailable;
  XmlWriter xml;
  xml.Begin("ErrorResponse", ns)
      .Begin("Error")
      .Leaf("Type", server_fault ? "Receiver" : "Sender")
      .Leaf("Code", status.aws_type())
      .Leaf("Message", status.message())
      .End()
      .Leaf("RequestId", request_id);
  return xml.Finish();
}

}  // namespace moatless::services
