// test_access.cc — core/access: the refusal causes' names, address lists
// from src/access.ts's 18-byte records (IPv4, IPv6, prefixes, an IPv4-mapped
// peer matched as IPv4, allow and deny together), the token's comparison,
// the HTTP request line and WebSocket origins (docs/contract.md S15).
#include <cstring>
#include <string>
#include <vector>

#include "../core/access.h"
#include "unit.h"

using namespace echocast;

namespace {

// One 18-byte record, as subnetRecords() writes it.
std::vector<std::uint8_t> record(int family, int prefix, std::vector<std::uint8_t> address) {
  std::vector<std::uint8_t> r(18, 0);
  r[0] = static_cast<std::uint8_t>(family);
  r[1] = static_cast<std::uint8_t>(prefix);
  for (std::size_t i = 0; i < address.size() && i < 16; ++i) r[2 + i] = address[i];
  return r;
}

AddressList list_of(std::vector<std::vector<std::uint8_t>> records) {
  std::vector<std::uint8_t> all;
  for (const auto& r : records) all.insert(all.end(), r.begin(), r.end());
  AddressList l;
  l.parse(all.data(), all.size());
  return l;
}

ec_peer_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  ec_peer_address p;
  p.family = 4;
  p.bytes[0] = a;
  p.bytes[1] = b;
  p.bytes[2] = c;
  p.bytes[3] = d;
  return p;
}

ec_peer_address v6(std::vector<std::uint8_t> bytes) {
  ec_peer_address p;
  p.family = 6;
  for (std::size_t i = 0; i < 16 && i < bytes.size(); ++i) p.bytes[i] = bytes[i];
  return p;
}

bool http(const std::string& s) {
  return is_http_request_line(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

bool token(const std::string& t, const std::string& presented) {
  return token_matches(t, reinterpret_cast<const std::uint8_t*>(presented.data()),
                       presented.size());
}

}  // namespace

TEST(access_refusal_names_in_order) {
  CHECK_EQ(kRefusalCount, 7u);
  CHECK_EQ(std::string(refusal_name(Refusal::Address)), std::string("address"));
  CHECK_EQ(std::string(refusal_name(Refusal::Origin)), std::string("origin"));
  CHECK_EQ(std::string(refusal_name(Refusal::Token)), std::string("token"));
  CHECK_EQ(std::string(refusal_name(Refusal::Hook)), std::string("hook"));
  CHECK_EQ(std::string(refusal_name(Refusal::Http)), std::string("http"));
  CHECK_EQ(std::string(refusal_name(Refusal::HandshakeLimit)), std::string("handshake-limit"));
  CHECK_EQ(std::string(refusal_name(Refusal::Tls)), std::string("tls"));
  RefusalCounters c;
  c.add(Refusal::Hook);
  c.add(Refusal::Hook);
  auto t = c.tallies();
  CHECK_EQ(t.size(), kRefusalCount);  // Zeros included.
  CHECK_EQ(t["hook"], 2u);
  CHECK_EQ(t["address"], 0u);
}

TEST(access_list_parse_rejects_malformed_records) {
  AddressList l;
  std::vector<std::uint8_t> r = record(4, 33, {10});
  CHECK(!l.parse(r.data(), r.size()));  // Prefix over 32.
  r = record(5, 8, {10});
  CHECK(!l.parse(r.data(), r.size()));  // No such family.
  CHECK(!l.parse(r.data(), 17));        // Not a whole record.
  CHECK(l.empty());
  r = record(6, 128, {});
  CHECK(l.parse(r.data(), r.size()));
  CHECK_EQ(l.size(), 1u);
}

TEST(access_list_matches_ipv4_prefixes) {
  AddressList l = list_of(
      {record(4, 8, {10}), record(4, 32, {192, 168, 1, 7}), record(4, 20, {172, 16, 0, 0})});
  CHECK(l.matches(v4(10, 1, 2, 3)));
  CHECK(!l.matches(v4(11, 0, 0, 1)));
  CHECK(l.matches(v4(192, 168, 1, 7)));
  CHECK(!l.matches(v4(192, 168, 1, 8)));
  CHECK(l.matches(v4(172, 16, 15, 255)));  // /20: the low 12 bits are free.
  CHECK(!l.matches(v4(172, 16, 16, 0)));
  AddressList any = list_of({record(4, 0, {})});
  CHECK(any.matches(v4(1, 2, 3, 4)));
  CHECK(!any.matches(v6({0x20, 0x01})));  // An IPv4 entry never matches IPv6.
}

TEST(access_list_matches_ipv6_and_mapped_ipv4) {
  AddressList l = list_of(
      {record(6, 128, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), record(6, 8, {0xfd})});
  CHECK(l.matches(v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})));  // ::1
  CHECK(l.matches(v6({0xfd, 0x12, 0x34})));
  CHECK(!l.matches(v6({0xfe, 0x80})));
  // ::ffff:127.0.0.1 is matched as 127.0.0.1.
  AddressList loop = list_of({record(4, 8, {127})});
  ec_peer_address mapped = v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1});
  CHECK(loop.matches(mapped));
  CHECK(!l.matches(mapped));
}

