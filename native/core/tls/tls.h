// tls.h — the TLS layer of the native engines (docs/contract.md S17): what
// the rest of the core sees of it, with no OpenSSL header (core/tls/openssl.h
// is the only one that includes OpenSSL's). Which file owns which rule:
// docs/architecture.md; which OpenSSL and why: its "TLS: which OpenSSL".
//
//   tls_support()  whether the OpenSSL the host process exports is usable
//                  here (checked once, at first use), and if not, why.
//   TlsContext     the material, checked once (PEM from memory: the
//                  certificate and its chain, the key and its passphrase, the
//                  CA, requestCert / rejectUnauthorized); shared by sessions.
//   TlsSession     one connection's TLS over in-memory BIOs (a memory BIO
//                  in, one that appends to a string out), so that neither
//                  I/O model ever blocks on a handshake: feed() takes the
//                  socket's bytes and hands plaintext to a sink; encrypt()
//                  turns a list of plaintext slices (a connection's pending
//                  frames) into records in one pass; take_output() gives the
//                  bytes the handshake or an alert wants sent.
//
// Nothing here is thread-safe: a session belongs to the thread that drives
// its connection; a context may be shared by sessions on several threads
// once made (OpenSSL's SSL_CTX is safe for that), and outlives none of them
// unless they hold it (each session keeps its context alive).
#ifndef ECHOCAST_CORE_TLS_TLS_H
#define ECHOCAST_CORE_TLS_TLS_H

#include <cstddef>
#include <memory>
#include <string>

#include "../../platform/platform.h"

// OpenSSL's own struct tags, declared so that no OpenSSL header is needed.
struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace echocast {
namespace tls {

// What the check at load found (docs/architecture.md, "TLS: which OpenSSL").
struct TlsSupport {
  bool usable = false;
  // Why not, when !usable: "built without OpenSSL's headers", "the host
  // exports no SSL_CTX_new (...)", "the host's OpenSSL 1.1.1 is not the 3.x
  // this addon was built against".
  std::string reason;
  // The host's OpenSSL_version(OPENSSL_VERSION), when it has one, e.g.
  // "OpenSSL 3.0.19 27 Jan 2026"; and the headers' version text.
  std::string runtime_version;
  std::string header_version;
};

// Checked once (the first call; thread-safe), then the same answer.
const TlsSupport& tls_support();

// The material, as the options give it: PEM text (strings or Buffers in JS).
struct TlsMaterial {
  std::string cert;        // the certificate, then its chain (PEM blocks)
  std::string key;         // the private key (PEM; encrypted with passphrase)
  std::string passphrase;  // used when has_passphrase
  bool has_passphrase = false;
  std::string ca;  // trusted CAs (PEM blocks), may be empty
  // Server: ask for a client certificate; with reject_unauthorized, a client
  // without one signed by `ca` fails the handshake. Client: verify the
  // server's certificate against `ca` (when reject_unauthorized).
  bool request_cert = false;
  bool reject_unauthorized = true;
};

class TlsContext {
 public:
  enum class Role { kServer, kClient };

  // A context made from `material`, or nullptr with *error naming the
  // reason ("key: bad decrypt (wrong passphrase?)", "cert: no certificate
  // found", "key does not match the certificate", ...). A client needs no
  // cert/key (it may have both, for a client certificate).
  static std::shared_ptr<TlsContext> create(Role role, const TlsMaterial& material,
                                            std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Role role() const { return role_; }
  bool request_cert() const { return request_cert_; }
  ssl_ctx_st* native() const { return ctx_; }

 private:
  TlsContext(Role role, ssl_ctx_st* ctx, bool request_cert)
      : role_(role), ctx_(ctx), request_cert_(request_cert) {}
  Role role_;
  ssl_ctx_st* ctx_;
  bool request_cert_;
};

// Where a session's plaintext goes (a connection's framer or WebSocket
// session, in a later phase; a test's buffer).
class PlaintextSink {
 public:
  virtual ~PlaintextSink() = default;
  virtual void on_plaintext(const char* data, std::size_t len) = 0;
};

class TlsSession {
 public:
  enum class State { kHandshaking, kOpen, kFailed };

  // The plaintext of one encrypt() pass goes into records of up to this many
  // bytes (TLS's largest record): many small frames make few records.
  static constexpr std::size_t kRecordBytes = 16384;

  // A session of `context`'s role (accepting or connecting); it holds the
  // context until it ends. A failed setup (out of memory) starts kFailed.
  explicit TlsSession(std::shared_ptr<TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // A client starts the handshake: its ClientHello waits in take_output().
  // A server session waits for the client's bytes (feed()).
  void start();

  // The socket's bytes. Drives the handshake; once open, every whole record's
  // plaintext goes to `sink`, in order, before feed() returns. Returns the
  // state after: kFailed with failure() naming the reason (plain text on a
  // TLS port, garbage records, a client certificate refused or missing, ...);
  // an alert for the peer may then wait in take_output(). A peer's
  // close_notify leaves the session open: the connection sees its end of
  // stream from the socket.
  State feed(const char* data, std::size_t len, PlaintextSink& sink);

  // Encrypts the slices, in order, as one stream: the plaintext is gathered
  // into records of up to kRecordBytes (so N small frames cost
  // ceil(total / 16 KiB) records, not N), and the records are appended to
  // *out with whatever take_output() had waiting before them. Only when
  // open; returns false (and fails the session) if OpenSSL refuses.
  bool encrypt(const ec_iovec* slices, std::size_t count, std::string* out);

  // Our close_notify (the end of what we send), once, when open: it waits
  // in take_output(). The session stays usable for input.
  void close_notify();

  // Appends the bytes waiting to be sent (handshake records, alerts) to
  // *out; returns how many.
  std::size_t take_output(std::string* out);

  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }
  const std::string& failure() const { return failure_; }
  // Bytes fed but not yet part of a whole record (at most one record's
  // worth, about 16.7 KiB, since feed() reads every whole record out).
  std::size_t buffered_input() const;

 private:
  void fail(const std::string& why);
  bool handshake();  // one step; false once it failed
  void drain_plaintext(PlaintextSink& sink);
  std::shared_ptr<TlsContext> context_;
  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;  // ciphertext from the peer (owned by ssl_)
  // Ciphertext for the peer (owned by ssl_): not a memory BIO but one that
  // appends what OpenSSL writes to a string, encrypt()'s *out while it runs
  // (the records go straight onto the caller's wire), else pending_ (the
  // handshake's records, alerts, close_notify) until take_output().
  bio_st* out_ = nullptr;
  std::string pending_;
  State state_ = State::kHandshaking;
  bool saw_input_ = false;
  bool close_notified_ = false;
  std::string failure_;
};

}  // namespace tls
}  // namespace echocast

#endif  // ECHOCAST_CORE_TLS_TLS_H
