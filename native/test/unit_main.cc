// unit_main.cc — runs every registered test (or, given arguments, those
// whose names contain one of them) and prints the summary line.
#include <cstring>

#include "unit.h"

namespace unit {

static Test* g_tests = nullptr;
static Test* g_tail = nullptr;
static bool g_failed = false;

Registrar::Registrar(const char* name, void (*fn)()) {
  Test* t = new Test{name, fn, nullptr};
  if (g_tail) g_tail->next = t;
  else g_tests = t;
  g_tail = t;
}

void fail(const char* file, int line, const std::string& what) {
  g_failed = true;
  std::printf("  FAIL %s:%d: %s\n", file, line, what.c_str());
}

bool failed() { return g_failed; }

}  // namespace unit

static bool selected(const char* name, int argc, char** argv) {
  if (argc < 2) return true;
  for (int i = 1; i < argc; ++i)
    if (std::strstr(name, argv[i]) != nullptr) return true;
  return false;
}

int main(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (unit::Test* t = unit::g_tests; t != nullptr; t = t->next) {
    if (!selected(t->name, argc, argv)) continue;
    unit::g_failed = false;
    t->fn();
    if (unit::g_failed) {
      ++failed;
      std::printf("not ok %s\n", t->name);
    } else {
      ++passed;
      std::printf("ok %s\n", t->name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
