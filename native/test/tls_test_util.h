// tls_test_util.h — what the TLS unit tests share: certificates made at test
// time with OpenSSL's API (a CA, a server and clients it signs, a foreign
// CA), sessions pumped through memory, and TLS record counting. Made in C++
// rather than read from files the test script writes, so that
// echocast_unit_tests needs no openssl command and no files, and a test says
// in one place what its certificates are (test/tls/certs.ts is the TS
// suite's counterpart, with the openssl command).
#ifndef ECHOCAST_TEST_TLS_TEST_UTIL_H
#define ECHOCAST_TEST_TLS_TEST_UTIL_H

#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "../core/tls/openssl.h"
#include "../core/tls/tls.h"

namespace tls_test {

using echocast::tls::PlaintextSink;
using echocast::tls::TlsContext;
using echocast::tls::TlsMaterial;
using echocast::tls::TlsSession;

struct Key {
  EVP_PKEY* p;
  Key() : p(EVP_EC_gen("P-256")) {}
  ~Key() { EVP_PKEY_free(p); }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
};

inline std::string to_pem(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline std::string to_pem(EVP_PKEY* k, const char* passphrase = nullptr) {
  BIO* b = BIO_new(BIO_s_mem());
  if (passphrase != nullptr) {
    PEM_write_bio_PrivateKey(b, k, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                             const_cast<char*>(passphrase));
  } else {
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

// A certificate for `key` named `cn`, signed by (issuer, issuer_key), or
// self-signed when issuer is null; `ca` marks it a CA.
inline X509* make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  static long serial = 1;
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
  return x;
}

// One CA with a server and a client certificate, and a second CA (with a
// client of its own) that the first does not know. Made once per run.
struct Pki {
  std::string ca, server_cert, server_key, server_key_encrypted, client_cert, client_key;
  std::string other_ca, other_client_cert, other_client_key;
  std::string chained_server_cert, chained_server_key;  // leaf + intermediate
};

inline const Pki& pki() {
  static const Pki p = [] {
    Pki out;
    Key ca_key, server_key, client_key, other_key, other_client_key, inter_key, leaf_key;
    X509* ca = make_cert(ca_key.p, "echocast test CA", nullptr, nullptr, true);
    X509* server = make_cert(server_key.p, "localhost", ca, ca_key.p, false);
    X509* client = make_cert(client_key.p, "client", ca, ca_key.p, false);
    X509* other = make_cert(other_key.p, "another CA", nullptr, nullptr, true);
    X509* other_client = make_cert(other_client_key.p, "stranger", other, other_key.p, false);
    X509* inter = make_cert(inter_key.p, "intermediate", ca, ca_key.p, true);
    X509* leaf = make_cert(leaf_key.p, "localhost", inter, inter_key.p, false);
    out.ca = to_pem(ca);
    out.server_cert = to_pem(server);
    out.server_key = to_pem(server_key.p);
    out.server_key_encrypted = to_pem(server_key.p, "s3cret");
    out.client_cert = to_pem(client);
    out.client_key = to_pem(client_key.p);
    out.other_ca = to_pem(other);
    out.other_client_cert = to_pem(other_client);
    out.other_client_key = to_pem(other_client_key.p);
    out.chained_server_cert = to_pem(leaf) + to_pem(inter);
    out.chained_server_key = to_pem(leaf_key.p);
    for (X509* x : {ca, server, client, other, other_client, inter, leaf}) X509_free(x);
    return out;
  }();
  return p;
}

struct Sink : PlaintextSink {
  std::string data;
  void on_plaintext(const char* p, std::size_t n) override { data.append(p, n); }
};

// Moves bytes both ways until neither side has anything to send; returns
// whether anything moved.
inline bool pump(TlsSession& client, Sink& client_in, TlsSession& server, Sink& server_in) {
  bool moved = false;
  for (;;) {
    std::string a, b;
    client.take_output(&a);
    if (!a.empty()) server.feed(a.data(), a.size(), server_in);
    server.take_output(&b);
    if (!b.empty()) client.feed(b.data(), b.size(), client_in);
    if (a.empty() && b.empty()) return moved;
    moved = true;
  }
}

// How many TLS records of `type` (23: application data) the bytes hold;
// -1 when they do not end at a record's end.
inline int count_records(const std::string& bytes, int type) {
  std::size_t at = 0;
  int n = 0;
  while (at + 5 <= bytes.size()) {
    const unsigned char* h = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    const std::size_t len = (std::size_t{h[3]} << 8) | h[4];
    if (h[0] == type) ++n;
    at += 5 + len;
  }
  return at == bytes.size() ? n : -1;
}

inline std::shared_ptr<TlsContext> context(TlsContext::Role role, const TlsMaterial& m) {
  std::string error;
  auto ctx = TlsContext::create(role, m, &error);
  if (!ctx) std::fprintf(stderr, "  TLS context: %s\n", error.c_str());
  return ctx;
}

inline TlsMaterial server_material() {
  TlsMaterial m;
  m.cert = pki().server_cert;
  m.key = pki().server_key;
  return m;
}

inline TlsMaterial client_material() {
  TlsMaterial m;
  m.ca = pki().ca;
  return m;
}

// True when the TLS layer can run here; else says why, once per test.
inline bool usable() {
  if (echocast::tls::tls_support().usable) return true;
  std::fprintf(stderr, "  (TLS not usable here: %s; test skipped)\n",
               echocast::tls::tls_support().reason.c_str());
  return false;
}

}  // namespace tls_test

#endif  // ECHOCAST_TEST_TLS_TEST_UTIL_H
