// The admin API over real HTTP: auth, the seed's routes, CRUD of folders and destinations,
// test connection, pause/resume, queue paging, the event stream and /metrics.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { EngineEvent } from '../../src/shared/api';
import { startS3 } from '../helpers/s3';
import { bytes, startEngine, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

async function setup() {
  const base = td.dir('trip-admin-');
  const media = join(base, 'media');
  mkdirSync(media);
  writeFile(media, 'a.jpg', bytes(1000, 1));
  writeFile(media, 'b/c.jpg', bytes(2000, 2));
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas.target('nas', { label: 'NAS' })] }));
  const ep = engine.endpoints;
  const client = new ApiClient({ baseUrl: ep.adminUrl!, token: engine.token });
  return { base, media, nas, engine, client, url: ep.adminUrl!, token: engine.token };
}

describe('admin API', () => {
  it('refuses requests without the token, or with a wrong one, and changes nothing', async () => {
    const { url, engine } = await setup();
    await waitForStatus(engine, (s) => s.safe_files === 2);
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${engine.token}` }] as Record<string, string>[]) {
      const r = await fetch(`${url}/api/admin/media-sync/status`, { headers });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: string }).error).toMatch(/Sign in/);
      const p = await fetch(`${url}/api/admin/pause`, { method: 'POST', headers });
      expect(p.status).toBe(401);
      const d = await fetch(`${url}/api/admin/roots/media`, { method: 'DELETE', headers });
      expect(d.status).toBe(401);
    }
    expect(engine.paused).toBe(false);
    expect(engine.cfg.roots).toHaveLength(1);
    expect((await fetch(`${url}/api/events?access_token=nope`)).status).toBe(401);
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    // the token file is private
    expect(statSync(join(engine.dataDir, 'admin-token')).mode & 0o077).toBe(0);
    expect(statSync(join(engine.dataDir, 'config.json')).mode & 0o077).toBe(0);
  });

  it("serves the seed's status fields and per-target detail, and never returns secrets", async () => {
    const { client, engine } = await setup();
    await waitForStatus(engine, (s) => s.safe_files === 2);
    const s = await client.call('status');
    for (const k of ['pending', 'uploading', 'synced', 'failed', 'skipped', 'total_files', 'total_size_bytes', 'synced_size_bytes'] as const) expect(typeof s[k]).toBe('number');
    expect(s.total_files).toBe(2);
    expect(s.total_size_bytes).toBe(3000);
    expect(s.targets.nas).toMatchObject({ synced_count: 2, pending: 0, failed: 0, state: 'online' });
    const cfg = await client.call('getConfig');
    expect(JSON.stringify(cfg)).not.toContain('S3RVER');
    const targets = await client.call('listTargets');
    expect(JSON.stringify(targets)).not.toContain('S3RVER');
  });

  it('adds, edits and removes folders and destinations, with sentences for bad input', async () => {
    const { client, base, nas, engine } = await setup();
    const more = join(base, 'more');
    mkdirSync(more);
    writeFile(more, 'x.jpg', bytes(500, 3));
    const root = await client.call('addRoot', { body: { path: more, label: 'More photos' } });
    expect(root.id).toBe('more-photos');
    await waitForStatus(engine, (s) => s.safe_files === 3, 20_000, 'new folder synced');
    await expect(client.call('addRoot', { body: { path: join(base, 'nope') } })).rejects.toMatchObject({ status: 400, body: { error: expect.stringMatching(/does not exist/) } });
    await expect(client.call('addRoot', { body: { path: 'relative/path' } })).rejects.toMatchObject({ status: 400 });
    await expect(client.call('addRoot', { body: { path: more } })).rejects.toMatchObject({ status: 409 });
    await client.call('updateRoot', { params: { id: 'more-photos' }, body: { exclude: ['**/*.tmp'] } });
    expect(engine.cfg.roots.find((r) => r.id === 'more-photos')!.exclude).toEqual(['**/*.tmp']);

    // a destination with an unknown field or a bad endpoint is refused naming the field
    await expect(client.call('addTarget', { body: { kind: 's3', label: 'Bad', bucket: 'nas', endpoint: 'not a url', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } })).rejects.toMatchObject({
      status: 400,
      body: { fields: expect.arrayContaining([expect.stringMatching(/endpoint/)]) },
    });
    // editing with the masked secret keeps the stored one
    const masked = (await client.call('listTargets'))[0]!;
    await client.call('updateTarget', { params: { id: 'nas' }, body: { label: 'The NAS', credentials: (masked as { credentials: unknown }).credentials } as Record<string, unknown> });
    const t = engine.cfg.targets[0]!;
    expect(t.label).toBe('The NAS');
    expect(t.kind === 's3' && t.credentials.secretAccessKey).toBe('S3RVER');
    // "files at once, at most": a number caps the lane; null (the form's empty field) goes back to automatic
    await client.call('updateTarget', { params: { id: 'nas' }, body: { concurrency: 2 } });
    expect(engine.cfg.targets[0]!.concurrency).toBe(2);
    expect((await client.call('status')).targets.nas!.sending).toMatchObject({ max: 2 });
    await client.call('updateTarget', { params: { id: 'nas' }, body: { concurrency: null } });
    expect(engine.cfg.targets[0]!.concurrency).toBeUndefined();
    expect((await client.call('status')).targets.nas!.sending).toMatchObject({ max: 8 }); // MinIO: a NAS
    // removing a destination keeps its objects
    const cloud = td.add(await startS3({ buckets: ['cloud'] }));
    const added = await client.call('addTarget', { body: { ...cloud.target('x'), id: undefined, label: 'Cloud' } as Record<string, unknown> });
    expect(added.id).toBe('cloud');
    await waitForStatus(engine, (s) => s.targets.cloud?.synced_count === 3, 20_000, 'new destination caught up');
    await client.call('removeTarget', { params: { id: 'cloud' } });
    expect(engine.cfg.targets.map((x) => x.id)).toEqual(['nas']);
    void nas;
  });

  it('tests a connection step by step and says which step failed', async () => {
    const { client, nas } = await setup();
    const ok = await client.call('testTargetById', { params: { id: 'nas' } });
    expect(ok.ok).toBe(true);
    expect(ok.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['put', 'get', 'delete']));
    const bad = await client.call('testTarget', { body: { ...nas.target('t'), bucket: 'missing-bucket' } as Record<string, unknown> });
    expect(bad.ok).toBe(false);
    expect(bad.message).toMatch(/missing-bucket/);
  });

  it('pauses and resumes a destination and everything; lists the queue with filters and paging; streams events', async () => {
    const { client, url, token, engine, media } = await setup();
    await waitForStatus(engine, (s) => s.safe_files === 2);
    const events: EngineEvent[] = [];
    const ac = new AbortController();
    const sse = fetch(`${url}/api/events?access_token=${token}`, { signal: ac.signal }).then(async (r) => {
      expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = r.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = chunk.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)) as EngineEvent);
        }
      }
    }).catch(() => undefined);

    const st = await client.call('pauseTarget', { params: { id: 'nas' } });
    expect(st.state).toBe('paused');
    writeFile(media, 'later.jpg', bytes(3000, 9));
    await waitForStatus(engine, (s) => s.total_files === 3 && s.targets.nas!.pending === 1, 20_000, 'queued while paused');
    await new Promise((r) => setTimeout(r, 500));
    expect(engine.status().targets.nas!.synced_count).toBe(2);
    await client.call('resumeTarget', { params: { id: 'nas' } });
    await waitForStatus(engine, (s) => s.safe_files === 3, 20_000, 'synced after resume');

    await client.call('pauseAll');
    expect((await client.call('status')).health).toBe('paused');
    await client.call('resumeAll');

    const page1 = await client.call('queue', { query: { limit: 2, offset: 0 } });
    expect(page1.total).toBe(3);
    expect(page1.items).toHaveLength(2);
    const page2 = await client.call('queue', { query: { limit: 2, offset: 2 } });
    expect(page2.items).toHaveLength(1);
    const found = await client.call('queue', { query: { q: 'later' } });
    expect(found.items.map((f) => f.key)).toEqual(['media/later.jpg']);
    expect(found.items[0]!.copies[0]).toMatchObject({ target_id: 'nas', state: 'synced' });
    expect((await client.call('queue', { query: { state: 'failed' } })).total).toBe(0);
    const file = await client.call('file', { query: { key: 'media/b/c.jpg' } });
    expect(file.size).toBe(2000);
    await expect(client.call('file', { query: { key: 'media/../etc/passwd' } })).rejects.toMatchObject({ status: 400 });

    await new Promise((r) => setTimeout(r, 700));
    ac.abort();
    await sse;
    expect(events[0]?.type).toBe('status');
    expect(events.some((e) => e.type === 'target' && e.state === 'paused')).toBe(true);
    expect(events.some((e) => e.type === 'copy' && e.file_key === 'media/later.jpg' && e.state === 'synced')).toBe(true);
    const log = await client.call('events', { query: { limit: 50 } });
    expect(log.some((e) => e.kind === 'target-paused')).toBe(true);
  });

  it('answers /metrics in Prometheus text format', async () => {
    const { url, token, engine } = await setup();
    await waitForStatus(engine, (s) => s.safe_files === 2);
    const r = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await r.text();
    expect(text).toMatch(/^# TYPE triplicate_files gauge$/m);
    expect(text).toMatch(/^triplicate_files 2$/m);
    expect(text).toMatch(/^triplicate_copies\{target="nas",state="synced"\} 2$/m);
    expect(text).toMatch(/^triplicate_target_up\{target="nas"\} 1$/m);
    // the process's own memory, as Prometheus client libraries name it (this test runs in-process)
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    expect(rss).toBeGreaterThan(10 * 2 ** 20);
    expect(rss).toBeLessThan(process.memoryUsage().rss * 2);
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
  });

  it('answers unknown routes 404, wrong methods 405 and bad JSON 400 in sentences', async () => {
    const { url, token } = await setup();
    const h = { authorization: `Bearer ${token}` };
    expect((await fetch(`${url}/api/admin/nothing-here`, { headers: h })).status).toBe(404);
    const m = await fetch(`${url}/api/admin/media-sync/status`, { method: 'DELETE', headers: h });
    expect(m.status).toBe(405);
    const b = await fetch(`${url}/api/admin/roots`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: '{not json' });
    expect(b.status).toBe(400);
    expect(((await b.json()) as { error: string }).error).toMatch(/not valid JSON/);
    await expect(new ApiClient({ baseUrl: 'http://127.0.0.1:1', token }).call('status')).rejects.toBeInstanceOf(ApiError);
  });
});
