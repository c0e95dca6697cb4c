// test_tls_context.cc — core/tls: the check at load of the host's OpenSSL and
// the material made into a context (PEM from memory): good material, and
// each bad kind refused with a reason that names it.
#include <string>

#include "tls_test_util.h"
#include "unit.h"

using echocast::tls::tls_support;
using namespace tls_test;

namespace {

std::string refusal(TlsContext::Role role, const TlsMaterial& m) {
  std::string error;
  auto ctx = TlsContext::create(role, m, &error);
  return ctx ? std::string("(made)") : error;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(tls_support_checks_the_process_openssl) {
  // The unit tests link the system's OpenSSL 3: the check must pass, with
  // both versions known.
  const auto& s = tls_support();
  if (!s.usable) std::fprintf(stderr, "  reason: %s\n", s.reason.c_str());
  CHECK(s.usable);
  CHECK(s.reason.empty());
  CHECK(contains(s.runtime_version, "OpenSSL 3."));
  CHECK_EQ(s.header_version.substr(0, 2), std::string("3."));
  // The platform layer's answer the check is made of.
  CHECK(ec_process_exports("SSL_CTX_new"));
  CHECK(!ec_process_exports("echocast_no_such_function"));
}

TEST(tls_context_from_good_material) {
  if (!usable()) return;
  CHECK_EQ(refusal(TlsContext::Role::kServer, server_material()), std::string("(made)"));
  TlsMaterial m = server_material();
  m.key = pki().server_key_encrypted;
  m.passphrase = "s3cret";
  m.has_passphrase = true;
  CHECK_EQ(refusal(TlsContext::Role::kServer, m), std::string("(made)"));
  // A chain: the leaf, then its intermediate.
  m = server_material();
  m.cert = pki().chained_server_cert;
  m.key = pki().chained_server_key;
  CHECK_EQ(refusal(TlsContext::Role::kServer, m), std::string("(made)"));
  // A CA with two certificates, and client certificates asked for.
  m = server_material();
  m.ca = pki().ca + pki().other_ca;
  m.request_cert = true;
  CHECK_EQ(refusal(TlsContext::Role::kServer, m), std::string("(made)"));
  CHECK_EQ(refusal(TlsContext::Role::kClient, client_material()), std::string("(made)"));
}

TEST(tls_context_refuses_bad_material_with_its_reason) {
  if (!usable()) return;
  TlsMaterial m = server_material();
  m.key = pki().client_key;  // another key
  CHECK_EQ(refusal(TlsContext::Role::kServer, m),
           std::string("key: does not match the certificate"));

  m = server_material();
  m.key = pki().server_key_encrypted;
  m.passphrase = "wrong";
  m.has_passphrase = true;
  std::string why = refusal(TlsContext::Role::kServer, m);
  CHECK(contains(why, "key: bad passphrase"));

  m.has_passphrase = false;
  m.passphrase.clear();
  why = refusal(TlsContext::Role::kServer, m);
  CHECK(contains(why, "key: "));
  CHECK(why != "(made)");

  m = server_material();
  m.cert = "not a certificate";
  why = refusal(TlsContext::Role::kServer, m);
  CHECK(contains(why, "cert: "));
  CHECK(contains(why, "no start line"));

  m = server_material();
  m.key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  why = refusal(TlsContext::Role::kServer, m);
  CHECK(contains(why, "key: "));

  m = server_material();
  m.ca = "garbage";
  why = refusal(TlsContext::Role::kServer, m);
  CHECK(contains(why, "ca: "));

  m = server_material();
  m.cert.clear();
  CHECK_EQ(refusal(TlsContext::Role::kServer, m), std::string("cert: missing"));
  m = server_material();
  m.key.clear();
  CHECK_EQ(refusal(TlsContext::Role::kServer, m), std::string("key: missing"));
}
