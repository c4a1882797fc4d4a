#include "runtime/egress.h"

#include <algorithm>
#include <array>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/system/error_code.hpp>
#include <cctype>
#include <optional>

namespace moatless::runtime {
namespace {

namespace ip = boost::asio::ip;

using Bytes4 = ip::address_v4::bytes_type;
using Bytes6 = ip::address_v6::bytes_type;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether the first `bits` bits of `a` and `b` agree.
template <std::size_t N>
bool PrefixEqual(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                 unsigned bits) {
  for (std::size_t i = 0; i < N && bits > 0; ++i) {
    const unsigned take = std::min(bits, 8u);
    const auto mask = static_cast<unsigned char>(0xff << (8 - take));
    if ((a[i] & mask) != (b[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

bool InV4(const Bytes4& a, unsigned char b0, unsigned char b1, unsigned bits) {
  return PrefixEqual(a, Bytes4{b0, b1, 0, 0}, bits);
}

bool IsRestrictedV4(const Bytes4& a) {
  return InV4(a, 0, 0, 8) ||       // "this network", includes 0.0.0.0
         InV4(a, 10, 0, 8) ||      // RFC 1918
         InV4(a, 100, 64, 10) ||   // CGNAT (RFC 6598)
         InV4(a, 127, 0, 8) ||     // loopback
         InV4(a, 169, 254, 16) ||  // link-local, the metadata address
         InV4(a, 172, 16, 12) ||   // RFC 1918
         InV4(a, 192, 168, 16) ||  // RFC 1918
         InV4(a, 224, 0, 4) ||     // multicast
         InV4(a, 240, 0, 4);       // reserved, and the broadcast address
}

Bytes4 V4At(const Bytes6& a, std::size_t offset) {
  return Bytes4{a[offset], a[offset + 1], a[offset + 2], a[offset + 3]};
}

bool IsRestrictedV6(const Bytes6& a) {
  const auto in = [&](std::initializer_list<unsigned char> prefix, unsigned bits) {
    Bytes6 p{};
    std::copy(prefix.begin(), prefix.end(), p.begin());
    return PrefixEqual(a, p, bits);
  };
  if (in({}, 96)) return true;  // ::, ::1 and the deprecated IPv4-compatible block
  if (in({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96)) return IsRestrictedV4(V4At(a, 12));
  if (in({0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) {  // NAT64 well-known prefix
    return IsRestrictedV4(V4At(a, 12));
  }
  if (in({0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48)) return true;  // local-use NAT64
  if (in({0x20, 0x02}, 16)) return IsRestrictedV4(V4At(a, 2));    // 6to4
  if (in({0x20, 0x01, 0x00, 0x00}, 32)) {                         // Teredo
    Bytes4 client = V4At(a, 12);
    for (auto& b : client) b = static_cast<unsigned char>(~b);
    return IsRestrictedV4(V4At(a, 4)) || IsRestrictedV4(client);
  }
  return in({0xfe, 0x80}, 10) ||  // link-local
         in({0xfe, 0xc0}, 10) ||  // site-local (deprecated)
         in({0xfc}, 7) ||         // unique local
         in({0xff}, 8);           // multicast
}

// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
ip::address Canonical(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  return address;
}

bool CidrContains(const EgressEntry& entry, const ip::address& address) {
  const ip::address a = Canonical(address);
  if (a.is_v4() != entry.address.is_v4()) return false;
  if (a.is_v4())
    return PrefixEqual(a.to_v4().to_bytes(), entry.address.to_v4().to_bytes(), entry.prefix_length);
  return PrefixEqual(a.to_v6().to_bytes(), entry.address.to_v6().to_bytes(), entry.prefix_length);
}

bool NamesAddress(const EgressEntry& entry, const ip::address& address) {
  switch (entry.host) {
    case EgressEntry::Host::kAddress:
      return Canonical(address) == entry.address;
    case EgressEntry::Host::kCidr:
      return CidrContains(entry, address);
    default:
      return false;
  }
}

std::optional<EgressEntry::Scheme> SchemeOf(std::string_view scheme) {
  const std::string s = Lower(scheme);
  if (s == "http") return EgressEntry::Scheme::kHttp;
  if (s == "https") return EgressEntry::Scheme::kHttps;
  return std::nullopt;
}

bool SchemeMatches(const EgressEntry& entry, EgressEntry::Scheme scheme) {
  return entry.scheme == EgressEntry::Scheme::kAny || entry.scheme == scheme;
}

bool PortMatches(const EgressEntry& entry, std::uint16_t port) {
  return port >= entry.port_min && port <= entry.port_max;
}

// A request's host: lower case, without brackets or a trailing dot; an IP literal if it is one.
struct RequestHost {
  std::string name;
  std::optional<ip::address> address;
};

RequestHost NormaliseRequestHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  RequestHost out;
  out.name = Lower(host);
  if (!out.name.empty() && out.name.back() == '.') out.name.pop_back();
  boost::system::error_code ec;
  const ip::address address = ip::make_address(out.name, ec);
  // A zone index ("fe80::1%eth0") names an interface of the host, never a destination.
  if (!ec && out.name.find('%') == std::string::npos) out.address = Canonical(address);
  return out;
}

// ---- parsing ----

bool ValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  std::string_view last_label;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (unsigned char c : label) {
      if (!std::isalnum(c) && c != '-' && c != '_') return false;
    }
    last_label = label;
    start = dot + 1;
  }
  // A name whose last label is numeric ("127.1", "2130706433") is an IPv4 address to the
  // resolver, not a name.
  return !AllDigits(last_label);
}

std::optional<std::uint16_t> ParsePortNumber(std::string_view s) {
  if (!AllDigits(s) || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : s) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

class EntryParser {
 public:
  explicit EntryParser(const std::string& text) : text_(text) { entry_.text = text; }

  core::Result<EgressEntry> Parse() {
    if (text_.empty()) return Error("an entry is empty");
    for (unsigned char c : text_) {
      if (c <= 0x20 || c >= 0x7f) return Error("contains a space, a control or a non-ASCII byte");
    }
    const std::size_t sep = text_.find("://");
    if (sep == std::string_view::npos) return Error("expected scheme://host:port");
    RETURN_IF_ERROR(ParseScheme(text_.substr(0, sep)));
    std::string_view rest = text_.substr(sep + 3);
    if (rest.find('@') != std::string_view::npos) return Error("userinfo is not allowed");
    if (rest.find('?') != std::string_view::npos) return Error("a query is not allowed");
    if (rest.find('#') != std::string_view::npos) return Error("a fragment is not allowed");

    std::string_view host;
    std::string_view prefix;
    bool has_prefix = false;
    bool bracketed = false;
    std::string_view after;  // what follows the host (and prefix): "" or ":port"
    if (!rest.empty() && rest.front() == '[') {
      const std::size_t close = rest.find(']');
      if (close == std::string_view::npos) return Error("unterminated '[' in the host");
      bracketed = true;
      host = rest.substr(1, close - 1);
      after = rest.substr(close + 1);
      if (const std::size_t slash = host.find('/'); slash != std::string_view::npos) {
        prefix = host.substr(slash + 1);
        host = host.substr(0, slash);
        has_prefix = true;
      } else if (!after.empty() && after.front() == '/') {
        const std::size_t colon = after.find(':');
        prefix = after.substr(1, colon == std::string_view::npos ? colon : colon - 1);
        after = colon == std::string_view::npos ? std::string_view() : after.substr(colon);
        has_prefix = true;
      }
    } else {
      const std::size_t colon = rest.find(':');
      host = rest.substr(0, colon);
      after = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
      if (const std::size_t slash = host.find('/'); slash != std::string_view::npos) {
        prefix = host.substr(slash + 1);
        host = host.substr(0, slash);
        has_prefix = true;
      }
    }
    if (has_prefix && !AllDigits(prefix)) return Error("a path is not allowed");
    if (!after.empty() && after.front() != ':') return Error("unexpected text after the host");
    if (after.find('/') != std::string_view::npos) return Error("a path is not allowed");

    RETURN_IF_ERROR(ParseHost(host, bracketed, has_prefix ? std::optional(prefix) : std::nullopt));
    RETURN_IF_ERROR(ParsePort(after.empty() ? std::optional<std::string_view>()
                                            : std::optional(after.substr(1))));
    return entry_;
  }

 private:
  core::Status Error(std::string_view problem) const {
    return core::InvalidArgumentError("egress entry '" + std::string(text_) +
                                      "': " + std::string(problem));
  }

  core::Status ParseScheme(std::string_view scheme) {
    if (scheme == "*") {
      entry_.scheme = EgressEntry::Scheme::kAny;
    } else if (auto known = SchemeOf(scheme)) {
      entry_.scheme = *known;
    } else {
      return Error("unknown scheme '" + std::string(scheme) + "' (http, https or *)");
    }
    return core::Status::Ok();
  }

  core::Status ParseHost(std::string_view host, bool bracketed,
                         std::optional<std::string_view> prefix) {
    if (host.empty()) return Error("the host is empty");
    if (host.find('%') != std::string_view::npos) return Error("a zone index is not allowed");
    boost::system::error_code ec;
    if (bracketed) {
      const ip::address_v6 v6 = ip::make_address_v6(std::string(host), ec);
      if (ec) return Error("'[" + std::string(host) + "]' is not an IPv6 address");
      entry_.address = v6;
    } else if (host.find(':') != std::string_view::npos) {
      return Error("an IPv6 address must be written in brackets");
    } else {
      const ip::address_v4 v4 = ip::make_address_v4(std::string(host), ec);
      if (!ec) {
        entry_.address = v4;
      } else if (prefix) {
        return Error("a CIDR block needs an IP address");
      } else {
        return ParseName(host);
      }
    }
    if (!prefix) {
      entry_.host = EgressEntry::Host::kAddress;
      entry_.address = Canonical(entry_.address);
      return core::Status::Ok();
    }
    const unsigned max = entry_.address.is_v4() ? 32 : 128;
    if (!AllDigits(*prefix) || prefix->size() > 3) return Error("bad CIDR prefix length");
    const unsigned length = static_cast<unsigned>(std::stoul(std::string(*prefix)));
    if (length > max) return Error("CIDR prefix length over " + std::to_string(max));
    entry_.host = EgressEntry::Host::kCidr;
    entry_.prefix_length = length;
    return core::Status::Ok();
  }

  core::Status ParseName(std::string_view host) {
    if (host == "*") {
      entry_.host = EgressEntry::Host::kAny;
      return core::Status::Ok();
    }
    std::string name = Lower(host);
    EgressEntry::Host kind = EgressEntry::Host::kName;
    if (name.starts_with("*.")) {
      kind = EgressEntry::Host::kSubdomains;
      name.erase(0, 2);
    }
    if (name.find('*') != std::string::npos) {
      return Error("a wildcard is allowed only as the whole host or a leading '*.'");
    }
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) return Error("the host is empty");
    if (!ValidDnsName(name)) return Error("'" + std::string(host) + "' is not a valid host name");
    entry_.host = kind;
    entry_.name = std::move(name);
    return core::Status::Ok();
  }

  core::Status ParsePort(std::optional<std::string_view> port) {
    if (!port) {
      switch (entry_.scheme) {
        case EgressEntry::Scheme::kHttp:
          entry_.port_min = entry_.port_max = 80;
          return core::Status::Ok();
        case EgressEntry::Scheme::kHttps:
          entry_.port_min = entry_.port_max = 443;
          return core::Status::Ok();
        case EgressEntry::Scheme::kAny:
          return Error("a port is required when the scheme is '*'");
      }
    }
    if (*port == "*") {
      entry_.port_min = 1;
      entry_.port_max = 65535;
      return core::Status::Ok();
    }
    const std::size_t dash = port->find('-');
    const std::optional<std::uint16_t> low = ParsePortNumber(port->substr(0, dash));
    const std::optional<std::uint16_t> high =
        dash == std::string_view::npos ? low : ParsePortNumber(port->substr(dash + 1));
    if (!low || !high) {
      return Error("bad port '" + std::string(*port) + "' (1-65535, a range a-b, or *)");
    }
    if (*low > *high) return Error("port range '" + std::string(*port) + "' is reversed");
    entry_.port_min = *low;
    entry_.port_max = *high;
    return core::Status::Ok();
  }

  std::string_view text_;
  EgressEntry entry_;
};

}  // namespace

bool IsRestrictedAddress(const ip::address& address) {
  if (address.is_v4()) return IsRestrictedV4(address.to_v4().to_bytes());
  return IsRestrictedV6(address.to_v6().to_bytes());
}

core::Result<EgressAllowlist> EgressAllowlist::Parse(const std::vector<std::string>& entries) {
  if (entries.size() > kMaxEgressEntries) {
    return core::InvalidArgumentError("egress: " + std::to_string(entries.size()) +
                                      " entries, at most " + std::to_string(kMaxEgressEntries));
  }
  EgressAllowlist list;
  list.entries_.reserve(entries.size());
  for (const std::string& text : entries) {
    ASSIGN_OR_RETURN(EgressEntry entry, EntryParser(text).Parse());
    list.entries_.push_back(std::move(entry));
  }
  return list;
}

bool EgressAllowlist::Allows(std::string_view scheme, std::string_view host,
                             std::uint16_t port) const {
  const std::optional<EgressEntry::Scheme> wanted = SchemeOf(scheme);
  if (!wanted) return false;
  const RequestHost request = NormaliseRequestHost(host);
  if (request.name.empty()) return false;
  for (const EgressEntry& entry : entries_) {
    if (!SchemeMatches(entry, *wanted) || !PortMatches(entry, port)) continue;
    switch (entry.host) {
      case EgressEntry::Host::kAny:
        return true;
      case EgressEntry::Host::kName:
        if (!request.address && request.name == entry.name) return true;
        break;
      case EgressEntry::Host::kSubdomains:
        if (!request.address && request.name.size() > entry.name.size() + 1 &&
            request.name.ends_with(entry.name) &&
            request.name[request.name.size() - entry.name.size() - 1] == '.') {
          return true;
        }
        break;
      case EgressEntry::Host::kAddress:
      case EgressEntry::Host::kCidr:
        if (request.address && NamesAddress(entry, *request.address)) return true;
        break;
    }
  }
  return false;
}

bool EgressAllowlist::AllowsAddress(std::string_view scheme, const ip::address& address,
                                    std::string_view requested_host, std::uint16_t port) const {
  if (!IsRestrictedAddress(address)) return true;
  const std::optional<EgressEntry::Scheme> wanted = SchemeOf(scheme);
  if (!wanted) return false;
  const RequestHost request = NormaliseRequestHost(requested_host);
  for (const EgressEntry& entry : entries_) {
    if (!SchemeMatches(entry, *wanted) || !PortMatches(entry, port)) continue;
    if (NamesAddress(entry, address)) return true;
    if (entry.host == EgressEntry::Host::kName && !request.address && request.name == entry.name) {
      return true;
    }
  }
  return false;
}

}  // namespace moatless::runtime
