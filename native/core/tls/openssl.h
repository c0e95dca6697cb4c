// openssl.h — the one header through which native/core/tls/ sees OpenSSL's
// (docs/architecture.md, "TLS: which OpenSSL"). Only core/tls/*.cc and the
// C++ tests include it; every other file of the core sees core/tls/tls.h,
// which names no OpenSSL type.
//
// The headers are node's own (node-gyp's include/node/openssl, which
// binding.gyp and native/CMakeLists.txt put on the include path), and the
// functions come from the host process at run time: the node binary exports
// OpenSSL's symbols on Linux and macOS, node.exe through its import library on
// Windows (the mingw-w64 build's, made from openssl_functions.def). A build
// that finds no OpenSSL headers (or is given ECHOCAST_NO_OPENSSL) compiles
// the TLS layer as "unusable: built without OpenSSL's headers".
#ifndef ECHOCAST_CORE_TLS_OPENSSL_H
#define ECHOCAST_CORE_TLS_OPENSSL_H

#if !defined(ECHOCAST_NO_OPENSSL) && defined(__has_include)
#if __has_include(<openssl/ssl.h>)
#define ECHOCAST_HAVE_OPENSSL 1
#endif
#endif

#ifdef ECHOCAST_HAVE_OPENSSL
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#if defined(__ELF__)
// On ELF the references are weak: a host that exports no OpenSSL (a node
// built without it, or with BoringSSL under other names) still loads the
// addon, even with LD_BIND_NOW, and the check at load (tls_support()) keeps
// every call from happening. Windows gets the same from the delay-load import
// library; macOS resolves the addon's undefined symbols lazily.
#define EC_OPENSSL_FN(name) _Pragma(ECHOCAST_TLS_STR(weak name))
#define ECHOCAST_TLS_STR(x) #x
#include "openssl_functions.def"
#undef EC_OPENSSL_FN
#undef ECHOCAST_TLS_STR
#endif

#include <string>

namespace echocast {
namespace tls {

// The reason of OpenSSL's last error on this thread, for a message
// ("error:0480006C:PEM routines::no start line" -> "no start line"), or
// `fallback` when there is none; the queue is cleared. In tls_context.cc.
std::string last_error(const char* fallback);

}  // namespace tls
}  // namespace echocast
#endif  // ECHOCAST_HAVE_OPENSSL

#endif  // ECHOCAST_CORE_TLS_OPENSSL_H
