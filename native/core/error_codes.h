// error_codes.h — the codes of the addon's own errors (the system's come
// from ec_err_name), in one table.
//
// Each is a code of ErrorCodes in src/errors.ts: every error a server raises
// carries a code listed there (docs/contract.md S14). The addon exports this
// table and the system's names (addon.errorCodes) so that
// test/unit/addon-tables.test.ts can hold them against ErrorCodes.
#ifndef ECHOCAST_CORE_ERROR_CODES_H
#define ECHOCAST_CORE_ERROR_CODES_H

namespace echocast {

// A method called in a state that does not allow it: start() on a server
// that was started already, a load generator method called out of order
// (ErrorCodes.BAD_STATE, which the JS side raises for the same mistakes).
inline constexpr const char kErrBadState[] = "ECHOCAST_BAD_STATE";
// Options the core refuses, such as a load generator's out of range
// (ErrorCodes.INVALID_OPTION, as src/options.ts rejects a server's).
inline constexpr const char kErrInvalidOption[] = "ECHOCAST_INVALID_OPTION";

// Every code above, once, for the addon to export.
inline constexpr const char* kErrorCodes[] = {kErrBadState, kErrInvalidOption};

}  // namespace echocast

#endif  // ECHOCAST_CORE_ERROR_CODES_H
