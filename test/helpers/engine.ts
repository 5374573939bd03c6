// Real engines for integration tests: a temp data dir, a config, createEngine on free ports.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { SyncStatus } from '../../src/shared/api';
import type { ConfigInput } from '../../src/shared/config';
import { saveConfig, defaultConfigPath } from '../../src/main/engine/config/config';
import { createEngine, type Engine, type EngineOptions } from '../../src/main/engine/engine';

export function tempDir(prefix = 'trip-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeFile(root: string, rel: string, content: string | Buffer): string {
  const p = join(root, ...rel.split('/'));
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
  return p;
}

export function sha256(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function sha256OfFile(path: string): string {
  return sha256(readFileSync(path));
}

/** Deterministic pseudo-random bytes (fast, no crypto): test content that compresses badly. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * Fast settings for tests: short stability window and backoff. The burst guard is off: most tests
 * name random bytes `.jpg`, which it rightly finds suspicious (test/engine/guard.test.ts turns it on).
 */
export const FAST_SYNC = { stabilityMs: 300, backoffSeconds: [0.5, 1, 1, 2, 2], leaseSeconds: 30, rescanIntervalMinutes: 0, guard: { enabled: false } };

export function writeConfig(dataDir: string, cfg: ConfigInput): void {
  saveConfig(defaultConfigPath(dataDir), { ...cfg, sync: { ...FAST_SYNC, ...(cfg.sync ?? {}) }, server: { adminPort: 0, downloadPort: 0, downloadHost: '127.0.0.1', ...(cfg.server ?? {}) } });
}

export async function startEngine(dataDir: string, cfg?: ConfigInput, opts: Partial<EngineOptions> = {}): Promise<Engine> {
  if (cfg) writeConfig(dataDir, cfg);
  const engine = createEngine({ dataDir, adminPort: 0, downloadPort: 0, ...opts });
  await engine.start();
  return engine;
}

/** Poll the engine's status until pred holds (bounded). */
export async function waitForStatus(engine: Engine, pred: (s: SyncStatus) => boolean, timeoutMs = 30_000, what = 'status condition'): Promise<SyncStatus> {
  const until = Date.now() + timeoutMs;
  let last: SyncStatus | undefined;
  while (Date.now() < until) {
    last = engine.status();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last && { ...last, disk: undefined }, null, 1)}`);
}

export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function cleanup(...dirs: (string | undefined)[]): void {
  for (const d of dirs) if (d) rmSync(d, { recursive: true, force: true });
}
