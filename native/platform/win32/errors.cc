// errors.cc (Windows) — Winsock and Windows errors to ec_err, generated from
// error_table.def together with their names, and the messages, which name the
// Windows code too (e.g. "address already in use (WSAEADDRINUSE)") so a
// report can be matched to Microsoft's documentation.
#include <cstdio>

#include "win32.h"

namespace ec_internal {

const OsCode kOsCodes[] = {
    EC_ERROR_TABLE(EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_OS_ROW, EC_ERROR_IGNORE)};
const std::size_t kOsCodeCount = sizeof kOsCodes / sizeof kOsCodes[0];

ec_error last_error() { return from_os(WSAGetLastError()); }

ec_error last_windows_error() { return from_os(static_cast<int>(GetLastError())); }

// getaddrinfo reports Winsock codes (WSAHOST_NOT_FOUND, ...).
ec_error from_gai(int rc) { return from_os(rc); }

}  // namespace ec_internal

using namespace ec_internal;

std::string ec_error_message(const ec_error& err) {
  // libuv's wording where the code is known, the system's text otherwise,
  // and always the Windows name.
  std::string message;
  const char* fixed = ec_err_message(err.code);
  if (fixed != nullptr) {
    message = fixed;
  } else {
    char text[512] = {0};
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                             static_cast<DWORD>(err.os_code),
                             MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), text, sizeof text, nullptr);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' || text[n - 1] == ' ' ||
                     text[n - 1] == '.')) {
      text[--n] = '\0';
    }
    message = n > 0 ? std::string(text) : std::string("unknown error");
  }
  if (err.os_code == 0) return message;
  const OsCode* row = find_row(kOsCodes, kOsCodeCount, err.os_code);
  char tail[64];
  if (row != nullptr) {
    std::snprintf(tail, sizeof tail, " (%s)", row->name);
  } else {
    std::snprintf(tail, sizeof tail, " (Windows error %d)", err.os_code);
  }
  return message + tail;
}

const char* ec_platform_name() { return "win32"; }
