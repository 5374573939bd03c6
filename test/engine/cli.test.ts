// The CLI as an operator and a service manager use it: `serve` in a child process, its ready
// line, `status`, SIGTERM, kill -9 in the middle of a sync, bad config, a second engine.
import Database from 'better-sqlite3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { ApiClient } from '../../src/shared/client';
import { startS3 } from '../helpers/s3';
import { bytes, sha256, waitFor, writeConfig, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'triplicate.mjs');
const MiB = 1024 * 1024;

const td = useTeardown();

interface Ready {
  event: 'ready';
  adminUrl: string;
  token: string;
}

function serve(dataDir: string, extra: string[] = []): { child: ChildProcess; ready: Promise<Ready>; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  td.add(child);
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const ready = new Promise<Ready>((resolve, reject) => {
    rl.on('line', (l) => {
      lines.push(l);
      const j = JSON.parse(l);
      // the token is not on the ready line (stdout may go to a journal): it is in the token file
      if (j.event === 'ready') resolve({ ...j, token: readFileSync(j.tokenFile, 'utf8').trim() });
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code} before ready: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, lines, exited };
}

async function setup(files: Record<string, Buffer>) {
  const base = td.dir('trip-cli-');
  const media = join(base, 'media');
  for (const [rel, c] of Object.entries(files)) writeFile(media, rel, c);
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const cloud = td.add(await startS3({ buckets: ['cloud'] }));
  const targets = [
    nas.target('nas', { label: 'NAS', priority: 1, multipartThreshold: 5 * MiB, partSize: 5 * MiB, concurrency: 2 }),
    cloud.target('cloud', { label: 'Cloud', priority: 2, multipartThreshold: 5 * MiB, partSize: 5 * MiB, concurrency: 2 }),
  ];
  const data = join(base, 'data');
  writeConfig(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets });
  return { base, media, data, nas, cloud, targets };
}

describe('triplicate CLI', () => {
  it('serve prints the ready line, status answers, SIGTERM stops cleanly', async () => {
    const { data } = await setup({ 'a.jpg': bytes(1000, 1), 'b.jpg': bytes(2000, 2) });
    const s = serve(data);
    const ready = await s.ready;
    expect(ready.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new ApiClient({ baseUrl: ready.adminUrl, token: ready.token });
    await waitFor(async () => (await client.call('status')).safe_files === 2, 30_000, 'synced');
    const st = spawnSync(process.execPath, [BIN, 'status', '--data-dir', data], { encoding: 'utf8' });
    expect(st.status).toBe(0);
    expect(JSON.parse(st.stdout).safe_files).toBe(2);
    expect(st.stderr).toMatch(/All 2 files .* safe in 3 places/);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.lines.map((l) => JSON.parse(l).event)).toEqual(['ready', 'stopped']);
    const db = new Database(join(data, 'catalog.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const after = spawnSync(process.execPath, [BIN, 'status', '--data-dir', data], { encoding: 'utf8' });
    expect(after.status).toBe(3);
    expect(after.stderr).toMatch(/not running/);
  });

  it('kill -9 in the middle of a sync loses nothing and never leaves a copy marked synced that is not', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) files[`small/p${i}.jpg`] = bytes(40_000 + i, i + 1);
    for (let i = 0; i < 4; i++) files[`video/v${i}.mov`] = bytes(12 * MiB + i, 500 + i);
    const { data, targets } = await setup(files);
    const backends = targets.map((t) => createBackend(t, { retry: false }));
    try {
      for (let round = 0; round < 3; round++) {
        const s = serve(data);
        const ready = await s.ready;
        const client = new ApiClient({ baseUrl: ready.adminUrl, token: ready.token });
        // let it get part of the way, then pull the plug
        await waitFor(async () => (await client.call('status')).copies.synced >= 10 + round * 30, 60_000, 'some progress');
        s.child.kill('SIGKILL');
        await s.exited;
        // every copy the catalog calls synced is really on its target with the right content
        const db = new Database(join(data, 'catalog.db'), { readonly: true });
        const synced = db.prepare(`SELECT f.rel_path, f.sha256, f.size, c.target_id FROM copies c JOIN files f ON f.id = c.file_id WHERE c.state = 'synced'`).all() as { rel_path: string; sha256: string; size: number; target_id: string }[];
        db.close();
        for (const c of synced) {
          const b = backends[targets.findIndex((t) => t.id === c.target_id)]!;
          const head = await b.head(`media/${c.rel_path}`);
          expect(head, `synced copy media/${c.rel_path} on ${c.target_id}`).not.toBeNull();
          expect(head!.size).toBe(c.size);
          expect(head!.sha256).toBe(c.sha256);
        }
      }
      const s = serve(data);
      const ready = await s.ready;
      const client = new ApiClient({ baseUrl: ready.adminUrl, token: ready.token });
      await waitFor(async () => (await client.call('status')).safe_files === 64, 120_000, 'everything synced after the kills');
      s.child.kill('SIGTERM');
      await s.exited;
      for (const b of backends) {
        for (const [rel, content] of Object.entries(files)) {
          const r = await b.get(`media/${rel}`);
          const chunks: Buffer[] = [];
          for await (const c of r.body) chunks.push(c as Buffer);
          expect(sha256(Buffer.concat(chunks)), `media/${rel}`).toBe(sha256(content));
          expect(r.info.sha256).toBe(sha256(content));
        }
      }
    } finally {
      for (const b of backends) b.close?.();
    }
  }, 300_000);

  it('a malformed config is refused with a sentence that says where, and the file is left as it is', async () => {
    const { data } = await setup({ 'a.jpg': bytes(10, 1) });
    const path = join(data, 'config.json');
    writeFileSync(path, '{\n  // comments and trailing commas are fine\n  "roots": [\n    { "id": "x" "label": "X", "path": "/tmp" },\n  ],\n}\n');
    const r = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', data], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/config file .* is not valid JSON near line 4, column 17 \(invalid character '"'\)/);
    expect(readFileSync(path, 'utf8')).toContain('"id": "x" "label"');
    writeFileSync(path, JSON.stringify({ roots: [], targets: [{ id: 'n', label: 'N', kind: 's3', bucket: 'ok-bucket', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, colour: 'red' }] }));
    const r2 = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', data], { encoding: 'utf8' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/targets\[0\]: Unrecognized key: "colour"/);
    expect(r2.stderr).toMatch(/targets\[0\]\.endpoint: an endpoint URL is needed/);
  });

  it('refuses a second engine on the same data dir', async () => {
    const { data } = await setup({ 'a.jpg': bytes(10, 1) });
    const s = serve(data);
    await s.ready;
    const r = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', data, '--admin-port', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Another Triplicate engine \(process \d+\) is already running/);
    s.child.kill('SIGTERM');
    await s.exited;
  });

  it('serve --dry-run prints what it would upload and uploads nothing', async () => {
    const { data, targets } = await setup({ 'a.jpg': bytes(1000, 1), 'b/c.jpg': bytes(500, 2) });
    const r = spawnSync(process.execPath, [BIN, 'serve', '--data-dir', data, '--dry-run'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ event: 'dry-run-summary', files: 2, bytes: 3000 });
    const b = createBackend(targets[0]!, { retry: false });
    const keys: string[] = [];
    for await (const o of b.list('')) keys.push(o.key);
    b.close?.();
    expect(keys).toEqual([]);
  });
});
