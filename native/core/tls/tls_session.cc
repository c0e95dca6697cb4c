// tls_session.cc — one connection's TLS over in-memory BIOs (core/tls/tls.h):
// the handshake and its failure reasons, plaintext out of whole records, and
// a connection's pending frames encrypted in one pass into records of up to
// 16 KiB. Which file owns which rule: docs/architecture.md.
#include "openssl.h"
#include "tls.h"

#include <cstdio>
#include <cstring>
#include <utility>

namespace echocast {
namespace tls {

#ifndef ECHOCAST_HAVE_OPENSSL

TlsSession::TlsSession(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {
  fail(tls_support().reason);
}
TlsSession::~TlsSession() {}
void TlsSession::start() {}
TlsSession::State TlsSession::feed(const char*, std::size_t, PlaintextSink&) { return state_; }
bool TlsSession::handshake() { return false; }
bool TlsSession::encrypt(const ec_iovec*, std::size_t, std::string*) { return false; }
void TlsSession::close_notify() {}
std::size_t TlsSession::take_output(std::string*) { return 0; }
std::size_t TlsSession::buffered_input() const { return 0; }
void TlsSession::fail(const std::string& why) {
  state_ = State::kFailed;
  if (failure_.empty()) failure_ = why;
}
void TlsSession::drain_plaintext(PlaintextSink&) {}

#else  // ECHOCAST_HAVE_OPENSSL

namespace {

bool printable(unsigned char c) {
  return (c >= 0x20 && c < 0x7f) || c == '\r' || c == '\n' || c == '\t';
}

// The output BIO: what OpenSSL writes is appended to the std::string its data
// points to. A memory BIO there cost each record two more copies and a
// memset (BIO_write grows and clears its buffer, BIO_read copies out, the
// string's resize clears again): about a tenth of native-poll's CPU with TLS
// at 50 x 5 x 64 B (perf).
int wire_write(BIO* b, const char* data, int len) {
  std::string* target = static_cast<std::string*>(BIO_get_data(b));
  if (target == nullptr || len < 0) return -1;
  target->append(data, static_cast<std::size_t>(len));
  return len;
}

long wire_ctrl(BIO*, int cmd, long, void*) {
  // Nothing is ever held back, so a flush is done at once; any other
  // request (pending bytes, kTLS, ...) is answered "no".
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// Made once, on first use, and kept for the process's life.
const BIO_METHOD* wire_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "echocast wire");
    if (m != nullptr &&
        (BIO_meth_set_write(m, wire_write) != 1 || BIO_meth_set_ctrl(m, wire_ctrl) != 1))
      m = nullptr;  // Not freed: a failure here is out of memory anyway.
    return m;
  }();
  return method;
}

// Points the output BIO at `target` for one scope, then back at the
// session's own pending bytes.
class WireTarget {
 public:
  WireTarget(BIO* bio, std::string* target, std::string* pending) : bio_(bio), pending_(pending) {
    BIO_set_data(bio_, target);
  }
  ~WireTarget() { BIO_set_data(bio_, pending_); }
  WireTarget(const WireTarget&) = delete;
  WireTarget& operator=(const WireTarget&) = delete;

