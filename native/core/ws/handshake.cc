// ws/handshake.cc — see handshake.h. RFC 6455 §4 (the opening handshake),
// RFC 7230 (the request head).
#include "handshake.h"

#include "http.h"
#include "primitives.h"

namespace echocast {
namespace ws {

namespace {

const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// A Sec-WebSocket-Key that decodes to 16 bytes: 22 base64 characters and
// "==" (the same test as the `ws` package, so both engines agree).
bool valid_key(const std::string& key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (!is_base64_char(key[i])) return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes s[b, e) as decodeURIComponent does ('+' stays itself);
// false when a '%' is not followed by two hex digits.
bool percent_decode(const std::string& s, std::size_t b, std::size_t e, std::string* out) {
  out->clear();
  for (std::size_t k = b; k < e; ++k) {
    char c = s[k];
    if (c == '%') {
      if (k + 2 >= e || hex_value(s[k + 1]) < 0 || hex_value(s[k + 2]) < 0) return false;
      c = static_cast<char>(hex_value(s[k + 1]) * 16 + hex_value(s[k + 2]));
      k += 2;
    }
    out->push_back(c);
  }
  return true;
}

// docs/contract.md S15: a `token=` parameter of the query (any of them,
// percent-decoded) or Authorization: Bearer <token> (the scheme in any
// case, spaces around the token), as the js engine reads them.
bool token_presented(const std::string& token, const std::string& query,
                     const std::string& authorization) {
  bool ok = false;
  std::string value;
  std::size_t i = 0;
  while (i <= query.size()) {
    std::size_t amp = query.find('&', i);
    if (amp == std::string::npos) amp = query.size();
    if (amp - i >= 6 && query.compare(i, 6, "token=") == 0 &&
        percent_decode(query, i + 6, amp, &value))
      ok =
          token_matches(token, reinterpret_cast<const std::uint8_t*>(value.data()), value.size()) ||
          ok;
    i = amp + 1;
  }
  if (authorization.size() > 7 && http::iequals(authorization.data(), 6, "bearer") &&
      authorization[6] == ' ') {
    std::size_t b = 7, e = authorization.size();
    while (b < e && authorization[b] == ' ') ++b;
    while (e > b && authorization[e - 1] == ' ') --e;
    ok = token_matches(token, reinterpret_cast<const std::uint8_t*>(authorization.data() + b),
                       e - b) ||
         ok;
  }
  return ok;
}

}  // namespace

std::string accept_key(const std::string& key) {
  std::string s = key + kGuid;
  std::uint8_t digest[20];
  sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), digest);
  return base64(digest, sizeof digest);
}

Handshake::Handshake(const HandshakeConfig* config) : config_(config) {}

Handshake::Result Handshake::feed(const std::uint8_t* data, std::size_t len,
                                  std::size_t* consumed) {
  *consumed = 0;
  if (result_ != Result::NeedMore) return result_;
  auto reject = [this](int status) {
    status_ = status;
    response_ = http::error_response(status, false);
    result_ = Result::Reject;
  };
  std::size_t i = 0;
  while (i < len) {
    char c = static_cast<char>(data[i++]);
    bool after_cr = !head_.empty() && head_.back() == '\r';
    // Lines end in CRLF, nothing else: a bare CR or LF, or a control byte,
    // is not HTTP (answered at once, whatever follows).
    unsigned char u = static_cast<unsigned char>(c);
    if ((after_cr && c != '\n') || (c == '\n' && !after_cr) ||
        (u < 0x20 && c != '\r' && c != '\n' && c != '\t') || u == 0x7F) {
      reject(400);
      break;
    }
    head_.push_back(c);
    if (c == '\n') {
      std::size_t n = head_.size();
      if (n == 2 || (n >= 4 && head_.compare(n - 4, 4, "\r\n\r\n") == 0)) {
        decide();
        break;
      }
    }
    if (head_.size() >= kMaxRequestHead) {
      reject(431);
      break;
    }
  }
  *consumed = i;
  if (result_ != Result::NeedMore) std::string().swap(head_);
  return result_;
}

void Handshake::decide() {
  const std::string& h = head_;
  bool head_method = false;
  auto finish = [this, &head_method](Result r, int status) {
    result_ = r;
    status_ = status;
    if (r == Result::Reject) response_ = http::error_response(status, head_method);
  };

  // Request line: method SP request-target SP HTTP-version.
  std::size_t eol = h.find("\r\n");
  std::size_t sp1 = h.find(' ');
  if (sp1 == std::string::npos || sp1 == 0 || sp1 > eol) return finish(Result::Reject, 400);
  std::size_t sp2 = h.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || sp2 == sp1 + 1 || sp2 > eol) return finish(Result::Reject, 400);
  std::string method = h.substr(0, sp1);
  std::string target = h.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = h.substr(sp2 + 1, eol - sp2 - 1);
  for (char c : method)
    if (!http::is_tchar(c)) return finish(Result::Reject, 400);
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return finish(Result::Reject, 400);
  }
  bool http11 = version == "HTTP/1.1";
  if (!http11 && version != "HTTP/1.0") return finish(Result::Reject, 400);
  head_method = method == "HEAD";

  // Header fields: name ":" OWS value OWS. No obs-fold, no space before
  // the colon (RFC 7230 §3.2.4).
  std::string upgrade, connection, key, ws_version, origin, host, authorization;
  int key_count = 0, version_count = 0;
  bool has_origin = false;
  std::size_t pos = eol + 2;
  while (pos < h.size()) {
    std::size_t end = h.find("\r\n", pos);
    if (end == pos) break;  // The blank line.
    std::size_t colon = h.find(':', pos);
    if (colon == std::string::npos || colon == pos || colon > end)
      return finish(Result::Reject, 400);
    for (std::size_t k = pos; k < colon; ++k)
      if (!http::is_tchar(h[k])) return finish(Result::Reject, 400);
    const char* name = h.data() + pos;
    std::size_t name_len = colon - pos;
    std::string value = http::trim_ows(h, colon + 1, end);
    if (http::iequals(name, name_len, "upgrade")) {
      upgrade += upgrade.empty() ? value : "," + value;
    } else if (http::iequals(name, name_len, "connection")) {
      connection += connection.empty() ? value : "," + value;
    } else if (http::iequals(name, name_len, "sec-websocket-key")) {
      key = value;
      ++key_count;
    } else if (http::iequals(name, name_len, "sec-websocket-version")) {
      ws_version = value;
      ++version_count;
    } else if (http::iequals(name, name_len, "origin")) {
      if (!has_origin) origin = value;
      has_origin = true;
    } else if (http::iequals(name, name_len, "host")) {
      if (host.empty()) host = value;
    } else if (http::iequals(name, name_len, "authorization")) {
      if (authorization.empty()) authorization = value;
    }
    if (config_->keep_request) {
      headers_.emplace_back(name, name_len);
      headers_.push_back(value);
    }
    pos = end + 2;
  }

  std::size_t mark = target.find('?');
  std::string path = target.substr(0, mark);
  std::string query = mark == std::string::npos ? std::string() : target.substr(mark + 1);
  if (path != config_->path) return finish(Result::Reject, 404);

  bool upgrade_attempt =
      http::has_token(upgrade, "websocket") || key_count > 0 || version_count > 0;
  // A method that is neither GET nor HEAD is 405 whatever its headers say
  // (docs/contract.md §6), as the js engine answers.
  if (method != "GET" && method != "HEAD") return finish(Result::Reject, 405);
  if (upgrade_attempt) {
    if (method != "GET" || !http11) return finish(Result::Reject, 400);
    if (!http::has_token(upgrade, "websocket") || !http::has_token(connection, "upgrade"))
      return finish(Result::Reject, 400);
    if (version_count != 1 || ws_version != "13") return finish(Result::Reject, 426);
    if (key_count != 1 || !valid_key(key)) return finish(Result::Reject, 400);
    // docs/contract.md S15: who may upgrade. A foreign origin first (403),
    // then the token (401).
    if (!origin_permitted(has_origin, origin, host, config_->origins, config_->secure)) {
      refused_ = true;
      refusal_ = Refusal::Origin;
      return finish(Result::Reject, 403);
    }
    if (!config_->token.empty() && !token_presented(config_->token, query, authorization)) {
      refused_ = true;
      refusal_ = Refusal::Token;
      return finish(Result::Reject, 401);
    }
    if (config_->keep_request) {
      path_ = path;
      query_ = query;
    }
    response_ =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        accept_key(key) + "\r\n\r\n";
    return finish(Result::Upgrade, 101);
  }
  response_ = http::page_response(config_->page, config_->page_headers, head_method);
  return finish(Result::Page, 200);
}

}  // namespace ws
}  // namespace echocast
