// ESLint for the TypeScript and JavaScript of the package, its tests and scripts:
// the recommended rules of ESLint and typescript-eslint (not the type-checked set).
// Formatting is prettier's (.prettierrc.json), not ESLint's. `npm run lint` runs it.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'dist-test/', 'build/', 'build-*/', 'prebuilds/', '.cache/', 'bench-results/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // As tsc's noUnusedLocals/noUnusedParameters: a leading _ marks a name unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  {
    // The scripts and the addon's smoke test are CommonJS run by node as they are.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: globals.mocha },
  },
);
