// electron-vite: three builds from one config.
// - main:     src/main/desktop/index.ts -> out/main/index.js (ESM; dependencies stay external). The
//             engine is not in it: the shell runs out/engine/triplicate.mjs (vite.engine.config.ts,
//             built by `npm run build`) in a utilityProcess, which loads better-sqlite3 and sharp
//             from node_modules / app.asar.unpacked.
// - preload:  src/preload/index.ts -> out/preload/index.cjs (CommonJS: a sandboxed preload cannot be
//             an ES module; everything it imports is bundled in, only 'electron' stays external)
// - renderer: src/renderer (index.html, src/main.tsx) -> out/renderer with a relative base, so the
//             same build loads in the Electron window and when `triplicate serve` serves it at `/`.
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';

const root = import.meta.dirname;

/** The engine's admin port in `npm run dev` (the dev server proxies /api to it). */
const devEnginePort = Number(process.env.TRIPLICATE_DEV_ADMIN_PORT ?? 8765);

/**
 * A Content-Security-Policy for the built page only (kept equal in vite.web.config.ts) (the dev server's React refresh needs an inline
 * script). The page is served by the engine or the dev server, so the API is always 'self'.
 */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'";

function cspPlugin(): Plugin {
  return {
    name: 'triplicate-csp',
    apply: 'build',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP }, injectTo: 'head-prepend' }],
  };
}

export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      externalizeDeps: true,
      lib: {
        entry: resolve(root, 'src/main/desktop/index.ts'),
        formats: ['es'],
        fileName: () => 'index.js',
      },
    },
  },
  preload: {
    build: {
      outDir: resolve(root, 'out/preload'),
      // Sandboxed preloads can require nothing but 'electron': bundle everything else.
      externalizeDeps: false,
      lib: {
        entry: resolve(root, 'src/preload/index.ts'),
        formats: ['cjs'],
        fileName: () => 'index.cjs',
      },
    },
  },
  renderer: {
    root: resolve(root, 'src/renderer'),
    base: './',
    plugins: [react(), cspPlugin()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      emptyOutDir: true,
      // served over the network by the web console too
      minify: true,
      rolldownOptions: {
        input: resolve(root, 'src/renderer/index.html'),
      },
    },
    server: {
      proxy: {
        '/api': { target: `http://127.0.0.1:${devEnginePort}`, changeOrigin: false, ws: false },
      },
    },
  },
});
