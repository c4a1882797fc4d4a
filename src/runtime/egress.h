// A function's egress allowlist: the outbound destinations it declared, in Spin's
// `allowed_outbound_hosts` syntax, and the address rules the egress proxy (egress_proxy.h) applies.
//
// An entry is `scheme://host[:port]`:
//   scheme  `http`, `https` or `*` (both);
//   host    a DNS name (case-insensitive, a trailing dot ignored), `*` (any host), `*.example.com`
//           (any name below example.com, not example.com itself), an IPv4 literal, an IPv6 literal
//           in brackets (`[2001:db8::1]`), or a CIDR block (`10.0.0.0/8`, `[fd00::]/8`);
//   port    a number, a range `8000-8100`, or `*`; it may be left out only for http (80) and
//           https (443).
// Paths, queries, fragments and userinfo are refused, as are wildcards anywhere but a leading
// `*.`, and more than kMaxEgressEntries entries.
//
// Two checks decide whether a connection may be made:
//  1. Allows(scheme, host, port): the destination as the function asked for it matches an entry.
//     An IP-literal host matches IP and CIDR entries (and `*`), a name matches name entries.
//  2. AllowsAddress(...) for EVERY address the host resolved to: an address outside the restricted
//     classes (IsRestrictedAddress) passes; a restricted one (loopback, private, link-local, the
//     cloud metadata address...) passes only if an entry for that scheme and port names it
//     explicitly — its host is that IP literal, a CIDR block containing it, or exactly the
//     requested DNS name. `*` and `*.example.com` never unlock a restricted address, so a
//     wildcard entry cannot be turned against the host's own network by a DNS answer.
//
// EgressAllowlist is an immutable value: copy it freely and share it between threads.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::runtime {

inline constexpr std::size_t kMaxEgressEntries = 64;

// Whether `address` belongs to a class a function may reach only when an entry names it:
// unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), RFC 1918 private (10/8, 172.16/12,
// 192.168/16), CGNAT (100.64/10), link-local (169.254/16 — including the metadata address
// 169.254.169.254 — and fe80::/10), multicast (224/4, ff00::/8), reserved (240/4, which holds the
// broadcast address), unique local (fc00::/7), site-local (fec0::/10), the deprecated
// IPv4-compatible block ::/96 (all of it), local-use NAT64 (64:ff9b:1::/48), and the IPv6 forms
// that embed an IPv4 address in a restricted class: IPv4-mapped (::ffff:0:0/96), NAT64
// (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32, server or client address).
bool IsRestrictedAddress(const boost::asio::ip::address& address);

// One parsed entry (exposed for diagnostics and tests).
struct EgressEntry {
  enum class Scheme { kAny, kHttp, kHttps };
  enum class Host {
    kAny,         // `*`
    kName,        // `example.com`: name holds it, lower case, without a trailing dot
    kSubdomains,  // `*.example.com`: name holds `example.com`
    kAddress,     // an IP literal: address (IPv4-mapped IPv6 stored as IPv4)
    kCidr,        // a block: address is its network address, prefix_length its length
  };

  std::string text;  // the entry as declared
  Scheme scheme = Scheme::kAny;
  Host host = Host::kAny;
  std::string name;
  boost::asio::ip::address address;
  unsigned prefix_length = 0;
  std::uint16_t port_min = 0;
  std::uint16_t port_max = 0;
};

class EgressAllowlist {
 public:
  // An empty allowlist: nothing is allowed.
  EgressAllowlist() = default;

  // InvalidArgument naming the offending entry and what is wrong with it.
  static core::Result<EgressAllowlist> Parse(const std::vector<std::string>& entries);

  bool empty() const { return entries_.empty(); }
  const std::vector<EgressEntry>& entries() const { return entries_; }

  // Check 1. `scheme` is "http" or "https" (case-insensitive; anything else is refused); `host` is
  // a DNS name or an IP literal, IPv6 with or without brackets.
  bool Allows(std::string_view scheme, std::string_view host, std::uint16_t port) const;

  // Check 2, for one address `requested_host` resolved to (for an IP-literal request, that
  // literal). Call it only for a destination that passed Allows.
  bool AllowsAddress(std::string_view scheme, const boost::asio::ip::address& address,
                     std::string_view requested_host, std::uint16_t port) const;

 private:
  std::vector<EgressEntry> entries_;
};

}  // namespace moatless::runtime
