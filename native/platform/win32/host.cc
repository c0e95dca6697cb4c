// host.cc (Windows) — what the host process exports (platform.h,
// ec_process_exports): the executable's own export table, whatever the
// executable is called; platform/win32/delay_load_hook.cc binds the addon's
// node.exe imports to the same module.
#include "win32.h"

bool ec_process_exports(const char* name) {
  HMODULE host = GetModuleHandleW(nullptr);
  return host != nullptr && GetProcAddress(host, name) != nullptr;
}
