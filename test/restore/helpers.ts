// Shared setup of the restore tests: two real s3rver targets (NAS priority 1, cloud priority 2),
// a storage root, a real engine; helpers to read the restore service and compare trees.
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { ConfigInput, S3TargetConfig } from '../../src/shared/config';
import type { Engine } from '../../src/main/engine/engine';
import type { RestoreService } from '../../src/main/engine/restore/service';
import { createBackend } from '../../src/main/engine/backends';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import { startS3, type TestS3 } from '../helpers/s3';
import { sha256, startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { Teardown } from '../helpers/teardown';

export const MiB = 1024 * 1024;

export interface Rig {
  base: string;
  media: string;
  data: string;
  nas: TestS3;
  cloud: TestS3;
  nasT: S3TargetConfig;
  cloudT: S3TargetConfig;
  cfg: ConfigInput;
}

/** What the rigs start; the tests' afterEach (or afterAll) calls teardown(). */
const td = new Teardown();

export async function rig(extra: Partial<ConfigInput> = {}): Promise<Rig> {
  const base = td.dir('trip-restore-');
  const media = join(base, 'media');
  const data = join(base, 'data');
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const cloud = td.add(await startS3({ buckets: ['cloud'] }));
  const nasT = nas.target('nas', { label: 'NAS', priority: 1, multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  const cloudT = cloud.target('cloud', { label: 'Cloud', priority: 2, preset: 'r2', region: 'auto', multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  const cfg: ConfigInput = { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT, cloudT], ...extra };
  return { base, media, data, nas, cloud, nasT, cloudT, cfg };
}

export async function engineFor(r: Rig, opts: Parameters<typeof startEngine>[2] = {}, cfg: ConfigInput | undefined = r.cfg): Promise<Engine> {
  return td.add(await startEngine(r.data, cfg, opts));
}

/** An engine the test stopped itself. */
export function forget(e: Engine): void {
  td.forget(e);
}

export function restoreOf(e: Engine): RestoreService {
  return e.service<RestoreService>('restore')!;
}

export function backendOf(t: S3TargetConfig): StorageBackend {
  const b = createBackend(t, { retry: false });
  td.add(() => b.close?.());
  return b;
}

export async function readAll(b: StorageBackend, key: string): Promise<Buffer> {
  const r = await b.get(key);
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function listAll(b: StorageBackend, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of b.list(prefix)) keys.push(o.key);
  return keys;
}

export function writeAll(root: string, files: Record<string, Buffer>): void {
  for (const [rel, c] of Object.entries(files)) writeFile(root, rel, c);
}

/** Every regular file under dir: rel path -> content. */
export function tree(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[relative(dir, p).split(sep).join('/')] = readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

export function mtimeOf(p: string): number {
  return Math.trunc(statSync(p).mtimeMs);
}

export async function synced(e: Engine, n: number, timeoutMs = 60_000): Promise<void> {
  await waitForStatus(e, (s) => s.safe_files === n && s.pending === 0 && s.uploading === 0 && !s.scanning, timeoutMs, `${n} files safe`);
}

/** s3rver keeps an object as `<dir>/<bucket>/<key>._S3rver_object`. */
export function s3rverObjectPath(s: TestS3, key: string): string {
  const parts = key.split('/');
  const last = parts.pop()!;
  return join(s.directory, s.bucket, ...parts, `${last}._S3rver_object`);
}

export function teardown(): Promise<void> {
  return td.run();
}

/** Write new content (and a new mtime) and wait until the engine has it synced everywhere. */
export async function change(engine: Engine, media: string, rel: string, content: Buffer, n: number): Promise<void> {
  const p = writeFile(media, rel, content);
  const t = Date.now() / 1000 + Math.random();
  utimesSync(p, t, t);
  await engine.scanAll();
  await waitFor(() => engine.file(`media/${rel}`)?.sha256 === sha256(content), 20_000, `${rel} hashed`);
  await synced(engine, n);
}
