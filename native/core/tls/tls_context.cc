// tls_context.cc — the check at load of the host's OpenSSL (tls_support())
// and the TLS material made into a context (TlsContext), both from memory.
// Which file owns which rule: docs/architecture.md ("TLS: which OpenSSL").
#include "openssl.h"
#include "tls.h"

#include <cstdio>

namespace echocast {
namespace tls {

#ifndef ECHOCAST_HAVE_OPENSSL

const TlsSupport& tls_support() {
  static const TlsSupport support = [] {
    TlsSupport s;
    s.reason = "built without OpenSSL's headers";
    return s;
  }();
  return support;
}

std::shared_ptr<TlsContext> TlsContext::create(Role, const TlsMaterial&, std::string* error) {
  *error = tls_support().reason;
  return nullptr;
}

TlsContext::~TlsContext() {}

#else  // ECHOCAST_HAVE_OPENSSL

namespace {

const char* const kFunctions[] = {
#define EC_OPENSSL_FN(name) #name,
#include "openssl_functions.def"
#undef EC_OPENSSL_FN
};

std::string version_text(unsigned long v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lu.%lu.%lu", (v >> 28) & 0xf, (v >> 20) & 0xff, (v >> 4) & 0xff);
  return buf;
}

TlsSupport check() {
  TlsSupport s;
  s.header_version = version_text(OPENSSL_VERSION_NUMBER);
  // Every function present before the first call: a host without them
  // (no OpenSSL, BoringSSL, an old node.exe's shorter export list) is told
  // apart from one with them before anything could crash.
  for (const char* name : kFunctions) {
    if (!ec_process_exports(name)) {
      s.reason = std::string("the host process exports no ") + name +
                 " (a Node.js without OpenSSL, or with BoringSSL)";
      return s;
    }
  }
  const unsigned long runtime = OpenSSL_version_num();
  s.runtime_version = OpenSSL_version(OPENSSL_VERSION);
  // OpenSSL keeps its ABI within a major version (3.x), forward: an addon
  // built against 3.0's headers runs on 3.5, not the reverse.
  const unsigned long want_major = (OPENSSL_VERSION_NUMBER >> 28) & 0xf;
  const unsigned long want_minor = (OPENSSL_VERSION_NUMBER >> 20) & 0xff;
  const unsigned long major = (runtime >> 28) & 0xf;
  const unsigned long minor = (runtime >> 20) & 0xff;
  if (major != want_major || minor < want_minor) {
    s.reason = "the host's OpenSSL " + version_text(runtime) + " is not " +
               std::to_string(want_major) + ".x at or above the " + s.header_version +
               " this addon was built against";
    return s;
  }
  s.usable = true;
  return s;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

BioPtr memory(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// True at the end of a PEM stream (no further block), which is not an error.
bool no_more_pem() {
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return true;
  }
  return false;
}

// The certificate and its chain, in order, into the context.
bool use_cert_chain(SSL_CTX* ctx, const std::string& pem, std::string* error) {
  BioPtr bio = memory(pem);
  X509Ptr leaf(bio ? PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!leaf) {
    *error = "cert: " + last_error("no certificate found");
    return false;
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    *error = "cert: " + last_error("not usable");
    return false;
  }
  for (;;) {
    X509* next = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (next == nullptr) {
      if (no_more_pem()) return true;
      *error = "cert: " + last_error("bad chain certificate");
      return false;
    }
    // The context owns it from here on (SSL_CTX_add0_chain_cert).
    if (SSL_CTX_add0_chain_cert(ctx, next) != 1) {
      X509_free(next);
      *error = "cert: " + last_error("bad chain certificate");
      return false;
    }
  }
}

bool use_key(SSL_CTX* ctx, const TlsMaterial& m, std::string* error) {
  BioPtr bio = memory(m.key);
  // With no callback, OpenSSL's default one takes `u` as the passphrase.
  std::string pass = m.has_passphrase ? m.passphrase : std::string();
  void* u = const_cast<char*>(pass.c_str());
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, u) : nullptr);
  if (!key) {
    std::string why = last_error("no private key found");
    // An encrypted key that does not read was not decrypted: OpenSSL's own
    // reason then depends on what the wrong key's output looked like.
    const bool encrypted = m.key.find("ENCRYPTED") != std::string::npos;
    if (encrypted) why = m.has_passphrase ? "bad passphrase" : "encrypted, and no passphrase given";
    *error = "key: " + why;
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    const std::string why = last_error("not usable");
    *error = mismatch ? "key: does not match the certificate" : "key: " + why;
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    *error = "key: does not match the certificate";
    return false;
  }
  return true;
}

// Every certificate of `ca` trusted for verification and, on a server, named
// to clients as an acceptable issuer.
bool use_ca(SSL_CTX* ctx, const std::string& pem, bool server, std::string* error) {
  BioPtr bio = memory(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int n = 0;
  for (;;) {
    X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert) {
      if (n > 0 && no_more_pem()) return true;
      *error = "ca: " + last_error("no certificate found");
      return false;
    }
    ++n;
    if (X509_STORE_add_cert(store, cert.get()) != 1 ||
        (server && SSL_CTX_add_client_CA(ctx, cert.get()) != 1)) {
      *error = "ca: " + last_error("not usable");
      return false;
    }
  }
}

// The verify callback of requestCert without rejectUnauthorized.
int accept_any(int, X509_STORE_CTX*) { return 1; }

}  // namespace

std::string last_error(const char* fallback) {
  unsigned long e = ERR_peek_last_error();
  std::string out = fallback;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* text = buf;  // After the last ':'.
    for (const char* p = buf; *p; ++p)
      if (*p == ':') text = p + 1;
    out = text;
  }
  ERR_clear_error();
  return out;
}

