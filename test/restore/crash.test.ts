// kill -9 in the middle of a restore, then start again: the restore resumes by itself (durable jobs,
// lease + fence) and finishes with every file byte-exact, no partial or temp file, no file counted
// twice. The engine runs as its own process: `node bin/triplicate.mjs serve --data-dir ...`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestoreProgress } from '../../src/shared/api';
import { ApiClient } from '../../src/shared/client';
import { bytes, sha256, writeConfig } from '../helpers/engine';
import { MiB, engineFor, forget, rig, synced, teardown, tree, writeAll } from './helpers';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'triplicate.mjs');
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await teardown();
});

async function serve(dataDir: string): Promise<{ child: ChildProcess; client: ApiClient }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const rl = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ adminUrl: string; token: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`engine did not start: ${stderr}`)), 30_000);
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { event: string; adminUrl: string; tokenFile: string };
        if (j.event === 'ready') {
          clearTimeout(t);
          // the ready line names the token file, never the token
          resolve({ adminUrl: j.adminUrl, token: readFileSync(j.tokenFile, 'utf8').trim() });
        }
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`engine exited ${code}: ${stderr}`)));
  });
  return { child, client: new ApiClient({ baseUrl: ready.adminUrl, token: ready.token }) };
}

function tempLeftovers(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => p.split('/').pop()!.startsWith('.triplicate-'));
}

describe('crash in the middle of a restore', () => {
  it('kill -9, restart: the restore finishes with no duplicate or partial file', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`shoot/${String(i).padStart(2, '0')}.jpg`] = bytes(2 * MiB + i, 500 + i);
    for (let i = 0; i < 4; i++) files[`clips/${i}.mp4`] = bytes(24 * MiB, 600 + i); // first in restore order
    writeAll(r.media, files);
    // back everything up with an engine in this process, then lose the local folder
    const first = await engineFor(r, { watch: false }, { ...r.cfg, restore: { concurrency: 4 } });
    await synced(first, 44, 180_000);
    await first.stop();
    forget(first);
    rmSync(r.media, { recursive: true });
    mkdirSync(r.media); // a new, empty disk
    writeConfig(r.data, { ...r.cfg, restore: { concurrency: 4 } });

    let { child, client } = await serve(r.data);
    // the engine's start-up scan notices the empty folder: restore-missing brings everything back
    let p: RestoreProgress = await client.call('restoreMissing');
    expect(p.files_total).toBe(44);
    const id = p.id;
    for (let i = 0; i < 600; i++) {
      p = (await client.call('restoreStatus')).recent.find((x) => x.id === id)!;
      // the four big files are streaming into their temp files
      if (p.bytes_done >= 8 * MiB || p.state !== 'running') break;
      await new Promise((res) => setTimeout(res, 10));
    }
    expect(p.state).toBe('running'); // still going: the kill lands in the middle
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    const doneBefore = p.files_done;
    expect(doneBefore).toBeLessThan(44);
    // the kill left partial files behind (under temp names: never a half file under the real name)
    const partial = tempLeftovers(r.media);
    expect(partial.length).toBeGreaterThanOrEqual(1);
    const mid = tree(r.media);
    for (const [k, c] of Object.entries(mid)) {
      if (k.split('/').pop()!.startsWith('.triplicate-')) continue;
      expect(sha256(c), `${k} after the kill`).toBe(sha256(files[k]!));
    }

    ({ child, client } = await serve(r.data));
    for (let i = 0; i < 1200; i++) {
      p = (await client.call('restoreStatus')).recent.find((x) => x.id === id)!;
      if (p.state !== 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(p.state).toBe('done');
    expect(p.files_total).toBe(44);
    expect(p.files_done).toBe(44); // each file counted once
    expect(p.files_failed).toBe(0);
    expect(p.bytes_done).toBeLessThanOrEqual(p.bytes_total);

    const now = tree(r.media);
    expect(Object.keys(now).sort()).toEqual(Object.keys(files).sort());
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
    expect(tempLeftovers(r.media)).toEqual([]);
    const status = await client.call('status');
    expect(status.missing_local_files).toBe(0);
    expect(status.total_files).toBe(44);
    child.kill('SIGTERM');
    await new Promise((res) => child.once('exit', res));
  }, 300_000);
});
