// access.cc — who may connect (see access.h).
#include "access.h"

#include <cstring>

namespace echocast {

namespace {

// The first line src/access.ts isHttpRequest looks at is at most this long.
constexpr std::size_t kHttpLineScan = 8200;

// JavaScript's \s on a latin1 string: tab, LF, VT, FF, CR, space and NBSP.
bool js_space(std::uint8_t c) { return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0; }

bool prefix_matches(const std::uint8_t* a, const std::uint8_t* b, int bits) {
  int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

const char* refusal_name(Refusal r) {
  static const char* const kNames[] = {
#define ECHOCAST_REFUSAL_NAME(e, s) s,
      ECHOCAST_REFUSAL_CAUSES(ECHOCAST_REFUSAL_NAME)
#undef ECHOCAST_REFUSAL_NAME
  };
  return kNames[static_cast<std::size_t>(r)];
}

std::map<std::string, std::uint64_t> RefusalCounters::tallies() const {
  std::map<std::string, std::uint64_t> out;
  for (std::size_t i = 0; i < kRefusalCount; ++i)
    out[refusal_name(static_cast<Refusal>(i))] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

bool AddressList::parse(const std::uint8_t* records, std::size_t len) {
  if (len % 18 != 0) return false;
  std::vector<Subnet> out;
  for (std::size_t at = 0; at < len; at += 18) {
    Subnet s;
    s.family = records[at];
    s.prefix = records[at + 1];
    if ((s.family != 4 && s.family != 6) || s.prefix > (s.family == 4 ? 32 : 128)) return false;
    std::memcpy(s.bytes, records + at + 2, 16);
    out.push_back(s);
  }
  subnets_.insert(subnets_.end(), out.begin(), out.end());
  return true;
}

bool AddressList::matches(const ec_peer_address& peer) const {
  ec_peer_address p = peer;
  static const std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (p.family == 6 && std::memcmp(p.bytes, kMapped, 12) == 0) {
    p.family = 4;
    std::memmove(p.bytes, p.bytes + 12, 4);
    std::memset(p.bytes + 4, 0, 12);
  }
  for (const Subnet& s : subnets_)
    if (s.family == p.family && prefix_matches(s.bytes, p.bytes, s.prefix)) return true;
  return false;
}

bool address_permitted(const AddressList& allow, const AddressList& deny,
                       const ec_peer_address& peer) {
  if (deny.matches(peer)) return false;
  return allow.empty() || allow.matches(peer);
}

bool token_matches(const std::string& token, const std::uint8_t* presented, std::size_t len) {
  // Every byte of the token is compared whatever the presented length, so
  // neither a wrong length nor where a byte differs shows in the time.
  unsigned diff = len == token.size() ? 0u : 1u;
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::uint8_t b = i < len ? presented[i] : 0;
    diff |= static_cast<unsigned>(static_cast<std::uint8_t>(token[i]) ^ b);
  }
  return diff == 0 && !token.empty();
}

bool is_http_request_line(const std::uint8_t* frame, std::size_t len) {
  std::size_t limit = len < kHttpLineScan ? len : kHttpLineScan;
  std::size_t end = 0;
  while (end < limit && frame[end] != '\n') ++end;
  if (end > 0 && frame[end - 1] == '\r') --end;  // \r?$
  static const char* const kMethods[] = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                         "OPTIONS", "PATCH", "CONNECT", "TRACE"};
  std::size_t i = 0;
  bool method = false;
  for (const char* m : kMethods) {
    std::size_t n = std::strlen(m);
    if (end > n && std::memcmp(frame, m, n) == 0 && frame[n] == ' ') {
      i = n + 1;
      method = true;
      break;
    }
  }
  if (!method) return false;
  // \S+ then " HTTP/d.d" and the end: the target runs to the last space.
  std::size_t start = i;
  while (i < end && !js_space(frame[i])) ++i;
  if (i == start || i >= end || frame[i] != ' ') return false;
  static const char kVersion[] = " HTTP/";
  if (end - i != 9 || std::memcmp(frame + i, kVersion, 6) != 0) return false;
  auto digit = [](std::uint8_t c) { return c >= '0' && c <= '9'; };
  return digit(frame[i + 6]) && frame[i + 7] == '.' && digit(frame[i + 8]);
}

std::string normalise_origin(const std::string& origin) {
  std::string o;
  o.reserve(origin.size());
  for (char c : origin) o.push_back(lower(c));
  auto drop = [&o](const char* scheme, const char* port) {
    std::size_t s = std::strlen(scheme), p = std::strlen(port);
    if (o.compare(0, s, scheme) == 0 && o.size() > s + p && o.compare(o.size() - p, p, port) == 0 &&
        o.find('/', s) == std::string::npos)
      o.resize(o.size() - p);
  };
  drop("http://", ":80");
  drop("https://", ":443");
  return o;
}

bool origin_permitted(bool has_origin, const std::string& origin, const std::string& host,
                      const std::vector<std::string>& allowed, bool secure) {
  if (!has_origin) return true;
  std::string o = normalise_origin(origin);
  if (!host.empty() && o == normalise_origin((secure ? "https://" : "http://") + host)) return true;
  for (const std::string& a : allowed)
    if (a == "*" || a == o) return true;
  return false;
}

}  // namespace echocast
