// Builds only the web console (the renderer) into out/renderer, for a headless box that runs
// `triplicate serve` without Electron: `npm run build:web`. Same output as electron-vite's renderer.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';

const root = import.meta.dirname;

/** Same Content-Security-Policy as the Electron build (electron.vite.config.ts). */
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
  root: resolve(root, 'src/renderer'),
  base: './',
  plugins: [react(), cspPlugin()],
  build: {
    outDir: resolve(root, 'out/renderer'),
    emptyOutDir: true,
    target: 'es2022',
    minify: true,
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/api': { target: `http://127.0.0.1:${Number(process.env.TRIPLICATE_DEV_ADMIN_PORT ?? 8765)}` } },
  },
});
