/**
 * The addon has two build descriptions: binding.gyp (node-gyp: what `npm
 * install` compiles) and native/CMakeLists.txt (cmake-js: the unit tests, the
 * sanitizer builds and the mingw-w64 Windows prebuild). A source file added to
 * one and not the other builds and tests something different from what users
 * get, so this test reads both source lists, per OS, and requires them equal.
 * It reads the files rather than naming sources, so adding or renaming a
 * source only needs both lists edited.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

// ---------------------------------------------------------------------------
// binding.gyp: a Python literal (single or double quotes, # comments, trailing commas).
// ---------------------------------------------------------------------------

/** Parses a gyp file: its strings are re-quoted and comments and trailing commas dropped, then JSON.parse. */
function parseGyp(text: string): unknown {
  let json = '';
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      let value = '';
      i++;
      while (text[i] !== c) {
        if (i >= text.length) throw new Error('binding.gyp: unterminated string');
        if (text[i] === '\\') i++;
        value += text[i++];
      }
      i++;
      json += JSON.stringify(value);
    } else {
      json += c;
      i++;
    }
  }
  return JSON.parse(json.replace(/,(\s*[\]}])/g, '$1'));
}

type GypDict = { sources?: string[]; 'sources!'?: string[]; conditions?: GypCondition[]; [key: string]: unknown };
type GypCondition = [string, GypDict, GypDict?];

