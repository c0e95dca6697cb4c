// access.h — who may connect (docs/contract.md S15), the rules both native
// engines share, written once: the refusal causes (an X-macro, exported as
// addon.refusalCauses) and their counters, the address lists (allow / deny,
// parsed from the 18-byte records src/access.ts makes), the token's
// constant-time comparison, the HTTP request line a cross-protocol request
// starts with, and WebSocket origins. Where each rule is applied (at accept,
// in the handshake, on the first frame) is connection.h's and the engines';
// docs/architecture.md says which file owns which rule.
//
// Pure: no I/O, no lock, no clock, no OS header (the peer's address arrives
// as bytes, from the platform layer).
#ifndef ECHOCAST_CORE_ACCESS_H
#define ECHOCAST_CORE_ACCESS_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../platform/platform.h"

namespace echocast {

// X(enumerator, "name-as-JS-sees-it"); src/engines/types.ts keeps
// REFUSAL_CAUSES, and test/unit/addon-tables.test.ts checks the two agree.
#define ECHOCAST_REFUSAL_CAUSES(X)     \
  X(Address, "address")                \
  X(Origin, "origin")                  \
  X(Token, "token")                    \
  X(Hook, "hook")                      \
  X(Http, "http")                      \
  X(HandshakeLimit, "handshake-limit") \
  X(Tls, "tls")

// Why a peer was refused before it was admitted (or, for Http without a
// token or hook, cut on its first frame).
enum class Refusal : unsigned char {
#define ECHOCAST_REFUSAL_ENUM(e, s) e,
  ECHOCAST_REFUSAL_CAUSES(ECHOCAST_REFUSAL_ENUM)
#undef ECHOCAST_REFUSAL_ENUM
};

constexpr std::size_t kRefusalCount = 0
#define ECHOCAST_REFUSAL_COUNT(e, s) +1
    ECHOCAST_REFUSAL_CAUSES(ECHOCAST_REFUSAL_COUNT)
#undef ECHOCAST_REFUSAL_COUNT
    ;

// The name JS sees, e.g. "handshake-limit" (static storage).
const char* refusal_name(Refusal r);

// Refusals by cause, exact whatever happens to their events (stats() reads
// them from any thread).
class RefusalCounters {
 public:
  void add(Refusal r) {
    counts_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t count(Refusal r) const {
    return counts_[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
  }
  // Every cause by name, zeros included.
  std::map<std::string, std::uint64_t> tallies() const;

 private:
  std::atomic<std::uint64_t> counts_[kRefusalCount] = {};
};

// One entry of an address list: a network and its prefix length.
struct Subnet {
  int family = 4;  // 4 or 6.
  int prefix = 0;  // 0..32 or 0..128.
  std::uint8_t bytes[16] = {0};
};

// An address list (allow or deny).
class AddressList {
 public:
  // Reads concatenated 18-byte records: [family 4|6][prefix][16 address
  // bytes, IPv4 in the first 4]. False (and the list unchanged) when the
  // length is not a multiple of 18 or a record is malformed.
  bool parse(const std::uint8_t* records, std::size_t len);
  void add(const Subnet& s) { subnets_.push_back(s); }
  bool empty() const { return subnets_.empty(); }
  std::size_t size() const { return subnets_.size(); }
  // Whether the peer is in one of the subnets. An IPv4-mapped IPv6 peer
  // (::ffff:a.b.c.d) is matched as its IPv4 address.
  bool matches(const ec_peer_address& peer) const;

 private:
  std::vector<Subnet> subnets_;
};

// docs/contract.md S15: a peer that matches `deny`, or matches no `allow`
// when `allow` is not empty, is refused (cause Address).
bool address_permitted(const AddressList& allow, const AddressList& deny,
                       const ec_peer_address& peer);

// Whether `presented` is the token, in time that depends only on their
// lengths' and the token's size, never on where they differ.
bool token_matches(const std::string& token, const std::uint8_t* presented, std::size_t len);

// Whether a frame's first line (up to its first '\n', or all of it) is an
// HTTP request line: /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE)
// \S+ HTTP\/\d\.\d\r?$/ (src/access.ts HTTP_REQUEST_LINE).
bool is_http_request_line(const std::uint8_t* frame, std::size_t len);

// An Origin as browsers send it, for comparison: lower-cased, the scheme's
// default port dropped (http 80, https 443).
std::string normalise_origin(const std::string& origin);

// docs/contract.md S15: whether a WebSocket upgrade's Origin may upgrade:
// no Origin (a program), the same origin ("http://" + its Host, or
// "https://" on a TLS listener: docs/contract.md S17), one of `allowed`
// (normalised, or "*").
bool origin_permitted(bool has_origin, const std::string& origin, const std::string& host,
                      const std::vector<std::string>& allowed, bool secure = false);

}  // namespace echocast

#endif  // ECHOCAST_CORE_ACCESS_H
