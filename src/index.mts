// The ES module entry: a thin wrapper over the CommonJS build, so that `import`
// and `require` share one module instance (one EchocastError class, one addon).
//
// Every name is re-exported, never redeclared: a `const EchoServer = cjs.EchoServer`
// would carry the value alone, and `export type *` does not add a type to a name
// the module already declares, so `const s: EchoServer` would not compile. Node
// finds these names in the CommonJS build with its export lexer; a name it missed
// would fail the import at link time (test/package/types.test.ts imports each one).
export {
  createServer,
  EchoServer,
  availableEngines,
  resolveEngine,
  connect,
  EchoClient,
  EchocastError,
  ErrorCodes,
  DEFAULTS,
  DISCONNECT_REASONS,
  REFUSAL_CAUSES,
} from './index.js';
export type * from './index.js';
import cjs from './index.js';
export default cjs;
