// Pieces of the robustness harness: S3 servers and `triplicate serve` in child processes, generated
// trees, a read-only look into the catalog, and checks of what is really on the targets.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { createBackend } from '../../src/main/engine/backends';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import type { S3TargetConfig } from '../../src/shared/config';
import { ApiClient } from '../../src/shared/client';
import { ENGINE_NODE_FLAGS } from '../../src/shared/engine-flags';
import { nodeAsUnprivileged, type ReadableBundle } from '../helpers/unprivileged';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'triplicate.mjs');
export { ENGINE_ENTRY } from '../helpers/unprivileged';
export const MiB = 1024 * 1024;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** xorshift32: deterministic, seedable. */
export function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** Deterministic incompressible bytes. */
export function content(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < n; i++) b[i] = (x >>> (8 * (i & 3))) & 0xff;
  return b;
}

export function sha256(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let size = 0;
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (c) => {
        size += (c as Buffer).length;
        h.update(c);
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: h.digest('hex'), size }));
  });
}

// ---- S3 servers ----------------------------------------------------------------------------------

export interface S3Child {
  endpoint: string;
  port: number;
  dir: string;
  buckets: string[];
  pid: number;
  stop(): Promise<void>;
}

/** s3rver with the harness's S3 gaps filled (test/robustness/s3rver-child.mjs), in its own process. */
export async function startS3Child(dir: string, buckets: string[], port = 0): Promise<S3Child> {
  mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, [join(import.meta.dirname, 's3rver-child.mjs'), dir, buckets.join(','), String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + String(d)).slice(-4000)));
  const rl = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`s3rver did not start: ${err}`)), 20_000);
    rl.once('line', (l) => {
      clearTimeout(t);
      resolve(l);
    });
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}: ${err}`)));
  });
  const got = (JSON.parse(line) as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${got}`,
    port: got,
    dir,
    buckets,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

export function s3Target(id: string, endpoint: string, bucket: string, extra: Partial<S3TargetConfig> = {}): S3TargetConfig {
  return {
    id,
    label: id.toUpperCase(),
    kind: 's3',
    preset: 'minio',
    endpoint,
    region: 'us-east-1',
    bucket,
    prefix: '',
    pathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    priority: 10,
    enabled: true,
    concurrency: 4,
    versionsPrefix: '.triplicate/versions/',
    multipartThreshold: 5 * MiB,
    partSize: 5 * MiB,
    ...extra,
  };
}

const SEG_MAX = 200;
function splitSegment(seg: string): string {
  if (Buffer.byteLength(seg) <= SEG_MAX) return seg;
  const chunks: string[] = [];
  let cur = '';
  for (const ch of seg) {
    if (Buffer.byteLength(cur + ch) > SEG_MAX) {
      chunks.push(cur);
      cur = '';
    }
    cur += ch;
  }
  chunks.push(cur);
  return chunks.join('/§+');
}

/** Where s3rver keeps an object (same encoding as s3rver-child.mjs). */
function objectBase(s3dir: string, bucket: string, key: string): string {
  return join(s3dir, bucket, ...key.split('/').map(splitSegment).join('/').split('/'));
}

/** An object as s3rver stores it: size of its data file and the sha256 in its metadata. No HTTP. */
export function objectOnDisk(s3dir: string, bucket: string, key: string): { size: number; sha256?: string } | null {
  const base = objectBase(s3dir, bucket, key);
  let size: number;
  try {
    size = statSync(`${base}._S3rver_object`).size;
  } catch {
    return null;
  }
  let sha: string | undefined;
  try {
    sha = (JSON.parse(readFileSync(`${base}._S3rver_metadata.json`, 'utf8')) as Record<string, string>)['x-amz-meta-sha256'];
  } catch {}
  return { size, sha256: sha };
}

/** Unfinished multipart uploads s3rver still keeps: orphans (never completed nor aborted), and part
 * directories re-created by a part that raced its upload's abort (no key file). */
export function multipartLeftovers(s3dir: string, bucket: string): { orphans: string[]; stray: string[] } {
  const dir = join(s3dir, bucket, '._S3rver_uploads');
  const orphans: string[] = [];
  const stray: string[] = [];
  if (!existsSync(dir)) return { orphans, stray };
  for (const id of readdirSync(dir)) {
    const keyFile = join(dir, id, 'key');
    if (existsSync(keyFile)) orphans.push(`${readFileSync(keyFile, 'utf8')} (${id})`);
    else stray.push(id);
  }
  return { orphans, stray };
}

