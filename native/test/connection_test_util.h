// connection_test_util.h — what the tests of one connection's input share
// (test_connection.cc, test_connection_tls.cc, test_ws_session.cc): a
// client's upgrade request for /ws, and text as the bytes the core takes.
// Test code only; the rules are core/connection.h and core/ws_session.h.
#ifndef ECHOCAST_TEST_CONNECTION_TEST_UTIL_H
#define ECHOCAST_TEST_CONNECTION_TEST_UTIL_H

#include <cstdint>
#include <string>

namespace connection_test {

// An upgrade request for /ws, with RFC 6455's sample key.
constexpr char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

inline const std::uint8_t* u8(const char* s) { return reinterpret_cast<const std::uint8_t*>(s); }
inline const std::uint8_t* u8(const std::string& s) { return u8(s.data()); }

}  // namespace connection_test

#endif  // ECHOCAST_TEST_CONNECTION_TEST_UTIL_H
