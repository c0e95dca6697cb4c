{
  "targets": [
    {
      "target_name": "echocast",
      "sources": [
        "native/addon.cc",
        "native/server_wrap.cc",
        "native/server_options.cc",
        "native/server_events.cc",
        "native/loadgen_wrap.cc",
        "native/tsfn_pump.cc",
        "native/bench/histogram.cc",
        "native/bench/loadgen.cc",
        "native/bench/loadgen_net.cc",
        "native/bench/loadgen_pace.cc",
        "native/bench/loadgen_ws.cc",
        "native/core/framer.cc",
        "native/core/access.cc",
        "native/core/connection.cc",
        "native/core/handshake_list.cc",
        "native/core/ws_session.cc",
        "native/core/frame_log.cc",
        "native/core/fanout.cc",
        "native/core/threads/hub.cc",
        "native/core/poll/inbox.cc",
        "native/core/listening.cc",
        "native/core/threads/threads_engine.cc",
        "native/core/threads/threads_client.cc",
        "native/core/threads/threads_door.cc",
        "native/core/threads/threads_tls.cc",
        "native/core/poll/poll_engine.cc",
        "native/core/poll/poll_loop.cc",
        "native/core/poll/poll_client.cc",
        "native/core/poll/poll_door.cc",
        "native/core/poll/poll_tls.cc",
        "native/core/event_queue.cc",
        "native/core/ws/primitives.cc",
        "native/core/ws/http.cc",
        "native/core/ws/handshake.cc",
        "native/core/ws/frame.cc",
        "native/core/ws/decoder.cc",
        "native/core/ws/message_to_frames.cc",
        "native/core/tls/tls_context.cc",
        "native/core/tls/tls_session.cc",
        "native/platform/common.cc"
      ],
      # node-gyp puts node's own headers (include/node) on the path, and with them
      # OpenSSL's (include/node/openssl): native/core/tls/ builds against those and
      # calls the OpenSSL the host node exports (docs/architecture.md, "TLS: which
      # OpenSSL"); MSVC builds reach node.exe's exports through node.lib.
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": [ "-fno-exceptions", "-fno-rtti" ],
      "cflags_cc!": [ "-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=c++14" ],
      "cflags_cc": [ "-std=c++17", "-Wall", "-Wextra", "-fexceptions" ],
      "conditions": [
        [ "OS=='win'", {
          "sources": [
            "native/platform/win32/errors.cc",
            "native/platform/win32/socket.cc",
            "native/platform/win32/listener.cc",
            "native/platform/win32/poller_wsapoll.cc",
            "native/platform/poller_dense.cc",
            "native/platform/win32/thread.cc",
            "native/platform/win32/clock.cc",
            "native/platform/win32/host.cc"
          ],
          "libraries": [ "-lws2_32" ],
          "defines!": [ "_HAS_EXCEPTIONS=0" ],
          "defines": [ "WIN32_LEAN_AND_MEAN", "NOMINMAX", "_WIN32_WINNT=0x0601", "_HAS_EXCEPTIONS=1" ],
          "msvs_settings": {
            "VCCLCompilerTool": {
              "ExceptionHandling": 1,
              "AdditionalOptions": [ "/std:c++17", "/W3", "/utf-8" ]
            }
          }
        }, {
          "sources": [
            "native/platform/posix/errors.cc",
            "native/platform/posix/socket.cc",
            "native/platform/posix/listener.cc",
            "native/platform/posix/thread.cc",
            "native/platform/posix/clock.cc",
            "native/platform/posix/host.cc"
          ]
        } ],
        [ "OS=='linux' or OS=='android'", {
          "sources": [ "native/platform/posix/poller_epoll.cc" ]
        } ],
        [ "OS!='win' and OS!='linux' and OS!='android'", {
          "sources": [
            "native/platform/posix/poller_poll.cc",
            "native/platform/poller_dense.cc"
          ]
        } ],
        [ "OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "WARNING_CFLAGS": [ "-Wall", "-Wextra" ]
          }
        } ]
      ]
    }
  ]
}
