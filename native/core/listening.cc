// listening.cc — see listening.h.
#include "listening.h"

namespace echocast {

namespace {

// Acquires the network, then listens with `listen` (which returns its
// error); undoes the acquire on a failure, naming the call that failed.
template <typename Listen>
bool listen_with_network(ListenResult* result, Listen listen) {
  result->err = ec_net_acquire();
  if (!result->err.ok()) {
    result->syscall = "WSAStartup";
    return false;
  }
  result->err = listen();
  if (!result->err.ok()) {
    ec_net_release();
    return false;
  }
  return true;
}

}  // namespace

bool open_listener(const EngineOptions& options, ec_listener** out, ListenResult* result) {
  return listen_with_network(result, [&] {
    return ec_listen(options.host.c_str(), options.port, kListenBacklog, out, &result->bound,
                     &result->syscall);
  });
}

void close_listener(ec_listener** listener) {
  if (*listener != nullptr) ec_listener_close(*listener);
  *listener = nullptr;
  ec_net_release();
}

bool open_listener(const EngineOptions& options, ec_socket_t* out, ListenResult* result) {
  return listen_with_network(result, [&] {
    return ec_listen_nonblocking(options.host.c_str(), options.port, kListenBacklog, out,
                                 &result->bound, &result->syscall);
  });
}

void close_listener(ec_socket_t* listener) {
  if (*listener != EC_INVALID_SOCKET) ec_socket_close(*listener);
  *listener = EC_INVALID_SOCKET;
  ec_net_release();
}

AcceptStep AcceptErrors::on_error(const ec_error& err, EventSink* sink) {
  ec_err code = err.code;
  if (code == EC_ECONNABORTED || code == EC_ECONNRESET || code == EC_EINTR || code == EC_EAGAIN ||
      code == EC_EPIPE || code == EC_ENETDOWN || code == EC_EHOSTUNREACH ||
      code == EC_ENETUNREACH || code == EC_ETIMEDOUT)
    return AcceptStep::Retry;
  if (code == EC_EMFILE || code == EC_ENFILE || code == EC_ENOBUFS || code == EC_ENOMEM) {
    if (!reported_shortage_) sink->on_error(err, "accept");
    reported_shortage_ = true;
    return AcceptStep::Pause;
  }
  sink->on_error(err, "accept");
  return AcceptStep::Stop;
}

}  // namespace echocast