 private:
  BIO* bio_;
  std::string* pending_;
};

}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {
  if (!context_ || !tls_support().usable) {
    fail(context_ ? "OpenSSL unusable: " + tls_support().reason : "no TLS context");
    return;
  }
  ssl_ = SSL_new(context_->native());
  in_ = BIO_new(BIO_s_mem());
  const BIO_METHOD* wire = wire_method();
  out_ = wire != nullptr ? BIO_new(wire) : nullptr;
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    if (in_) BIO_free(in_);
    if (out_) BIO_free(out_);
    in_ = out_ = nullptr;
    fail("out of memory");
    return;
  }
  // An empty input BIO means "wait for more" (not end of stream).
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_data(out_, &pending_);
  BIO_set_init(out_, 1);
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both from here
  if (context_->role() == TlsContext::Role::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsSession::fail(const std::string& why) {
  state_ = State::kFailed;
  if (failure_.empty()) failure_ = why;
}

void TlsSession::start() {
  if (state_ != State::kHandshaking || context_->role() != TlsContext::Role::kClient) return;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r != 1 && SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
    fail("handshake failed: " + last_error("cannot start"));
  }
}

TlsSession::State TlsSession::feed(const char* data, std::size_t len, PlaintextSink& sink) {
  if (state_ == State::kFailed || len == 0) return state_;
  if (!saw_input_ && context_->role() == TlsContext::Role::kServer) {
    saw_input_ = true;
    // A client's stream starts with a handshake record (content type 22).
    // Anything else was never TLS: say what it looks like, and let OpenSSL
    // not even see it.
    const unsigned char first = static_cast<unsigned char>(data[0]);
    if (first != 0x16) {
      char buf[96];
      if (printable(first)) {
        std::snprintf(buf, sizeof buf, "plain text on a TLS port");
      } else {
        std::snprintf(buf, sizeof buf, "not a TLS record (first byte 0x%02x)", first);
      }
      fail(buf);
      return state_;
    }
  }
  // In pieces of a record's size, each read out before the next goes in:
  // a memory BIO keeps the largest size it ever held, so this bounds it
  // (docs/architecture.md, "TLS in the native engines").
  ERR_clear_error();
  while (len > 0 && state_ != State::kFailed) {
    const std::size_t n = len < kRecordBytes ? len : kRecordBytes;
    if (BIO_write(in_, data, static_cast<int>(n)) != static_cast<int>(n)) {
      fail("out of memory");
      break;
    }
    data += n;
    len -= n;
    if (state_ == State::kHandshaking && !handshake()) break;
    if (state_ == State::kOpen) drain_plaintext(sink);
  }
  return state_;
}

bool TlsSession::handshake() {
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    state_ = State::kOpen;
    return true;
  }
  int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
  const long verify = SSL_get_verify_result(ssl_);
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    ERR_clear_error();
    fail("no client certificate: the peer sent none and one is required");
  } else if (verify != X509_V_OK) {
    ERR_clear_error();
    fail(std::string("certificate refused: ") + X509_verify_cert_error_string(verify));
  } else {
    fail("handshake failed: " + last_error("the peer broke the protocol"));
  }
  return false;
}

void TlsSession::drain_plaintext(PlaintextSink& sink) {
  char buf[kRecordBytes];
  for (;;) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      sink.on_plaintext(buf, static_cast<std::size_t>(r));
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    // Wants more bytes; or the peer's close_notify: its end of stream reaches
    // the connection from the socket, and nothing more is read from it.
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_ZERO_RETURN) {
      ERR_clear_error();
      return;
    }
    fail("bad record: " + last_error("the peer broke the protocol"));
    return;
  }
}

bool TlsSession::encrypt(const ec_iovec* slices, std::size_t count, std::string* out) {
  if (state_ != State::kOpen) return false;
  // No ERR_clear_error() first (1% of the CPU here): nothing below asks
  // SSL_get_error, and a failure reads the last error, which is its own.
  // Small slices are gathered into one record's worth before each
  // SSL_write (one SSL_write makes at least one record); a slice that
  // starts a record and fills whole ones goes to SSL_write as it is, which
  // cuts it into 16 KiB records itself. 16 KiB of stack: the threads
  // engine's stacks are 128 KiB.
  char stage[kRecordBytes];
  std::size_t used = 0;
  // What was waiting goes first; then each record goes straight onto *out.
  take_output(out);
  WireTarget onto(out_, out, &pending_);
  auto write = [this](const char* p, std::size_t n) {
    while (n > 0) {
      const std::size_t chunk = n < kRecordBytes ? n : kRecordBytes;
      int r = SSL_write(ssl_, p, static_cast<int>(chunk));
      if (r <= 0) {
        fail("cannot encrypt: " + last_error("SSL_write failed"));
        return false;
      }
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  };
  for (std::size_t i = 0; i < count; ++i) {
    const char* p = static_cast<const char*>(slices[i].base);
    std::size_t len = slices[i].len;
    while (len > 0) {
      if (used == 0 && len >= kRecordBytes) {
        const std::size_t whole = len - len % kRecordBytes;
        if (!write(p, whole)) return false;
        p += whole;
        len -= whole;
        continue;
      }
      const std::size_t take = len < kRecordBytes - used ? len : kRecordBytes - used;
      std::memcpy(stage + used, p, take);
      used += take;
      p += take;
      len -= take;
      if (used == kRecordBytes) {
        if (!write(stage, used)) return false;
        used = 0;
      }
    }
  }
  return used == 0 || write(stage, used);
}

void TlsSession::close_notify() {
  if (state_ != State::kOpen || close_notified_) return;
  close_notified_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // Writes our close_notify; the peer's is not awaited.
  ERR_clear_error();
}

std::size_t TlsSession::take_output(std::string* out) {
  const std::size_t got = pending_.size();
  out->append(pending_);
  pending_.clear();
  return got;
}

std::size_t TlsSession::buffered_input() const {
  return in_ != nullptr ? BIO_ctrl_pending(in_) : 0;
}

#endif  // ECHOCAST_HAVE_OPENSSL

}  // namespace tls
}  // namespace echocast
