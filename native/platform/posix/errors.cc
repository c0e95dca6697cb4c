// errors.cc (POSIX) — the errno and getaddrinfo rows of error_table.def,
// and the messages.
#include <errno.h>
#include <string.h>

#include "posix.h"

namespace ec_internal {

const OsCode kOsCodes[] = {
    EC_ERROR_TABLE(EC_ERROR_IGNORE, EC_OS_ROW, EC_ERROR_IGNORE, EC_ERROR_IGNORE)};
const std::size_t kOsCodeCount = sizeof kOsCodes / sizeof kOsCodes[0];

namespace {
const OsCode kGai[] = {
    EC_ERROR_TABLE(EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_ERROR_IGNORE, EC_OS_ROW)};
}  // namespace

ec_error last_error() { return from_os(errno); }

// getaddrinfo reports its own EAI_* codes; they are kept apart from errno
// values by storing them negated in os_code.
ec_error from_gai(int rc) {
  if (rc == EAI_SYSTEM) return last_error();
  const OsCode* row = find_row(kGai, sizeof kGai / sizeof kGai[0], rc);
  ec_error err;
  err.code = row ? row->code : EC_ENOTFOUND;
  err.os_code = -rc;
  return err;
}

}  // namespace ec_internal

std::string ec_error_message(const ec_error& err) {
  if (err.os_code < 0 && err.code == EC_EUNKNOWN) return gai_strerror(-err.os_code);
  const char* fixed = ec_err_message(err.code);
  if (fixed != nullptr) return fixed;
  // An errno we have no name for: the system's text. strerror is safe here
  // for the values it is given (it only formats unknown numbers).
  const char* text = strerror(err.os_code);
  return text ? text : "unknown error";
}

const char* ec_platform_name() { return "posix"; }
