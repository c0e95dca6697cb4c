// errors.cc — the names of ec_err codes, shared by both platform
// implementations (the translation from OS numbers lives in each of them).
#include "platform.h"

const char* ec_err_name(ec_err code) {
  switch (code) {
    case EC_OK: return "OK";
    case EC_EADDRINUSE: return "EADDRINUSE";
    case EC_EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EC_EACCES: return "EACCES";
    case EC_EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EC_EAGAIN: return "EAGAIN";
    case EC_EBADF: return "EBADF";
    case EC_ECANCELED: return "ECANCELED";
    case EC_ECONNABORTED: return "ECONNABORTED";
    case EC_ECONNREFUSED: return "ECONNREFUSED";
    case EC_ECONNRESET: return "ECONNRESET";
    case EC_EHOSTUNREACH: return "EHOSTUNREACH";
    case EC_EINTR: return "EINTR";
    case EC_EINVAL: return "EINVAL";
    case EC_EMFILE: return "EMFILE";
    case EC_ENETDOWN: return "ENETDOWN";
    case EC_ENETUNREACH: return "ENETUNREACH";
    case EC_ENFILE: return "ENFILE";
    case EC_ENOBUFS: return "ENOBUFS";
    case EC_ENOMEM: return "ENOMEM";
    case EC_ENOTCONN: return "ENOTCONN";
    case EC_ENOTFOUND: return "ENOTFOUND";
    case EC_ENOTSOCK: return "ENOTSOCK";
    case EC_EPIPE: return "EPIPE";
    case EC_ESHUTDOWN: return "ESHUTDOWN";
    case EC_ETIMEDOUT: return "ETIMEDOUT";
    case EC_EAI_AGAIN: return "EAI_AGAIN";
    case EC_EUNKNOWN: return "UNKNOWN";
  }
  return "UNKNOWN";
}

const char* ec_err_message(ec_err code) {
  // libuv's wording, so the native engine's errors read like node:net's.
  switch (code) {
    case EC_OK: return "success";
    case EC_EADDRINUSE: return "address already in use";
    case EC_EADDRNOTAVAIL: return "address not available";
    case EC_EACCES: return "permission denied";
    case EC_EAFNOSUPPORT: return "address family not supported";
    case EC_EAGAIN: return "resource temporarily unavailable";
    case EC_EBADF: return "bad file descriptor";
    case EC_ECANCELED: return "operation canceled";
    case EC_ECONNABORTED: return "software caused connection abort";
    case EC_ECONNREFUSED: return "connection refused";
    case EC_ECONNRESET: return "connection reset by peer";
    case EC_EHOSTUNREACH: return "host is unreachable";
    case EC_EINTR: return "interrupted system call";
    case EC_EINVAL: return "invalid argument";
    case EC_EMFILE: return "too many open files";
    case EC_ENETDOWN: return "network is down";
    case EC_ENETUNREACH: return "network is unreachable";
    case EC_ENFILE: return "file table overflow";
    case EC_ENOBUFS: return "no buffer space available";
    case EC_ENOMEM: return "not enough memory";
    case EC_ENOTCONN: return "socket is not connected";
    case EC_ENOTFOUND: return "host not found";
    case EC_ENOTSOCK: return "socket operation on non-socket";
    case EC_EPIPE: return "broken pipe";
    case EC_ESHUTDOWN: return "cannot send after transport endpoint shutdown";
    case EC_ETIMEDOUT: return "connection timed out";
    case EC_EAI_AGAIN: return "temporary failure";
    case EC_EUNKNOWN: return nullptr;
  }
  return nullptr;
}