// ---- the engine as a child process ---------------------------------------------------------------

export interface Ready {
  adminUrl: string;
  token: string;
  pid: number;
}

export class ServeChild {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  ready: Ready | null = null;
  readonly readyPromise: Promise<Ready>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly spawnedAt = Date.now();
  private client_: ApiClient | null = null;

  constructor(
    readonly dataDir: string,
    /** asNobody: run as `nobody` (when we are root) from this bundle's `triplicate` entry. */
    opts: { asNobody?: ReadableBundle; args?: string[]; env?: Record<string, string>; nodeArgs?: string[]; /** Default: the engine's own (src/shared/engine-flags.ts). */ engineFlags?: readonly string[] } = {},
  ) {
    const args = [...(opts.engineFlags ?? ENGINE_NODE_FLAGS), ...(opts.nodeArgs ?? []), opts.asNobody?.path('triplicate') ?? BIN, 'serve', '--data-dir', dataDir, ...(opts.args ?? [])];
    const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...(opts.env ?? {}) };
    const run = opts.asNobody ? nodeAsUnprivileged(args) : { cmd: process.execPath, args };
    this.child = spawn(run.cmd, run.args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.asNobody?.dir, env: opts.asNobody ? { ...env, HOME: '/tmp' } : env });
    this.child.stderr!.on('data', (d) => (this.stderr = (this.stderr + String(d)).slice(-20_000)));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    const rl = createInterface({ input: this.child.stdout! });
    this.readyPromise = new Promise<Ready>((resolve, reject) => {
      rl.on('line', (line) => {
        this.stdout = (this.stdout + line + '\n').slice(-20_000);
        try {
          const j = JSON.parse(line) as { event?: string; tokenFile: string } & Ready;
          if (j.event === 'ready') {
            this.ready = { adminUrl: j.adminUrl, token: readFileSync(j.tokenFile, 'utf8').trim(), pid: j.pid };
            resolve(this.ready);
          }
        } catch {}
      });
      void this.exited.then((x) => reject(new Error(`triplicate serve exited (${x.code ?? x.signal}) before it was ready: ${this.stderr.slice(-2000)}`)));
    });
    this.readyPromise.catch(() => undefined);
  }

  get pid(): number {
    return this.ready?.pid ?? this.child.pid!;
  }

  async waitReady(timeoutMs = 60_000): Promise<Ready> {
    let t: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([this.readyPromise, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`triplicate serve not ready after ${timeoutMs} ms: ${this.stderr.slice(-2000)}`)), timeoutMs)))]);
    } finally {
      clearTimeout(t);
    }
  }

  get client(): ApiClient {
    if (!this.ready) throw new Error('not ready');
    this.client_ ??= new ApiClient({ baseUrl: this.ready.adminUrl, token: this.ready.token });
    return this.client_;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL the engine (the node process itself, also when it runs under setpriv: setpriv execs). */
  async kill(): Promise<void> {
    if (!this.alive()) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for a clean exit (bounded); SIGKILL after the bound. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; clean: boolean }> {
    if (!this.alive()) return { ...(await this.exited), clean: false };
    this.child.kill('SIGTERM');
    const r = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    if (r) return { ...r, clean: r.code === 0 };
    this.child.kill('SIGKILL');
    return { ...(await this.exited), clean: false };
  }

  /** Resident memory of the engine process, bytes (Linux /proc). */
  rss(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }
}

// ---- the catalog, read-only ----------------------------------------------------------------------

export interface CatalogSnapshot {
  files: { id: number; root_id: string; rel_path: string; disk_rel: string | null; size: number; sha256: string | null; local_state: string }[];
  copies: { file_id: number; target_id: string; state: string; sha256: string | null; size: number | null; last_error: string | null }[];
  jobs: { lane: string; kind: string; file_id: number; state: string; attempts: number }[];
}

