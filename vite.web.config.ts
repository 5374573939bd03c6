// Builds only the web console (the renderer) into out/renderer, for a headless box that runs
// `triplicate serve` without Electron: `npm run build:web`. Same output as electron-vite's renderer.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { cspPlugin } from './electron.vite.config';

const root = import.meta.dirname;

export default defineConfig({
  root: resolve(root, 'src/renderer'),
  base: './',
  plugins: [react(), cspPlugin()],
  build: {
    outDir: resolve(root, 'out/renderer'),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: {
    proxy: { '/api': { target: `http://127.0.0.1:${Number(process.env.TRIPLICATE_DEV_ADMIN_PORT ?? 8765)}` } },
  },
});
