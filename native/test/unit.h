// unit.h — a tiny self-contained test runner (no external framework).
// TEST(name) { ... } registers a test; CHECK / CHECK_EQ record a failure and
// end the test. unit_main.cc runs them all and prints "N passed, M failed".
#ifndef ECHOCAST_TEST_UNIT_H
#define ECHOCAST_TEST_UNIT_H

#include <cstdio>
#include <sstream>
#include <string>

namespace unit {

// A registered test.
struct Test {
  const char* name;
  void (*fn)();
  Test* next;
};

// Adds a test to the global list (called by TEST at static-init time).
struct Registrar {
  Registrar(const char* name, void (*fn)());
};

// Records the current test's failure (file, line, what).
void fail(const char* file, int line, const std::string& what);

// True once the current test has failed.
bool failed();

}  // namespace unit

#define TEST(name)                                       \
  static void name();                                    \
  static unit::Registrar name##_registrar(#name, &name); \
  static void name()

#define CHECK(cond)                          \
  do {                                       \
    if (!(cond)) {                           \
      unit::fail(__FILE__, __LINE__, #cond); \
      return;                                \
    }                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                  \
  do {                                                                  \
    auto va_ = (a);                                                     \
    auto vb_ = (b);                                                     \
    if (!(va_ == vb_)) {                                                \
      std::ostringstream os_;                                           \
      os_ << #a << " == " << #b << " (" << va_ << " vs " << vb_ << ")"; \
      unit::fail(__FILE__, __LINE__, os_.str());                        \
      return;                                                           \
    }                                                                   \
  } while (0)

#endif  // ECHOCAST_TEST_UNIT_H
