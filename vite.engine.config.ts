// The engine as it ships: src/main/engine/main.ts -> out/engine/triplicate.mjs (ESM for Node),
// what `triplicate` (bin/triplicate.mjs), the service and the desktop app run. Dependencies stay
// in node_modules (native better-sqlite3 and sharp, the ffmpeg binaries); commands that do not need
// the whole engine (status, link…) load it lazily, from its own chunk.
import { builtinModules } from 'node:module';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { defineConfig } from 'vite';

const root = import.meta.dirname;
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const deps = Object.keys(pkg.dependencies);

export default defineConfig({
  build: {
    ssr: true,
    outDir: resolve(root, 'out/engine'),
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    sourcemap: true,
    reportCompressedSize: false,
    rolldownOptions: {
      input: { triplicate: resolve(root, 'src/main/engine/main.ts') },
      external: [...builtinModules, /^node:/, ...deps.map((d) => new RegExp(`^${d.replace(/[/.]/g, '\\$&')}(/|$)`))],
      output: { format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'chunks/[name]-[hash].mjs' },
    },
  },
  logLevel: 'warn',
});
