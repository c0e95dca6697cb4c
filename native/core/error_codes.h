// error_codes.h — the codes of the addon's own errors (the system's come
// from ec_err_name), in one table.
//
// The addon exports the table (addon.errorCodes) so that a test can hold it
// against ErrorCodes in src/errors.ts: every code JS may see should be one
// TypeScript knows.
#ifndef ECHOCAST_CORE_ERROR_CODES_H
#define ECHOCAST_CORE_ERROR_CODES_H

namespace echocast {

// start() on a server that was started already (node's net uses the same).
inline constexpr const char kErrServerAlreadyListen[] = "ERR_SERVER_ALREADY_LISTEN";
// A load generator method called out of order.
inline constexpr const char kErrInvalidState[] = "ERR_INVALID_STATE";
// Load generator options the core refuses.
inline constexpr const char kErrInvalidArgValue[] = "ERR_INVALID_ARG_VALUE";

// Every code above, for the addon to export.
inline constexpr const char* kErrorCodes[] = {kErrServerAlreadyListen, kErrInvalidState,
                                              kErrInvalidArgValue};

}  // namespace echocast

#endif  // ECHOCAST_CORE_ERROR_CODES_H