/** Evaluates a gyp condition on OS alone: OS=='x', OS!='x', OS in "x y", joined with `or` / `and`. */
function gypConditionHolds(condition: string, os: string): boolean {
  return condition.split(/\s+or\s+/).some((any) =>
    any.split(/\s+and\s+/).every((term) => {
      const t = term.trim();
      let m = /^OS\s*(==|!=)\s*["'](\w+)["']$/.exec(t);
      if (m) return (m[1] === '==') === (os === m[2]);
      m = /^OS\s+(not\s+in|in)\s+["']([\w\s]+)["']$/.exec(t);
      if (m) return (m[1] === 'in') === m[2].split(/\s+/).includes(os);
      throw new Error(`binding.gyp: condition "${condition}" is not one this test can evaluate (it knows OS==, OS!=, OS in)`);
    }),
  );
}

/** The sources a gyp dict contributes on `os`, conditions included. */
function gypSources(dict: GypDict, os: string): string[] {
  let sources = [...(dict.sources ?? [])];
  for (const [condition, then, otherwise] of dict.conditions ?? []) {
    const branch = gypConditionHolds(condition, os) ? then : otherwise;
    if (branch) sources.push(...gypSources(branch, os));
  }
  const removed = new Set(dict['sources!'] ?? []);
  sources = sources.filter((s) => !removed.has(s));
  return sources;
}

// ---------------------------------------------------------------------------
// native/CMakeLists.txt: commands, if/elseif/else/endif, set/list(APPEND), targets.
// ---------------------------------------------------------------------------

type Command = { name: string; args: string[] };

/** Splits a CMake file into commands with their arguments (quotes and nested parentheses respected). */
function parseCMake(text: string): Command[] {
  const commands: Command[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    const m = /^[A-Za-z_]\w*/.exec(text.slice(i, i + 64));
    if (!m) {
      i++;
      continue;
    }
    i += m[0].length;
    while (i < n && /[ \t]/.test(text[i])) i++;
    if (text[i] !== '(') continue;
    i++;
    const args: string[] = [];
    let depth = 0;
    let arg = '';
    let quoted = false;
    const flush = () => {
      if (arg !== '' || quoted) args.push(arg);
      arg = '';
      quoted = false;
    };
    for (;;) {
      if (i >= n) throw new Error(`CMakeLists.txt: unterminated ${m[0]}(`);
      const ch = text[i];
      if (ch === '"') {
        quoted = true;
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') arg += text[i++];
          arg += text[i++];
        }
        i++;
      } else if (ch === '#') {
        while (i < n && text[i] !== '\n') i++;
      } else if (ch === '(') {
        depth++;
        arg += ch;
        i++;
      } else if (ch === ')') {
        i++;
        if (depth === 0) break;
        depth--;
        arg += ch;
      } else if (/\s/.test(ch)) {
        flush();
        i++;
      } else {
        arg += ch;
        i++;
      }
    }
    flush();
    commands.push({ name: m[0].toLowerCase(), args });
  }
  return commands;
}

/** The platform a CMake configure sees: WIN32 with MSVC or MINGW, APPLE, or plain UNIX. */
type CMakePlatform = { WIN32: boolean; MSVC: boolean; MINGW: boolean; APPLE: boolean; UNIX: boolean; CMAKE_SYSTEM_NAME: string };

/**
 * Runs the commands that shape source lists and returns each target's
 * sources (paths relative to native/), with the sources of the targets it
 * links merged in. Unknown variables are false and expand to nothing
 * (CMAKE_JS_SRC is cmake-js's own, e.g. its MSVC delay-load hook).
 */
function cmakeTargets(commands: Command[], platform: CMakePlatform): Map<string, string[]> {
  const vars = new Map<string, string[]>();
  const own = new Map<string, string[]>();
  const links = new Map<string, string[]>();
  const expand = (args: string[]) => args.flatMap((a) => a.replace(/\$\{(\w+)\}/g, (_, v: string) => (vars.get(v) ?? []).join(';')).split(';')).filter(Boolean);
  const truthy = (word: string): boolean => {
    if (word in platform) return Boolean(platform[word as keyof CMakePlatform]);
    const value = vars.get(word)?.join(';') ?? '';
    return value !== '' && !/^(0|OFF|NO|FALSE|N|IGNORE|NOTFOUND|.*-NOTFOUND)$/i.test(value);
  };
  const holds = (args: string[]): boolean => {
    // OR of ANDs of [NOT] terms; EXISTS <path> is taken as true.
    return args
      .join(' ')
      .split(/\s+OR\s+/)
      .some((any) =>
        any.split(/\s+AND\s+/).every((term) => {
          const words = term.trim().split(/\s+/);
          let negate = false;
          while (words[0] === 'NOT') {
            negate = !negate;
            words.shift();
          }
          // <var> MATCHES "<regex>" and <var> STREQUAL "<text>" on the platform's variables.
          const known = (v: string): string => (v === 'CMAKE_SYSTEM_NAME' ? platform.CMAKE_SYSTEM_NAME : (vars.get(v) ?? []).join(';'));
          const value =
            words[0] === 'EXISTS'
              ? true
              : words[1] === 'MATCHES'
                ? new RegExp(words.slice(2).join(' ')).test(known(words[0]))
                : words[1] === 'STREQUAL'
                  ? known(words[0]) === words.slice(2).join(' ')
                  : truthy(words[0]);
          return negate ? !value : value;
        }),
      );
  };
  // A stack of [this branch runs, a branch already ran].
  const stack: Array<[boolean, boolean]> = [];
  const active = () => stack.every(([on]) => on);
  for (const { name, args } of commands) {
    if (name === 'if') {
      const on = active() && holds(args);
      stack.push([on, on]);
      continue;
    }
    if (name === 'elseif' || name === 'else') {
      const top = stack.pop();
      if (!top) throw new Error(`CMakeLists.txt: ${name}() without if()`);
      const outer = active();
      const on = outer && !top[1] && (name === 'else' || holds(args));
      stack.push([on, top[1] || on]);
      continue;
    }
    if (name === 'endif') {
      stack.pop();
      continue;
    }
    if (!active()) continue;
    if (name === 'set' && args.length > 0) {
      const values = args.slice(1);
      const cache = values.indexOf('CACHE');
      vars.set(args[0], expand(cache >= 0 ? values.slice(0, cache) : values));
    } else if (name === 'list' && args[0] === 'APPEND') {
      vars.set(args[1], [...(vars.get(args[1]) ?? []), ...expand(args.slice(2))]);
    } else if (name === 'add_library' || name === 'add_executable') {
      const items = expand(args.slice(1)).filter((a) => !/^(STATIC|SHARED|MODULE|OBJECT|INTERFACE|EXCLUDE_FROM_ALL|WIN32)$/.test(a));
      own.set(args[0], items);
    } else if (name === 'target_sources') {
      const items = expand(args.slice(1)).filter((a) => !/^(PRIVATE|PUBLIC|INTERFACE)$/.test(a));
      own.set(args[0], [...(own.get(args[0]) ?? []), ...items]);
    } else if (name === 'target_link_libraries') {
      links.set(args[0], [...(links.get(args[0]) ?? []), ...expand(args.slice(1))]);
    }
  }
  const all = (target: string, seen = new Set<string>()): string[] => {
    if (seen.has(target)) return [];
    seen.add(target);
    const linked = (links.get(target) ?? []).filter((l) => own.has(l));
    return [...(own.get(target) ?? []), ...linked.flatMap((l) => all(l, seen))];
  };
  return new Map([...own.keys()].map((t) => [t, all(t)]));
}

/** A sorted list of repo-relative paths, for comparing. */
function normal(list: string[], base = ''): string[] {
  return [...new Set(list.map((s) => path.posix.normalize(path.posix.join(base, s))))].sort();
}

describe('build descriptions: binding.gyp and native/CMakeLists.txt', () => {
  const gyp = parseGyp(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')) as { targets: Array<GypDict & { target_name: string }> };
  const addon = gyp.targets.find((t) => t.target_name === 'echocast');
  const commands = parseCMake(fs.readFileSync(path.join(root, 'native', 'CMakeLists.txt'), 'utf8'));
  const platforms: Array<[string, string, CMakePlatform]> = [
    ['linux', 'UNIX, Linux', { WIN32: false, MSVC: false, MINGW: false, APPLE: false, UNIX: true, CMAKE_SYSTEM_NAME: 'Linux' }],
    ['mac', 'APPLE', { WIN32: false, MSVC: false, MINGW: false, APPLE: true, UNIX: true, CMAKE_SYSTEM_NAME: 'Darwin' }],
    ['win', 'WIN32 with MSVC', { WIN32: true, MSVC: true, MINGW: false, APPLE: false, UNIX: false, CMAKE_SYSTEM_NAME: 'Windows' }],
  ];

  it('binding.gyp has the echocast target', () => {
    assert.ok(addon, 'no target_name "echocast" in binding.gyp');
  });

  for (const [os, label, platform] of platforms) {
    it(`compile the same addon sources on ${os} (gyp OS=='${os}', CMake ${label})`, () => {
      assert.ok(addon);
      const fromGyp = normal(gypSources(addon, os));
      const fromCMake = normal(cmakeTargets(commands, platform).get('echocast') ?? [], 'native');
      assert.ok(fromGyp.length > 0 && fromCMake.length > 0, 'a source list came out empty: the parser no longer understands a file');
      const missing = (a: string[], b: string[]) => a.filter((s) => !b.includes(s));
      assert.deepEqual({ onlyInGyp: missing(fromGyp, fromCMake), onlyInCMake: missing(fromCMake, fromGyp) }, { onlyInGyp: [], onlyInCMake: [] });
      for (const file of fromGyp) assert.ok(fs.existsSync(path.join(root, file)), `${file} is listed but does not exist`);
    });
  }

  it('the mingw-w64 build compiles what MSVC does, plus only Windows platform files (its delay-load hook)', () => {
    const msvc = normal(cmakeTargets(commands, platforms[2][2]).get('echocast') ?? [], 'native');
    const mingw = normal(cmakeTargets(commands, { ...platforms[2][2], MSVC: false, MINGW: true }).get('echocast') ?? [], 'native');
    assert.deepEqual(
      msvc.filter((s) => !mingw.includes(s)),
      [],
      'sources the MSVC build has and the mingw build lacks',
    );
    const extra = mingw.filter((s) => !msvc.includes(s));
    assert.deepEqual(
      extra.filter((s) => !s.startsWith('native/platform/')),
      [],
      'mingw-only sources outside native/platform/',
    );
  });
});
