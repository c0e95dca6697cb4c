// testing.h — the part of the platform layer only the C++ tests use: they
// play clients over real loopback sockets, which the server itself never
// does, so these calls stay out of platform.h.
#ifndef ECHOCAST_PLATFORM_TESTING_H
#define ECHOCAST_PLATFORM_TESTING_H

#include "platform.h"

// Opens a blocking TCP connection to host:port (TCP_NODELAY set, trying
// each address getaddrinfo gives until one connects).
ec_error ec_connect(const char* host, int port, ec_socket_t* out);

// Closes the socket abortively (SO_LINGER 0): the peer gets a reset, not
// an end of stream. Tests use it to play a client that resets.
void ec_socket_reset(ec_socket_t s);

#endif  // ECHOCAST_PLATFORM_TESTING_H