/** Read the catalog of a stopped (or killed) engine without changing it: a copy of db + WAL. */
export function readCatalog(dataDir: string): CatalogSnapshot {
  const src = join(dataDir, 'catalog.db');
  const tmp = tempDir('trip-cat-');
  try {
    copyFileSync(src, join(tmp, 'catalog.db'));
    for (const ext of ['-wal', '-shm']) if (existsSync(src + ext)) copyFileSync(src + ext, join(tmp, `catalog.db${ext}`));
    const db = new Database(join(tmp, 'catalog.db'));
    try {
      return {
        files: db.prepare('SELECT id, root_id, rel_path, disk_rel, size, sha256, local_state FROM files').all() as CatalogSnapshot['files'],
        copies: db.prepare('SELECT file_id, target_id, state, sha256, size, last_error FROM copies').all() as CatalogSnapshot['copies'],
        jobs: db.prepare('SELECT lane, kind, file_id, state, attempts FROM jobs').all() as CatalogSnapshot['jobs'],
      };
    } finally {
      db.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface Invariants {
  /** present, hashed files with a target that has neither a synced copy of this content nor a job */
  lost: string[];
  /** copies marked synced whose object is missing or differs (size, sha256) */
  falseSynced: string[];
  /** copies marked failed (none is expected where nothing is broken on purpose) */
  failed: string[];
  synced: number;
}

/** The durable-state invariants, checked against s3rver's files on disk (fast: no HTTP). */
export function checkInvariants(snap: CatalogSnapshot, targets: { id: string; s3dir: string; bucket: string; prefix?: string }[]): Invariants {
  const out: Invariants = { lost: [], falseSynced: [], failed: [], synced: 0 };
  const copies = new Map<string, CatalogSnapshot['copies'][number]>();
  for (const c of snap.copies) copies.set(`${c.file_id}\0${c.target_id}`, c);
  const jobs = new Set(snap.jobs.filter((j) => j.kind === 'upload').map((j) => `${j.file_id}\0${j.lane}`));
  const byId = new Map(snap.files.map((f) => [f.id, f]));
  for (const f of snap.files) {
    if (f.local_state !== 'present' || !f.sha256) continue;
    for (const t of targets) {
      const c = copies.get(`${f.id}\0${t.id}`);
      const queued = jobs.has(`${f.id}\0upload:${t.id}`);
      if (c?.state === 'failed') out.failed.push(`${f.root_id}/${f.rel_path} on ${t.id}: ${c.last_error ?? ''}`);
      else if (!(c?.state === 'synced' && c.sha256 === f.sha256) && !queued) out.lost.push(`${f.root_id}/${f.rel_path} on ${t.id} (copy ${c?.state ?? 'none'}, no job)`);
    }
  }
  for (const c of snap.copies) {
    if (c.state !== 'synced') continue;
    const f = byId.get(c.file_id);
    const t = targets.find((x) => x.id === c.target_id);
    if (!f || !t) continue;
    out.synced++;
    const key = `${t.prefix ?? ''}${f.root_id}/${f.rel_path}`;
    const o = objectOnDisk(t.s3dir, t.bucket, key);
    if (!o) out.falseSynced.push(`${key} on ${t.id}: marked synced, not on the target`);
    else if (o.size !== c.size || o.sha256 !== c.sha256) out.falseSynced.push(`${key} on ${t.id}: marked synced as ${c.size} bytes ${c.sha256?.slice(0, 12)}, target has ${o.size} bytes ${o.sha256?.slice(0, 12)}`);
  }
  return out;
}

// ---- the tree and the targets --------------------------------------------------------------------

export interface TreeFile {
  rel: string;
  abs: string;
  size: number;
}

/** Regular files under root ("/" relative paths as on disk). */
export function listTree(root: string): TreeFile[] {
  const out: TreeFile[] = [];
  const stack = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    const abs = rel ? join(root, rel) : root;
    let ents;
    try {
      ents = readdirSync(abs, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of ents) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) stack.push(r);
      else if (e.isFile()) out.push({ rel: r, abs: join(abs, e.name), size: lstatSync(join(abs, e.name)).size });
    }
  }
  return out;
}

/** GET an object and hash it. */
export async function hashObject(b: StorageBackend, key: string): Promise<{ sha256: string; size: number } | null> {
  const head = await b.head(key);
  if (!head) return null;
  const r = await b.get(key);
  const h = createHash('sha256');
  let size = 0;
  for await (const c of r.body) {
    size += (c as Buffer).length;
    h.update(c as Buffer);
  }
  return { sha256: h.digest('hex'), size };
}

export interface VerifyResult {
  files: number;
  bytes: number;
  problems: string[];
}

/** Every file of the tree is on every target, byte-exact (GET + sha256), under its NFC key. */
export async function verifyTree(root: string, rootId: string, targets: S3TargetConfig[], opts: { skip?: (rel: string) => boolean; concurrency?: number } = {}): Promise<VerifyResult> {
  const files = listTree(root).filter((f) => !opts.skip?.(f.rel));
  const res: VerifyResult = { files: 0, bytes: 0, problems: [] };
  const backends = targets.map((t) => ({ t, b: createBackend(t) }));
  try {
    let i = 0;
    const worker = async () => {
      while (i < files.length) {
        const f = files[i++]!;
        const local = await sha256File(f.abs);
        for (const { t, b } of backends) {
          const key = `${t.prefix}${rootId}/${f.rel.normalize('NFC')}`;
          try {
            const got = await hashObject(b, key);
            if (!got) res.problems.push(`${key}: missing on ${t.id}`);
            else if (got.sha256 !== local.sha256 || got.size !== local.size) res.problems.push(`${key}: on ${t.id} ${got.size} bytes ${got.sha256.slice(0, 12)}, local ${local.size} bytes ${local.sha256.slice(0, 12)}`);
            else res.bytes += got.size;
          } catch (e) {
            res.problems.push(`${key}: reading it from ${t.id} failed: ${(e as Error).message}`);
          }
        }
        res.files++;
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  } finally {
    for (const { b } of backends) b.close?.();
  }
  return res;
}

/** Poll until pred holds (bounded). */
export async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
}

export function rm(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** A compact p50/p95 summary. */
export function percentiles(xs: number[]): { p50: number; p95: number; max: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { p50: at(0.5), p95: at(0.95), max: s[s.length - 1] ?? NaN, n: s.length };
}

// ---- the report ------------------------------------------------------------------------------------

export interface Check {
  suite: string;
  name: string;
  ok: boolean;
  detail?: string;
}

export class Report {
  readonly checks: Check[] = [];
  readonly figures: Record<string, Record<string, unknown>> = {};

  constructor(private readonly print: (line: string) => void = (l) => console.log(l)) {}

  check(suite: string, name: string, ok: boolean, detail?: string): boolean {
    this.checks.push({ suite, name, ok, detail });
    const shown = detail && detail.length > 400 && ok ? `${detail.slice(0, 400)}…` : detail;
    this.print(`  ${ok ? 'ok  ' : 'FAIL'} ${name}${shown ? `: ${shown}` : ''}`);
    return ok;
  }

  figure(suite: string, key: string, value: unknown): void {
    (this.figures[suite] ??= {})[key] = value;
  }

  log(line: string): void {
    this.print(line);
  }

  get passed(): number {
    return this.checks.filter((c) => c.ok).length;
  }

  get failed(): number {
    return this.checks.filter((c) => !c.ok).length;
  }
}

export interface SuiteContext {
  mode: 'short' | 'full';
  seed: number;
  report: Report;
  /** Keep temp dirs (debugging). */
  keep: boolean;
}

/** Show at most n items of a list. */
export function few(xs: string[], n = 5): string {
  return xs.length <= n ? xs.join('; ') : `${xs.slice(0, n).join('; ')}; … and ${xs.length - n} more`;
}

/** Read every object s3rver holds and compare its content with the sha256 in its metadata. */
export function auditObjects(s3dir: string, bucket: string): { objects: number; versions: number; bad: string[] } {
  const out = { objects: 0, versions: 0, bad: [] as string[] };
  const root = join(s3dir, bucket);
  const stack = [root];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '._S3rver_uploads') stack.push(p);
        continue;
      }
      if (!e.name.endsWith('._S3rver_object')) continue;
      const base = p.slice(0, -'._S3rver_object'.length);
      const key = base.slice(root.length + 1).split('/§+').join('');
      out.objects++;
      if (key.includes('.triplicate/versions/')) out.versions++;
      let meta: Record<string, string> = {};
      try {
        meta = JSON.parse(readFileSync(`${base}._S3rver_metadata.json`, 'utf8')) as Record<string, string>;
      } catch {}
      const want = meta['x-amz-meta-sha256'];
      if (!want) {
        out.bad.push(`${key}: no sha256 metadata`);
        continue;
      }
      const got = sha256(readFileSync(p));
      if (got !== want) out.bad.push(`${key}: content ${got.slice(0, 12)}, metadata says ${want.slice(0, 12)}`);
    }
  }
  return out;
}
