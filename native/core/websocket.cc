// websocket.cc — see websocket.h. RFC 6455 (framing, handshake), FIPS 180-4
// (SHA-1), RFC 4648 (base64), RFC 3629 (UTF-8), RFC 7230 (the request head).
#include "websocket.h"

#include <cstring>

namespace echocast {
namespace ws {

namespace {

// ---------------------------------------------------------------------------
// SHA-1
// ---------------------------------------------------------------------------

inline std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void sha1_block(std::uint32_t h[5], const std::uint8_t* p) {
  std::uint32_t w[80];
  for (int t = 0; t < 16; ++t) {
    w[t] = (static_cast<std::uint32_t>(p[4 * t]) << 24) |
           (static_cast<std::uint32_t>(p[4 * t + 1]) << 16) |
           (static_cast<std::uint32_t>(p[4 * t + 2]) << 8) |
           static_cast<std::uint32_t>(p[4 * t + 3]);
  }
  for (int t = 16; t < 80; ++t) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; ++t) {
    std::uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDCu;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6u;
    }
    std::uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

// A Sec-WebSocket-Key that decodes to 16 bytes: 22 base64 characters and
// "==" (the same test as the `ws` package, so both engines agree).
bool valid_key(const std::string& key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (!is_base64_char(key[i])) return false;
  return true;
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

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

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Whether a comma-separated list (RFC 7230 #rule) holds `token`, compared
// case-insensitively.
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

const char* reason_phrase(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

// Every answer but 101: a short text body (none for HEAD), Content-Length
// and Connection: close.
std::string error_response(int status, bool head) {
  std::string body = reason_phrase(status);
  body += '\n';
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (status == 426) r += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  if (status == 405) r += "Allow: GET, HEAD\r\n";
  r += "Content-Type: text/plain; charset=utf-8\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Cache-Control: no-store\r\n";
  r += "Connection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

std::string page_response(const std::string& page, bool head) {
  std::string r = "HTTP/1.1 200 OK\r\n";
  r += "Content-Type: text/html; charset=utf-8\r\n";
  r += "Content-Length: " + std::to_string(page.size()) + "\r\n";
  r += "Cache-Control: no-store\r\n";
  r += "Connection: close\r\n\r\n";
  if (!head) r += page;
  return r;
}

// Close codes a peer may send (RFC 6455 §7.4.1 and §7.4.2, and the IANA
// registry's 1012-1014, which our own server sends: server-full is 1013).
bool valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}

// A message buffer keeps at most this much capacity between messages (a
// server keeps one per WebSocket client: thousands of idle clients must not
// each hold their largest message).
constexpr std::size_t kKeepCapacity = 4 * 1024;

void release(std::vector<std::uint8_t>* v) { std::vector<std::uint8_t>().swap(*v); }

}  // namespace

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

void sha1(const std::uint8_t* data, std::size_t len, std::uint8_t out[20]) {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::size_t full = len - len % 64;
  for (std::size_t i = 0; i < full; i += 64) sha1_block(h, data + i);
  // The tail, the 0x80 byte, zeros and the 64-bit length in bits: one or
  // two more blocks.
  std::uint8_t tail[128] = {};
  std::size_t rest = len - full;
  if (rest > 0) std::memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  std::size_t blocks = rest < 56 ? 1 : 2;
  std::uint64_t bits = static_cast<std::uint64_t>(len) * 8u;
  for (int i = 0; i < 8; ++i)
    tail[blocks * 64 - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
  for (std::size_t b = 0; b < blocks; ++b) sha1_block(h, tail + 64 * b);
  for (int i = 0; i < 5; ++i) {
    out[4 * i] = static_cast<std::uint8_t>(h[i] >> 24);
    out[4 * i + 1] = static_cast<std::uint8_t>(h[i] >> 16);
    out[4 * i + 2] = static_cast<std::uint8_t>(h[i] >> 8);
    out[4 * i + 3] = static_cast<std::uint8_t>(h[i]);
  }
}

std::string base64(const std::uint8_t* data, std::size_t len) {
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    std::uint32_t v = (static_cast<std::uint32_t>(data[i]) << 16) |
                      (static_cast<std::uint32_t>(data[i + 1]) << 8) | data[i + 2];
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  if (len - i == 1) {
    std::uint32_t v = static_cast<std::uint32_t>(data[i]) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (len - i == 2) {
    std::uint32_t v = (static_cast<std::uint32_t>(data[i]) << 16) |
                      (static_cast<std::uint32_t>(data[i + 1]) << 8);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool header_value(const std::string& head, const char* name, std::string* out) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    pos += 2;
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::size_t colon = head.find(':', pos);
    if (colon != std::string::npos && colon < end && iequals(head.data() + pos, colon - pos, name)) {
      std::size_t vb = colon + 1, ve = end;
      while (vb < ve && is_ows(head[vb])) ++vb;
      while (ve > vb && is_ows(head[ve - 1])) --ve;
      *out = head.substr(vb, ve - vb);
      return true;
    }
    pos = end < head.size() ? end : std::string::npos;
  }
  return false;
}

std::string accept_key(const std::string& key) {
  std::string s = key + kGuid;
  std::uint8_t digest[20];
  sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), digest);
  return base64(digest, sizeof digest);
}

bool valid_utf8(const std::uint8_t* data, std::size_t len) {
  std::size_t i = 0;
  while (i < len) {
    // ASCII runs, eight bytes at a time.
    while (i + 8 <= len) {
      std::uint64_t w;
      std::memcpy(&w, data + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= len) break;
    std::uint8_t c = data[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;            // Continuation bytes that follow.
    std::uint8_t lo = 0x80;   // Range of the first continuation byte.
    std::uint8_t hi = 0xBF;
    if (c < 0xC2) {
      return false;           // A stray continuation byte, or an overlong C0/C1.
    } else if (c < 0xE0) {
      n = 1;
    } else if (c < 0xF0) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;   // Overlong.
      if (c == 0xED) hi = 0x9F;   // Surrogates U+D800..DFFF.
    } else if (c < 0xF5) {
      n = 3;
      if (c == 0xF0) lo = 0x90;   // Overlong.
      if (c == 0xF4) hi = 0x8F;   // Past U+10FFFF.
    } else {
      return false;
    }
    if (len - i - 1 < n) return false;   // Truncated.
    if (data[i + 1] < lo || data[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if ((data[i + k] & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::size_t encode_header(Opcode opcode, std::uint64_t len, std::uint8_t out[kMaxHeader],
                          const std::uint8_t* mask_key) {
  out[0] = static_cast<std::uint8_t>(0x80 | opcode);
  std::uint8_t mask_bit = mask_key != nullptr ? 0x80 : 0x00;
  std::size_t n;
  if (len < 126) {
    out[1] = static_cast<std::uint8_t>(mask_bit | len);
    n = 2;
  } else if (len <= 0xFFFF) {
    out[1] = static_cast<std::uint8_t>(mask_bit | 126);
    out[2] = static_cast<std::uint8_t>(len >> 8);
    out[3] = static_cast<std::uint8_t>(len);
    n = 4;
  } else {
    out[1] = static_cast<std::uint8_t>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask_key != nullptr) {
    std::memcpy(out + n, mask_key, 4);
    n += 4;
  }
  return n;
}

void mask(std::uint8_t* data, std::size_t len, const std::uint8_t key[4], std::size_t offset) {
  std::size_t k = offset & 3;
  std::size_t i = 0;
  // Align the key, then eight bytes at a time with the key repeated.
  for (; i < len && k != 0; ++i, k = (k + 1) & 3) data[i] ^= key[k];
  if (len - i >= 8) {
    std::uint8_t rep[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::uint64_t kw;
    std::memcpy(&kw, rep, 8);
    for (; i + 8 <= len; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, data + i, 8);
      w ^= kw;
      std::memcpy(data + i, &w, 8);
    }
  }
  for (; i < len; ++i, k = (k + 1) & 3) data[i] ^= key[k];
}

std::vector<std::uint8_t> close_frame(std::uint16_t code, const char* reason) {
  std::vector<std::uint8_t> payload;
  if (code != 0) {
    payload.push_back(static_cast<std::uint8_t>(code >> 8));
    payload.push_back(static_cast<std::uint8_t>(code));
    if (reason != nullptr) {
      std::size_t n = std::strlen(reason);
      if (n > 123) {
        // Cut at a character boundary, so a valid UTF-8 reason stays valid.
        n = 123;
        while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
      }
      payload.insert(payload.end(), reason, reason + n);
    }
  }
  std::uint8_t header[kMaxHeader];
  std::size_t h = encode_header(kClose, payload.size(), header);
  std::vector<std::uint8_t> frame(header, header + h);
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

std::vector<std::uint8_t> pong_frame(const std::uint8_t* data, std::size_t len) {
  if (len > 125) len = 125;
  std::uint8_t header[kMaxHeader];
  std::size_t h = encode_header(kPong, len, header);
  std::vector<std::uint8_t> frame(header, header + h);
  if (len > 0) frame.insert(frame.end(), data, data + len);
  return frame;
}

std::uint16_t close_code_for(const char* reason) {
  struct Entry {
    const char* name;
    std::uint16_t code;
  };
  static const Entry kCodes[] = {
      {"client-closed", kCloseNormal},      {"client-error", kCloseInternal},
      {"frame-too-large", kCloseTooBig},    {"slow-consumer", kClosePolicy},
      {"server-full", 1013},                {"server-closed", kCloseGoingAway},
      {"cluster-unavailable", kClosePolicy}, {"protocol-error", kCloseProtocolError},
  };
  if (reason != nullptr) {
    for (const Entry& e : kCodes)
      if (std::strcmp(reason, e.name) == 0) return e.code;
  }
  return kCloseInternal;   // Not a reason: our own fault.
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

Handshake::Handshake(const HandshakeConfig* config) : config_(config) {}

Handshake::Result Handshake::feed(const std::uint8_t* data, std::size_t len,
                                  std::size_t* consumed) {
  *consumed = 0;
  if (result_ != Result::NeedMore) return result_;
  auto reject = [this](int status) {
    status_ = status;
    response_ = error_response(status, false);
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
    if (r == Result::Reject) response_ = error_response(status, head_method);
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
    if (!is_tchar(c)) return finish(Result::Reject, 400);
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return finish(Result::Reject, 400);
  }
  bool http11 = version == "HTTP/1.1";
  if (!http11 && version != "HTTP/1.0") return finish(Result::Reject, 400);
  head_method = method == "HEAD";

  // Header fields: name ":" OWS value OWS. No obs-fold, no space before
  // the colon (RFC 7230 §3.2.4).
  std::string upgrade, connection, key, ws_version;
  int key_count = 0, version_count = 0;
  std::size_t pos = eol + 2;
  while (pos < h.size()) {
    std::size_t end = h.find("\r\n", pos);
    if (end == pos) break;   // The blank line.
    std::size_t colon = h.find(':', pos);
    if (colon == std::string::npos || colon == pos || colon > end) return finish(Result::Reject, 400);
    for (std::size_t k = pos; k < colon; ++k)
      if (!is_tchar(h[k])) return finish(Result::Reject, 400);
    std::size_t vb = colon + 1, ve = end;
    while (vb < ve && is_ows(h[vb])) ++vb;
    while (ve > vb && is_ows(h[ve - 1])) --ve;
    const char* name = h.data() + pos;
    std::size_t name_len = colon - pos;
    std::string value = h.substr(vb, ve - vb);
    if (iequals(name, name_len, "upgrade")) {
      upgrade += upgrade.empty() ? value : "," + value;
    } else if (iequals(name, name_len, "connection")) {
      connection += connection.empty() ? value : "," + value;
    } else if (iequals(name, name_len, "sec-websocket-key")) {
      key = value;
      ++key_count;
    } else if (iequals(name, name_len, "sec-websocket-version")) {
      ws_version = value;
      ++version_count;
    }
    pos = end + 2;
  }

  std::string path = target.substr(0, target.find('?'));
  if (path != config_->path) return finish(Result::Reject, 404);

  bool upgrade_attempt = has_token(upgrade, "websocket") || key_count > 0 || version_count > 0;
  // A method that is neither GET nor HEAD is 405 whatever its headers say
  // (docs/contract.md §6), as the js engine answers.
  if (method != "GET" && method != "HEAD") return finish(Result::Reject, 405);
  if (upgrade_attempt) {
    if (method != "GET" || !http11) return finish(Result::Reject, 400);
    if (!has_token(upgrade, "websocket") || !has_token(connection, "upgrade"))
      return finish(Result::Reject, 400);
    if (version_count != 1 || ws_version != "13") return finish(Result::Reject, 426);
    if (key_count != 1 || !valid_key(key)) return finish(Result::Reject, 400);
    response_ = "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Accept: " + accept_key(key) + "\r\n\r\n";
    return finish(Result::Upgrade, 101);
  }
  response_ = page_response(config_->page, head_method);
  return finish(Result::Page, 200);
}

// ---------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------

Decoder::Decoder(Role role, std::size_t max_message_bytes)
    : role_(role), max_(max_message_bytes) {}

void Decoder::fail(std::uint16_t code) {
  error_ = code;
  in_message_ = false;
  in_payload_ = false;
  release(&partial_);
  release(&message_);
}

std::uint16_t Decoder::feed(const std::uint8_t* data, std::size_t len, MessageSink* sink) {
  if (error_ != 0) return error_;
  std::size_t pos = 0;
  while (!closed_ && error_ == 0) {
    if (!in_payload_) {
      if (pos == len) break;
      pos += read_header(data + pos, len - pos);
      if (!in_payload_) continue;   // Header incomplete (pos == len), or an error.
    }
    // A zero-length payload completes here with no byte left.
    pos += read_payload(data + pos, len - pos, sink);
    if (in_payload_) break;         // The rest of the payload is still to come.
  }
  if (closed_) {
    release(&partial_);
    release(&message_);
  }
  return error_;
}

// Takes header bytes; on the last one, checks the frame and starts its
// payload (in_payload_). Returns the bytes taken.
std::size_t Decoder::read_header(const std::uint8_t* data, std::size_t len) {
  std::size_t used = 0;
  for (;;) {
    std::size_t need = 2;
    if (header_len_ >= 2) {
      std::uint8_t l7 = header_[1] & 0x7F;
      need += (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0);
    }
    if (header_len_ == need) break;
    if (used == len) return used;
    std::size_t take = need - header_len_;
    if (take > len - used) take = len - used;
    std::memcpy(header_ + header_len_, data + used, take);
    header_len_ += take;
    used += take;
    if (header_len_ == 2) {
      // All that two bytes can tell, before the rest arrives.
      std::uint8_t b0 = header_[0], b1 = header_[1];
      std::uint8_t op = b0 & 0x0F;
      bool fin = (b0 & 0x80) != 0;
      bool masked = (b1 & 0x80) != 0;
      bool control = (op & 0x8) != 0;
      bool known = op == kContinuation || op == kText || op == kBinary || op == kClose ||
                   op == kPing || op == kPong;
      if ((b0 & 0x70) != 0 || !known || masked != (role_ == Role::Server) ||
          (control && (!fin || (b1 & 0x7F) > 125)) ||
          (op == kContinuation && !in_message_) ||
          ((op == kText || op == kBinary) && in_message_)) {
        fail(kCloseProtocolError);
        return used;
      }
    }
  }
  // The whole header is here.
  std::uint8_t l7 = header_[1] & 0x7F;
  std::size_t at = 2;
  std::uint64_t n = l7;
  if (l7 == 126) {
    n = (static_cast<std::uint64_t>(header_[2]) << 8) | header_[3];
    at = 4;
  } else if (l7 == 127) {
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | header_[2 + i];
    at = 10;
    if (n >> 63) {
      fail(kCloseProtocolError);
      return used;
    }
  }
  opcode_ = header_[0] & 0x0F;
  fin_ = (header_[0] & 0x80) != 0;
  masked_ = (header_[1] & 0x80) != 0;
  if (masked_) std::memcpy(key_, header_ + at, 4);
  header_len_ = 0;
  if ((opcode_ & 0x8) == 0) {
    // A data frame: the message so far and this frame must fit the limit.
    if (n > static_cast<std::uint64_t>(max_ - message_.size())) {
      fail(kCloseTooBig);
      return used;
    }
    if (opcode_ != kContinuation) {
      in_message_ = true;
      message_text_ = opcode_ == kText;
    }
  }
  payload_len_ = n;
  payload_done_ = 0;
  in_payload_ = true;
  return used;
}

// Takes payload bytes of the current frame; on the last one, acts on the
// frame. Returns the bytes taken.
std::size_t Decoder::read_payload(const std::uint8_t* data, std::size_t len, MessageSink* sink) {
  std::uint64_t left = payload_len_ - payload_done_;
  std::size_t take = left < len ? static_cast<std::size_t>(left) : len;
  bool whole_here = payload_done_ == 0 && take == payload_len_;

  if (opcode_ & 0x8) {
    if (whole_here && !masked_) {
      // Unmasked and complete in the caller's buffer: no copy.
      in_payload_ = false;
      control(data, take, sink);
      return take;
    }
    if (payload_done_ == 0) partial_.reserve(static_cast<std::size_t>(payload_len_));
    std::size_t old = partial_.size();
    partial_.insert(partial_.end(), data, data + take);
    if (masked_) mask(partial_.data() + old, take, key_, old);
    payload_done_ += take;
    if (payload_done_ == payload_len_) {
      in_payload_ = false;
      control(partial_.data(), partial_.size(), sink);
      partial_.clear();
    }
    return take;
  }

  if (whole_here && fin_ && !masked_ && message_.empty()) {
    // A whole message, unmasked, in the caller's buffer: no copy.
    in_payload_ = false;
    in_message_ = false;
    deliver(data, take, message_text_, sink);
    return take;
  }
  // Into the message buffer (unmasked on the way). It grows with the bytes
  // that arrive, never past this frame's end, which the limit bounds.
  std::size_t old = message_.size();
  std::size_t need = old + take;
  if (message_.capacity() < need) {
    std::size_t frame_end = old + static_cast<std::size_t>(left);
    std::size_t cap = message_.capacity();
    std::size_t grow = cap > frame_end / 2 ? frame_end : cap * 2;
    message_.reserve(grow > need ? grow : need);
  }
  message_.insert(message_.end(), data, data + take);
  if (masked_) mask(message_.data() + old, take, key_, static_cast<std::size_t>(payload_done_));
  payload_done_ += take;
  if (payload_done_ == payload_len_) {
    in_payload_ = false;
    if (fin_) {
      in_message_ = false;
      deliver(message_.data(), message_.size(), message_text_, sink);
      if (message_.capacity() > kKeepCapacity) {
        release(&message_);
      } else {
        message_.clear();
      }
    }
  }
  return take;
}

void Decoder::deliver(const std::uint8_t* data, std::size_t len, bool text, MessageSink* sink) {
  if (text && !valid_utf8(data, len)) {
    fail(kCloseInvalidData);
    return;
  }
  sink->on_message(data, len, text);
}

void Decoder::control(const std::uint8_t* payload, std::size_t len, MessageSink* sink) {
  if (opcode_ == kPing) {
    sink->on_ping(payload, len);
  } else if (opcode_ == kClose) {
    if (len == 0) {
      closed_ = true;
      sink->on_close(1005, payload, 0);
      return;
    }
    if (len == 1) {
      fail(kCloseProtocolError);
      return;
    }
    std::uint16_t code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
    if (!valid_close_code(code)) {
      fail(kCloseProtocolError);
      return;
    }
    if (!valid_utf8(payload + 2, len - 2)) {
      fail(kCloseInvalidData);
      return;
    }
    closed_ = true;
    sink->on_close(code, payload + 2, len - 2);
  }
  // A pong: accepted and ignored.
}

// ---------------------------------------------------------------------------
// A client's message into frames of the server's framing
// ---------------------------------------------------------------------------

std::size_t message_to_frames(Framing framing, const std::uint8_t* data, std::size_t len,
                              std::vector<std::uint8_t>* scratch, FrameSink* sink) {
  switch (framing) {
    case Framing::Raw:
      if (len == 0) return 0;
      sink->on_frame(FrameView{data, len, 0, len});
      return 1;
    case Framing::Length: {
      if (static_cast<std::uint64_t>(len) > 0xFFFFFFFFull) return 0;   // Cannot be prefixed.
      scratch->resize(4 + len);
      (*scratch)[0] = static_cast<std::uint8_t>(len >> 24);
      (*scratch)[1] = static_cast<std::uint8_t>(len >> 16);
      (*scratch)[2] = static_cast<std::uint8_t>(len >> 8);
      (*scratch)[3] = static_cast<std::uint8_t>(len);
      if (len > 0) std::memcpy(scratch->data() + 4, data, len);
      sink->on_frame(FrameView{scratch->data(), 4 + len, 4, len});
      return 1;
    }
    case Framing::Line: {
      std::size_t count = 0;
      std::size_t pos = 0;
      while (pos < len) {
        const void* nl = std::memchr(data + pos, '\n', len - pos);
        if (nl == nullptr) break;
        std::size_t end =
            static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data) + 1;
        // A line with its '\n' in the message: relayed from it, no copy.
        sink->on_frame(FrameView{data + pos, end - pos, 0, end - pos - 1});
        ++count;
        pos = end;
      }
      if (pos < len || len == 0) {
        // The last line has no '\n' (or the message is empty): add one.
        scratch->assign(data + pos, data + len);
        scratch->push_back('\n');
        sink->on_frame(FrameView{scratch->data(), scratch->size(), 0, scratch->size() - 1});
        ++count;
      }
      return count;
    }
  }
  return 0;
}

}  // namespace ws
}  // namespace echocast
