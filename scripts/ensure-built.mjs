// Build what is missing or older than its sources, so that `npm run demo`, `npm test` and
// `triplicate serve` run the current code on a fresh clone:
//   out/engine  (the compiled engine: src/main/engine, src/shared)   vite.engine.config.ts
//   out/renderer (the web console: src/renderer, src/shared)        vite.web.config.ts
//   node scripts/ensure-built.mjs [engine] [web]      (both when none is named)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const parts = {
  engine: { out: join(root, 'out', 'engine', 'triplicate.mjs'), src: ['src/main/engine', 'src/shared', 'vite.engine.config.ts', 'package.json'], config: 'vite.engine.config.ts', what: 'the engine' },
  web: { out: join(root, 'out', 'renderer', 'index.html'), src: ['src/renderer', 'src/shared', 'vite.web.config.ts'], config: 'vite.web.config.ts', what: 'the web console' },
};

/** Build the named parts that are missing or stale (`force`: always); throws when a build fails. */
export function ensureBuilt(names = Object.keys(parts), force = false) {
  for (const name of names) {
    const p = parts[name];
    const built = !force && existsSync(p.out) ? statSync(p.out).mtimeMs : 0;
    const src = Math.max(...p.src.map((s) => {
      const abs = join(root, s);
      return statSync(abs).isDirectory() ? newest(abs) : statSync(abs).mtimeMs;
    }));
    if (built >= src) continue;
    process.stderr.write(`building ${p.what} (once)…\n`);
    const r = spawnSync(process.execPath, [vite, 'build', '--config', join(root, p.config), '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`building ${p.what} failed (exit ${r.status})`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    ensureBuilt(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}
