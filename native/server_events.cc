// server_events.cc — ServerWrap's side of the events to JS, on the JS
// thread: a batch taken from the EventQueue becomes one array of event
// objects (message payloads in one Buffer per batch) and one call of the
// onEvents callback (see server_wrap.h). docs/architecture.md says which
// file owns which rule.
#include <cstring>
#include <string>
#include <vector>

#include "server_wrap.h"

namespace echocast {

namespace {

// A run of message events (QueuedEvent::Messages) for JS: its payloads are
// copied into the batch's one Buffer `data` at *offset, and it becomes one
// object { type: 'messages', data, start, index }, index holding
// [clientId, end] per message (end: where its payload ends in data; it
// starts where the previous one ends, the first at start). JS hands out
// views of `data`, a Buffer made for this batch and never written again
// (docs/contract.md S12): one copy and one crossing per batch, no object per
// message on this side.
Napi::Object MessagesObject(Napi::Env env, QueuedEvent& e, const Napi::Buffer<std::uint8_t>& data,
                            std::size_t* offset) {
  const std::size_t start = *offset;
  if (!e.bytes.empty()) std::memcpy(data.Data() + start, e.bytes.data(), e.bytes.size());
  *offset += e.bytes.size();
  Napi::Float64Array index = Napi::Float64Array::New(env, 2 * e.messages.size());
  double* p = index.Data();
  for (const QueuedMessage& m : e.messages) {
    *p++ = static_cast<double>(m.id);
    *p++ = static_cast<double>(start + m.end);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", "messages");
  o.Set("data", data);
  o.Set("start", static_cast<double>(start));
  o.Set("index", index);
  std::vector<std::uint8_t>().swap(e.bytes);
  std::vector<QueuedMessage>().swap(e.messages);
  return o;
}

}  // namespace

Napi::Object ServerWrap::EventObject(Napi::Env env, QueuedEvent& e) {
  Napi::Object o = Napi::Object::New(env);
  switch (e.kind) {
    case QueuedEvent::Connection:
      o.Set("type", "connection");
      o.Set("id", static_cast<double>(e.id));
      o.Set("remoteAddress", e.text);
      o.Set("remotePort", e.port);
      break;
    case QueuedEvent::Messages:
      break;  // Never converted here: OnPump makes them (MessagesObject).
    case QueuedEvent::Frames:
      o.Set("type", "frames");
      o.Set("clientId", static_cast<double>(e.id));
      o.Set("data", Napi::Buffer<std::uint8_t>::Copy(env, e.bytes.data(), e.bytes.size()));
      o.Set("frames", static_cast<double>(e.frames));
      std::vector<std::uint8_t>().swap(e.bytes);
      break;
    case QueuedEvent::Disconnect:
      o.Set("type", "disconnect");
      o.Set("id", static_cast<double>(e.id));
      o.Set("reason", e.word);
      break;
    case QueuedEvent::Error:
      o.Set("type", "error");
      o.Set("error", MakeError(env, e.text, e.word, e.syscall));
      break;
    case QueuedEvent::Refusal:
      o.Set("type", "refusal");
      o.Set("cause", e.word);
      o.Set("transport", e.syscall);
      o.Set("remoteAddress", e.text);
      o.Set("remotePort", e.port);
      if (!e.strings.empty()) o.Set("detail", e.strings[0]);
      break;
    case QueuedEvent::Authorize:
      o.Set("type", "authorize");
      o.Set("ticket", static_cast<double>(e.id));
      o.Set("transport", e.syscall);
      o.Set("remoteAddress", e.text);
      o.Set("remotePort", e.port);
      if (std::strcmp(e.syscall, "ws") == 0) {
        o.Set("path", e.strings.size() > 0 ? e.strings[0] : std::string("/"));
        o.Set("query", e.strings.size() > 1 ? e.strings[1] : std::string());
        Napi::Array headers = Napi::Array::New(env);
        for (std::size_t i = 2; i < e.strings.size(); ++i)
          headers.Set(static_cast<std::uint32_t>(i - 2), e.strings[i]);
        o.Set("headers", headers);
      } else {
        o.Set("firstFrame", Napi::Buffer<std::uint8_t>::Copy(env, e.bytes.data(), e.bytes.size()));
      }
      break;
    case QueuedEvent::Stopped:
      break;  // Never converted: OnPump handles the marker.
  }
  return o;
}

void ServerWrap::OnPump(Napi::Env env, Napi::Function fn) {
  EventBatch batch = queue_.take();
  if (batch.events.empty()) return;
  Napi::HandleScope scope(env);
  Napi::Array events = Napi::Array::New(env);
  std::uint32_t n = 0;
  bool stopped = false;
  // Every message payload of the batch goes into one Buffer.
  std::size_t message_bytes = 0;
  for (const QueuedEvent& e : batch.events)
    if (e.kind == QueuedEvent::Messages) message_bytes += e.bytes.size();
  Napi::Buffer<std::uint8_t> message_data;
  std::size_t message_offset = 0;
  for (QueuedEvent& e : batch.events) {
    if (e.kind == QueuedEvent::Stopped) {
      stopped = true;
      continue;
    }
    if (e.kind == QueuedEvent::Refusal) pending_refusals_.fetch_sub(1, std::memory_order_relaxed);
    if (e.kind == QueuedEvent::Messages) {
      if (message_data.IsEmpty())
        message_data = Napi::Buffer<std::uint8_t>::New(env, message_bytes);
      events.Set(n++, MessagesObject(env, e, message_data, &message_offset));
      continue;
    }
    events.Set(n++, EventObject(env, e));
  }
  if (batch.bounded_bytes > 0) {
    queue_.release(batch.bounded_bytes);
    if (engine_) engine_->events_drained();
  }
  // Deliver the batch; a throwing listener must not stop the bookkeeping of
  // a completed stop, so its exception is re-raised afterwards.
  Napi::Error pending;
  bool threw = false;
  if (n > 0) {
    try {
      fn.Call(env.Undefined(), {events});
    } catch (const Napi::Error& err) {
      pending = err;
      threw = true;
    }
  }
  if (stopped) Stopped(env, &pending, &threw);
  if (threw) Rethrow(env, pending.Value());
}

}  // namespace echocast