TEST(access_allow_and_deny) {
  AddressList none;
  AddressList allow = list_of({record(4, 8, {127})});
  AddressList deny = list_of({record(4, 32, {127, 0, 0, 2})});
  CHECK(address_permitted(none, none, v4(8, 8, 8, 8)));  // No lists: everyone.
  CHECK(address_permitted(allow, none, v4(127, 0, 0, 1)));
  CHECK(!address_permitted(allow, none, v4(10, 0, 0, 1)));   // Matches no allow.
  CHECK(!address_permitted(allow, deny, v4(127, 0, 0, 2)));  // Deny wins.
  CHECK(!address_permitted(none, deny, v4(127, 0, 0, 2)));
  CHECK(address_permitted(none, deny, v4(127, 0, 0, 3)));
}

TEST(access_token_matches_exactly) {
  CHECK(token("s3cret", "s3cret"));
  CHECK(!token("s3cret", "s3cre"));
  CHECK(!token("s3cret", "s3cret!"));
  CHECK(!token("s3cret", "S3cret"));
  CHECK(!token("s3cret", ""));
  CHECK(!token("s3cret", "s3cret\r"));
  CHECK(!token("", ""));  // No token: nothing matches it.
}

TEST(access_http_request_line) {
  CHECK(http("GET / HTTP/1.1"));
  CHECK(http("GET / HTTP/1.1\r"));
  CHECK(http("POST /x?y=1 HTTP/1.0\r\nHost: a\r\n"));
  CHECK(http("OPTIONS * HTTP/1.1"));
  for (const char* m : {"HEAD", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE"})
    CHECK(http(std::string(m) + " /a HTTP/2.0"));
  CHECK(!http("GET /"));
  CHECK(!http("get / HTTP/1.1"));
  CHECK(!http("GET  / HTTP/1.1"));
  CHECK(!http("GET / HTTP/1.1 "));
  CHECK(!http("GET / HTTP/1.1\r\r"));
  CHECK(!http("GET / HTTP/11"));
  CHECK(!http("FETCH / HTTP/1.1"));
  CHECK(!http("GET /a b HTTP/1.1"));
  CHECK(!http("hello GET / HTTP/1.1"));
  CHECK(!http(""));
}

TEST(access_origins) {
  std::vector<std::string> none;
  std::vector<std::string> good = {"https://good.example", "http://other.example:8080"};
  std::vector<std::string> any = {"*"};
  CHECK(origin_permitted(false, "", "h:1", none));  // No Origin: a program.
  CHECK(origin_permitted(true, "http://localhost:8080", "localhost:8080", none));
  CHECK(origin_permitted(true, "HTTP://LocalHost:8080", "localhost:8080", none));
  CHECK(origin_permitted(true, "http://example.com", "example.com:80", none));
  CHECK(!origin_permitted(true, "http://evil.example", "localhost:8080", none));
  CHECK(!origin_permitted(true, "https://localhost:8080", "localhost:8080", none));
  CHECK(!origin_permitted(true, "null", "localhost:8080", none));
  CHECK(origin_permitted(true, "https://good.example:443", "h", good));
  CHECK(origin_permitted(true, "http://other.example:8080", "h", good));
  CHECK(!origin_permitted(true, "http://other.example", "h", good));
  CHECK(origin_permitted(true, "http://evil.example", "h", any));
  CHECK_EQ(normalise_origin("HTTP://A.Example:80"), std::string("http://a.example"));
  CHECK_EQ(normalise_origin("https://a.example:443"), std::string("https://a.example"));
  CHECK_EQ(normalise_origin("https://a.example:80"), std::string("https://a.example:80"));
}
