// ws/primitives.h — the byte-level primitives of the WebSocket protocol
// (as the `ws` package keeps them apart from its sender and receiver): SHA-1
// and base64 for Sec-WebSocket-Accept, and UTF-8 validation for text
// messages and close reasons. Pure functions: no I/O, no state, no OS
// header. Part of the WebSocket protocol in core/ws/ (docs/architecture.md).
#ifndef ECHOCAST_CORE_WS_PRIMITIVES_H
#define ECHOCAST_CORE_WS_PRIMITIVES_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace echocast {
namespace ws {

// SHA-1 (FIPS 180-4) of `len` bytes into out[20].
void sha1(const std::uint8_t* data, std::size_t len, std::uint8_t out[20]);

// Standard base64 (RFC 4648, with '=' padding).
std::string base64(const std::uint8_t* data, std::size_t len);

// Whether `len` bytes are well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF).
bool valid_utf8(const std::uint8_t* data, std::size_t len);

}  // namespace ws
}  // namespace echocast

#endif  // ECHOCAST_CORE_WS_PRIMITIVES_H
