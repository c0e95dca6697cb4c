// delay_load_hook.cc — lets the mingw-w64 build of the addon load into any
// host executable that exports Node-API, not only one named node.exe
// (Electron, a renamed or embedded node). Linked into the Windows addon by
// native/CMakeLists.txt under MINGW; MSVC builds get the same hook from
// node-gyp or cmake-js (win_delay_load_hook.cc) instead.
//
// How: the addon's Node-API imports are delay-loaded (the import library is
// made with `dlltool --output-delaylib ... --dllname node.exe`), so the
// Windows loader does not look for a node.exe when the addon is loaded. The
// first Node-API call goes through the CRT's __delayLoadHelper2 (libmingwex),
// which asks the notify hook below before it loads "node.exe" by name; the
// hook answers with the running executable, which is the host that is loading
// this addon, whatever its file name.
#ifdef _WIN32

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <delayimp.h>
#include <string.h>

namespace {

// Called by __delayLoadHelper2 at each step of a delay load. Before it loads
// the DLL named in the import library (node.exe), it returns the module of the
// process's executable; every other event and DLL is left to the helper
// (nullptr means "do the default").
FARPROC WINAPI LoadHostInsteadOfNodeExe(unsigned event, PDelayLoadInfo info) {
  if (event != dliNotePreLoadLibrary || info == nullptr || info->szDll == nullptr) return nullptr;
  if (_stricmp(info->szDll, "node.exe") != 0) return nullptr;
  return reinterpret_cast<FARPROC>(GetModuleHandleW(nullptr));
}

}  // namespace

// The hook the delay-load helper reads (declared extern "C" by delayimp.h).
// This definition takes the place of libmingwex's empty default.
PfnDliHook __pfnDliNotifyHook2 = LoadHostInsteadOfNodeExe;

#endif  // _WIN32
