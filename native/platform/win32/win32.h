// win32.h — helpers the Windows implementation files share; never included
// outside native/platform/win32.
#ifndef ECHOCAST_PLATFORM_WIN32_H
#define ECHOCAST_PLATFORM_WIN32_H

#include "../internal.h"

static_assert(sizeof(SOCKET) == sizeof(ec_socket_t), "SOCKET size");

namespace ec_internal {

// The Winsock handle behind a neutral socket.
inline SOCKET sock(ec_socket_t s) { return static_cast<SOCKET>(s); }

// Keeps child processes from inheriting the handle.
void no_inherit(SOCKET s);

// A Windows error from GetLastError(), translated.
ec_error last_windows_error();

}  // namespace ec_internal

#endif  // ECHOCAST_PLATFORM_WIN32_H
