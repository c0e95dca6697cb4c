// test_inbox.cc — core/inbox: the command inbox keeps order, wakes its
// loop, and closes its input on stop. See docs/architecture.md.
#include <string>
#include <vector>

#include "../core/poll/inbox.h"
#include "unit.h"

using namespace echocast;

namespace {

class CountingWaker : public Inbox::Waker {
 public:
  void wake() override { ++wakes; }
  int wakes = 0;
};

FrameBatch frames_of(Framing framing, const std::string& wire) {
  FrameBatch b;
  split_into(framing, reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size(), &b);
  return b;
}

}  // namespace

TEST(inbox_keeps_order_wakes_and_closes_on_stop) {
  Inbox inbox;
  CountingWaker waker;
  CHECK(!inbox.post_frames(frames_of(Framing::Line, "partial"), 0));  // No frame.
  inbox.attach(&waker);
  CHECK(inbox.post_frames(frames_of(Framing::Line, "a\nb\n"), 7));
  inbox.post_disconnect(3, Reason::ClusterUnavailable);
  inbox.post_forward(true);
  CHECK_EQ(waker.wakes, 3);
  CHECK(inbox.pending());
  std::vector<Command> got;
  inbox.take(&got);
  CHECK(!inbox.pending());
  CHECK_EQ(got.size(), 3u);
  CHECK(got[0].type == Command::Frames);
  CHECK_EQ(got[0].id, 7u);
  CHECK_EQ(got[0].frames.frames.size(), 2u);
  CHECK_EQ(std::string(got[0].frames.bytes.begin(), got[0].frames.bytes.end()),
           std::string("a\nb\n"));
  CHECK_EQ(got[0].frames.frames[1].payload_size, 1u);
  CHECK(got[1].type == Command::Disconnect);
  CHECK(got[1].reason == Reason::ClusterUnavailable);
  CHECK(got[2].type == Command::Forward && got[2].on);
  inbox.post_stop(250);
  CHECK(!inbox.post_frames(frames_of(Framing::Raw, "late"), 0));  // Input closed.
  inbox.take(&got);
  CHECK_EQ(got.size(), 1u);
  CHECK(got[0].type == Command::Stop);
  CHECK_EQ(got[0].deadline_ms, 250u);
  inbox.attach(nullptr);
  inbox.wake();  // Detached: nobody to wake, no crash.
  CHECK_EQ(waker.wakes, 4);
  std::uint64_t t0 = ec_now_ms();
  inbox.wait(20);  // Nothing queued: times out.
  CHECK(ec_now_ms() - t0 < 5000);
}
