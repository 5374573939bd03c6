// Layers are enforced here, not by hope (docs/architecture.md):
// - engine/** and shared/** never import 'electron'
// - shared/** imports no Node or DOM-only module
// - renderer/** never imports main/**
// - inside the engine: the inner layers (backends, catalog, config, core, jobs) never import a
//   service or the composition root; services never import the composition root (engine.ts) nor each
//   other (they get the context and functions from engine.ts); the admin server imports no service
// - no import circles anywhere in src/: scripts/import-cycles.mjs, run by `npm run lint`
//   (import-x's no-cycle below catches the runtime ones in the editor; the script counts
//   `import type` too)
// - main/desktop/** never imports main/engine/** (the engine runs in its own process)
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

const E = 'src/main/engine';
const INNER = [`${E}/backends/**`, `${E}/catalog/**`, `${E}/config/**`, `${E}/core/**`, `${E}/jobs/**`, `${E}/events.ts`, `${E}/log.ts`, `${E}/util.ts`, `${E}/buffers.ts`, `${E}/private-files.ts`];
const SERVICES = [`${E}/sync/**`, `${E}/http/**`, `${E}/media/**`, `${E}/restore/**`, `${E}/tunnel/**`, `${E}/notify.ts`];
const TOP = [`${E}/engine.ts`, `${E}/serve.ts`, `${E}/cli.ts`, `${E}/demo.ts`, `${E}/main.ts`, `${E}/cli-data-dir.ts`];
/** The service modules themselves (their folders also hold parts others may use: sync/hash, sync/ingest, http/router). */
const SYNC_SERVICE = [`${E}/sync/service.ts`, `${E}/sync/uploader.ts`, `${E}/sync/scanner.ts`, `${E}/sync/watcher.ts`, `${E}/sync/health.ts`];
const HTTP_SERVICES = [`${E}/http/admin.ts`, `${E}/http/admin-handlers.ts`, `${E}/http/download/**`, `${E}/http/files.ts`, `${E}/http/links.ts`, `${E}/http/sharing.ts`, `${E}/http/metrics.ts`, `${E}/http/slots.ts`, `${E}/http/ranges.ts`];
const NOT_SERVICES = 'A service gets the context (core/context.ts) and the functions it needs from engine.ts, the composition root; it never imports another service.';

const isGlob = (p) => /[*?()[\]{}!]/.test(p);

/** import-x's no-restricted-paths wants a zone's `from` all globs or all paths: split them. */
function zones(list) {
  return list.flatMap(({ target, from, message }) => {
    const globs = from.filter((f) => isGlob(f));
    const paths = from.filter((f) => !isGlob(f));
    return [globs, paths].filter((f) => f.length).map((f) => ({ target, from: f, message }));
  });
}

const engineZones = zones([
  { target: INNER, from: [...SERVICES, ...TOP], message: 'The inner layers (backends, catalog, config, core, jobs) never import a service or the composition root.' },
  { target: [`${E}/@(sync|media|tunnel)/**`, `${E}/restore/!(cli).ts`, `${E}/http/!(link-cli).ts`, `${E}/http/download/**`, `${E}/notify.ts`], from: TOP, message: 'Services never import the composition root: engine.ts hands them what they need.' },
  { target: `${E}/sync/**`, from: [`${E}/media/**`, `${E}/restore/**`, `${E}/tunnel/**`, `${E}/notify.ts`, `${E}/http/**`], message: NOT_SERVICES },
  { target: `${E}/media/**`, from: [...SYNC_SERVICE, `${E}/restore/**`, `${E}/tunnel/**`, `${E}/notify.ts`, ...HTTP_SERVICES], message: NOT_SERVICES },
  { target: `${E}/restore/**`, from: [...SYNC_SERVICE, `${E}/media/**`, `${E}/tunnel/**`, `${E}/notify.ts`, ...HTTP_SERVICES], message: NOT_SERVICES },
  { target: `${E}/tunnel/**`, from: [`${E}/sync/**`, `${E}/media/**`, `${E}/restore/**`, `${E}/notify.ts`, ...HTTP_SERVICES], message: NOT_SERVICES },
  { target: `${E}/notify.ts`, from: [`${E}/sync/**`, `${E}/media/**`, `${E}/restore/**`, `${E}/tunnel/**`, `${E}/http/**`], message: NOT_SERVICES },
  // sharing.ts builds the links, the download server and the tunnel together (a piece of wiring).
  { target: [`${E}/http/!(sharing).ts`, `${E}/http/download/**`], from: [...SYNC_SERVICE, `${E}/media/**`, `${E}/restore/**`, `${E}/tunnel/**`, `${E}/notify.ts`], message: NOT_SERVICES },
  { target: `${E}/http/sharing.ts`, from: [...SYNC_SERVICE, `${E}/media/**`, `${E}/restore/**`, `${E}/notify.ts`], message: NOT_SERVICES },
  { target: `${E}/http/admin.ts`, from: HTTP_SERVICES.filter((f) => !f.endsWith('/admin.ts') && !f.endsWith('/metrics.ts')), message: 'The admin server imports no service: services register their routes on it (ApiRegistry).' },
]);

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
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.mjs'] })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['src/main/engine/**/*.ts', 'src/main/engine/**/*.tsx'],
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: engineZones }],
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'The engine runs under plain Node: no electron imports (docs/architecture.md).' }], patterns: [{ group: ['**/desktop/**'], message: 'The engine never imports the desktop shell.' }] }],
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
          { group: nodeBuiltins, message: 'shared/ imports no Node module (docs/architecture.md).' },
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
        patterns: [{ group: ['**/main/**'], message: 'renderer/ never imports main/ (docs/architecture.md).' }, { group: nodeBuiltins, message: 'The renderer runs in a browser.' }],
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
