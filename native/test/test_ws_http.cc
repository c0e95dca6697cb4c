// test_ws_http.cc — core/ws/http: reading a header field of an HTTP head
// (the client's side of the handshake). The server's parsing of a request
// is tested through the Handshake (test_ws_handshake.cc). See
// docs/architecture.md.
#include <string>

#include "../core/ws/http.h"
#include "unit.h"

namespace ws = echocast::ws;

TEST(ws_header_value_finds_a_field_without_case_and_trims_it) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Accept-X: no\r\nsec-websocket-ACCEPT: \t s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n";
  std::string v;
  CHECK(ws::header_value(head, "sec-websocket-accept", &v));
  CHECK_EQ(v, std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  CHECK(ws::header_value(head, "upgrade", &v));
  CHECK_EQ(v, std::string("websocket"));
  CHECK(!ws::header_value(head, "connection", &v));
  // The start line is not a field, and a head without fields has none.
  CHECK(!ws::header_value("HTTP/1.1 101 upgrade: x", "http/1.1 101 upgrade", &v));
  CHECK(!ws::header_value("", "upgrade", &v));
}
