// ws/http.h — the HTTP/1.1 text of the opening handshake (RFC 7230): reading
// the fields of a head, the tokens of a list, and the responses that close
// the connection (an error status, or the built-in page). The server's
// Handshake (handshake.h) parses its request with these; the load
// generator, a client, reads the 101's fields with header_value. Pure
// functions: no I/O, no OS header. Part of the WebSocket protocol in
// core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_HTTP_H
#define ECHOCAST_CORE_WS_HTTP_H

#include <cstddef>
#include <string>

namespace echocast {
namespace ws {

// The value of the first header field called `name` (compared without case)
// in an HTTP head (its start line, then fields up to an optional blank
// line), trimmed of spaces and tabs; false when there is none. For the
// client's side (the load generator reads the 101 with it).
bool header_value(const std::string& head, const char* name, std::string* out);

namespace http {

// Whether `alen` bytes at a equal the C string b, compared without case.
bool iequals(const char* a, std::size_t alen, const char* b);

// A token character (RFC 7230 §3.2.6).
bool is_tchar(char c);

// Optional white space: a space or a tab.
inline bool is_ows(char c) { return c == ' ' || c == '	'; }

// s[b, e) without its leading and trailing spaces and tabs.
std::string trim_ows(const std::string& s, std::size_t b, std::size_t e);

// Whether a comma-separated list (RFC 7230 #rule) holds `token`, compared
// case-insensitively.
bool has_token(const std::string& list, const char* token);

// Every answer but 101: a short text body (none for HEAD), Content-Length
// and Connection: close (426 adds Sec-WebSocket-Version: 13, 405 Allow).
std::string error_response(int status, bool head);

// The built-in page: 200, text/html, the `headers` lines (each ending in
// CRLF: its security policy), the page (no body for HEAD), then the
// connection is closed.
std::string page_response(const std::string& page, const std::string& headers, bool head);

}  // namespace http
}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_HTTP_H
