// reasons.h — the one list of disconnect reasons, shared by both native
// engines and the Node-API wrapper.
//
// Every client leaves with exactly one of these (docs/contract.md). The list
// is an X-macro so that the enum, the names JS sees and any per-reason table
// (tallies for stats()) are generated from one place; src/engines/types.ts
// keeps the TypeScript side, and a test checks the two lists are equal.
#ifndef ECHOCAST_CORE_REASONS_H
#define ECHOCAST_CORE_REASONS_H

#include <cstddef>
#include <cstring>

namespace echocast {

// X(enumerator, "name-as-JS-sees-it")
#define ECHOCAST_REASONS(X)                    \
  X(ClientClosed, "client-closed")             \
  X(ClientError, "client-error")               \
  X(FrameTooLarge, "frame-too-large")          \
  X(SlowConsumer, "slow-consumer")             \
  X(ServerFull, "server-full")                 \
  X(ServerClosed, "server-closed")             \
  X(ClusterUnavailable, "cluster-unavailable") \
  X(ProtocolError, "protocol-error")

// A disconnect reason.
enum class Reason : unsigned char {
#define ECHOCAST_REASON_ENUM(e, s) e,
  ECHOCAST_REASONS(ECHOCAST_REASON_ENUM)
#undef ECHOCAST_REASON_ENUM
};

// How many reasons there are (for per-reason tables).
constexpr std::size_t kReasonCount = 0
#define ECHOCAST_REASON_COUNT(e, s) +1
    ECHOCAST_REASONS(ECHOCAST_REASON_COUNT)
#undef ECHOCAST_REASON_COUNT
    ;

// The name JS sees, e.g. "slow-consumer" (static storage).
inline const char* reason_name(Reason r) {
  static const char* const kNames[] = {
#define ECHOCAST_REASON_NAME(e, s) s,
      ECHOCAST_REASONS(ECHOCAST_REASON_NAME)
#undef ECHOCAST_REASON_NAME
  };
  return kNames[static_cast<std::size_t>(r)];
}

// Parses a name; false if it is not a reason.
inline bool reason_from_name(const char* name, Reason* out) {
  for (std::size_t i = 0; i < kReasonCount; ++i) {
    if (std::strcmp(name, reason_name(static_cast<Reason>(i))) == 0) {
      *out = static_cast<Reason>(i);
      return true;
    }
  }
  return false;
}

}  // namespace echocast

#endif  // ECHOCAST_CORE_REASONS_H
