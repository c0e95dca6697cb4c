// host.cc (POSIX) — what the host process exports (platform.h,
// ec_process_exports): the symbols of the executable and of the libraries
// it was loaded with, the scope the addon's undefined symbols resolve in.
#include <dlfcn.h>

#include "posix.h"

bool ec_process_exports(const char* name) { return dlsym(RTLD_DEFAULT, name) != nullptr; }