const TlsSupport& tls_support() {
  static const TlsSupport support = check();
  return support;
}

std::shared_ptr<TlsContext> TlsContext::create(Role role, const TlsMaterial& m,
                                               std::string* error) {
  if (!tls_support().usable) {
    *error = "OpenSSL unusable: " + tls_support().reason;
    return nullptr;
  }
  ERR_clear_error();
  const bool server = role == Role::kServer;
  std::unique_ptr<SSL_CTX, CtxFree> ctx(
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) {
    *error = last_error("cannot make a TLS context");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Idle connections give back their record buffers (docs/architecture.md,
  // "TLS: memory per connection"); encrypt() always writes whole buffers.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (server && m.cert.empty()) {
    *error = "cert: missing";
    return nullptr;
  }
  if (server && m.key.empty()) {
    *error = "key: missing";
    return nullptr;
  }
  if (!m.cert.empty() || !m.key.empty()) {
    if (!use_cert_chain(ctx.get(), m.cert, error)) return nullptr;
    if (!use_key(ctx.get(), m, error)) return nullptr;
  }
  if (!m.ca.empty() && !use_ca(ctx.get(), m.ca, server, error)) return nullptr;
  bool request = false;
  if (server) {
    request = m.request_cert;
    if (request && m.reject_unauthorized) {
      // A client without a certificate signed by `ca` fails the handshake.
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    } else if (request) {
      // Asked for, never refused (as node:tls with rejectUnauthorized: false).
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, accept_any);
    }
    if (request) {
      // Sessions resumed with a verified client certificate need an id.
      static const unsigned char kId[] = "echocast";
      SSL_CTX_set_session_id_context(ctx.get(), kId, sizeof kId - 1);
    }
  } else if (m.reject_unauthorized) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  ERR_clear_error();
  return std::shared_ptr<TlsContext>(new TlsContext(role, ctx.release(), request));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

#endif  // ECHOCAST_HAVE_OPENSSL

}  // namespace tls
}  // namespace echocast
