// test_fuzz_regressions.cc — replays every file in native/test/fuzz/
// regressions/ (inputs that once broke the framer, kept after the fix) and
// corpus/ (the framer fuzzer's seeds), and corpus-websocket/ (the WebSocket
// fuzzer's seeds), through the same checks as the libFuzzer targets, with
// the system compiler, so a regression fails the plain unit tests too. The folder is fixed at build
// time (ECHOCAST_FUZZ_DIR); the environment variable of the same name overrides it.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "framer_check.h"
#include "websocket_check.h"
#include "../unit.h"

namespace {

std::filesystem::path fuzz_dir() {
  const char* env = std::getenv("ECHOCAST_FUZZ_DIR");
  if (env != nullptr && *env != '\0') return std::filesystem::path(env);
#ifdef ECHOCAST_FUZZ_DIR
  return std::filesystem::path(ECHOCAST_FUZZ_DIR);
#else
  return std::filesystem::path("native/test/fuzz");
#endif
}

// The files of one subfolder, sorted; fails the test if the folder is gone
// (a missing folder must not look like a pass).
std::vector<std::filesystem::path> case_files(const char* sub, bool* found) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  std::filesystem::path dir = fuzz_dir() / sub;
  *found = std::filesystem::is_directory(dir, ec);
  if (!*found) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fuzz target's checks: "" or what went wrong.
using Check = std::string (*)(const std::uint8_t* data, std::size_t size);

// Runs every file of one subfolder through `check`; returns the first
// failure, else "".
std::string replay(const char* sub, std::size_t* count, Check check = &framer_check::check_case) {
  bool found = false;
  std::vector<std::filesystem::path> files = case_files(sub, &found);
  if (!found) return std::string("no folder ") + (fuzz_dir() / sub).string();
  for (const auto& f : files) {
    std::string bytes = read_all(f);
    std::string v = check(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    if (!v.empty()) return f.filename().string() + ": " + v;
  }
  *count = files.size();
  return std::string();
}

}  // namespace

TEST(fuzz_regressions_replay) {
  std::size_t n = 0;
  CHECK_EQ(replay("regressions", &n), std::string());
  CHECK(n > 0);
}

TEST(fuzz_corpus_replay) {
  std::size_t n = 0;
  CHECK_EQ(replay("corpus", &n), std::string());
  CHECK(n > 0);
}

TEST(ws_fuzz_corpus_replays) {
  std::size_t n = 0;
  CHECK_EQ(replay("corpus-websocket", &n, &websocket_check::check_case), std::string());
  CHECK(n >= 10);
}

// The regression of line-fed-after-error, spelled out: once feed() has
// returned false, the framer delivers nothing more, in every framing.
TEST(framer_error_sticks) {
  using echocast::Framer;
  using echocast::Framing;
  framer_check::Collector c;
  const std::string overlong = "abcdefgh";
  const std::string more = "\nok\n";
  Framer line(Framing::Line, 4);
  CHECK(!line.feed(reinterpret_cast<const std::uint8_t*>(overlong.data()), overlong.size(), &c));
  CHECK_EQ(line.buffered(), 0u);
  CHECK(!line.feed(reinterpret_cast<const std::uint8_t*>(more.data()), more.size(), &c));
  Framer raw(Framing::Raw, 4);
  CHECK(!raw.feed(reinterpret_cast<const std::uint8_t*>(overlong.data()), overlong.size(), &c));
  CHECK(!raw.feed(reinterpret_cast<const std::uint8_t*>(more.data()), 2, &c));
  const std::uint8_t big[4] = {0, 0, 0, 5};
  const std::uint8_t small[6] = {0, 0, 0, 1, 'x', 0};
  Framer length(Framing::Length, 4);
  CHECK(!length.feed(big, sizeof big, &c));
  CHECK(!length.feed(small, sizeof small, &c));
  CHECK_EQ(c.frames.size(), 0u);
}
