// Layers are enforced here, not by hope (DESIGN.md):
// - engine/** and shared/** never import 'electron'
// - shared/** imports no Node or DOM-only module
// - renderer/** never imports main/**
// - main/desktop/** never imports main/engine/** (the engine runs in its own process)
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'crypto', 'http', 'https', 'net', 'stream', 'child_process', 'url', 'util', 'events', 'zlib', 'worker_threads'];

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'release/**', 'node_modules/**', '.tmp/**', 'coverage/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/main/engine/**/*.ts', 'src/main/engine/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'The engine runs under plain Node: no electron imports (DESIGN.md).' }], patterns: [{ group: ['**/desktop/**'], message: 'The engine never imports the desktop shell.' }] }],
    },
  },
  {
    files: ['src/main/desktop/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/engine/**', '**/engine'], message: 'The engine runs in its own process (utilityProcess): the shell talks to it over HTTP and its parent port, it never imports it.' }] }],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'shared/ is pure TypeScript.' }],
        patterns: [
          { group: nodeBuiltins, message: 'shared/ imports no Node module (DESIGN.md).' },
          { group: ['**/main/**', '**/renderer/**', '**/preload/**'], message: 'shared/ depends on nothing else in src/.' },
        ],
      }],
    },
  },
  {
    files: ['src/renderer/**/*.ts', 'src/renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'The renderer talks to the engine over HTTP and to the shell through preload.' }],
        patterns: [{ group: ['**/main/**'], message: 'renderer/ never imports main/ (DESIGN.md).' }, { group: nodeBuiltins, message: 'The renderer runs in a browser.' }],
      }],
    },
  },
  {
    files: ['src/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/main/**', '**/renderer/**'], message: 'preload imports only shared/.' }] }],
    },
  },
);
