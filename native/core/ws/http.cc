// ws/http.cc — see http.h. RFC 7230 (the message head).
#include "http.h"

#include <cstring>

namespace echocast {
namespace ws {

namespace http {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

const char* reason_phrase(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Error";
  }
}

// A response after which the connection is closed: the status line,
// `extra` header lines, then the body's type and length (no body for HEAD).
std::string closing_response(int status, const char* extra, const char* type,
                             const std::string& body, bool head) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  r += extra;
  r += "Content-Type: ";
  r += type;
  r += "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Cache-Control: no-store\r\n";
  r += "Connection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

bool iequals(const char* a, std::size_t alen, const char* b) {
  std::size_t blen = std::strlen(b);
  if (alen != blen) return false;
  for (std::size_t i = 0; i < alen; ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_tchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string trim_ows(const std::string& s, std::size_t b, std::size_t e) {
  while (b < e && is_ows(s[b])) ++b;
  while (e > b && is_ows(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool has_token(const std::string& list, const char* token) {
  std::size_t i = 0;
  while (i <= list.size()) {
    std::size_t comma = list.find(',', i);
    if (comma == std::string::npos) comma = list.size();
    std::size_t b = i, e = comma;
    while (b < e && is_ows(list[b])) ++b;
    while (e > b && is_ows(list[e - 1])) --e;
    if (iequals(list.data() + b, e - b, token)) return true;
    i = comma + 1;
  }
  return false;
}

std::string error_response(int status, bool head) {
  std::string body = reason_phrase(status);
  body += '\n';
  const char* extra = status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      : status == 405 ? "Allow: GET, HEAD\r\n"
                                      : "";
  return closing_response(status, extra, "text/plain; charset=utf-8", body, head);
}

std::string page_response(const std::string& page, const std::string& headers, bool head) {
  return closing_response(200, headers.c_str(), "text/html; charset=utf-8", page, head);
}

}  // namespace http

bool header_value(const std::string& head, const char* name, std::string* out) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    pos += 2;
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::size_t colon = head.find(':', pos);
    if (colon != std::string::npos && colon < end &&
        http::iequals(head.data() + pos, colon - pos, name)) {
      *out = http::trim_ows(head, colon + 1, end);
      return true;
    }
    pos = end < head.size() ? end : std::string::npos;
  }
  return false;
}

}  // namespace ws
}  // namespace echocast
