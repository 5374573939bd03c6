// The deterministic parts of the bad-input suite (the randomized ones run in run.mjs):
//   - every admin API route without a token, with a wrong one, or with the token in the query
//     where only a header counts: 401, and nothing changes;
//   - the config fuzzer with a fixed seed: every mutated config loads or is refused with a
//     sentence naming the field, and the file is left as it was.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUERY_TOKEN_ROUTES, STREAM_ROUTES, buildPath, routes } from '../../src/shared/api';
import { defaultConfigPath } from '../../src/main/engine/config/config';
import { startEngine, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';
import { fuzzConfigs } from './inputs';

const td = useTeardown();

describe('admin API without the right token', () => {
  it('answers 401 on every route and changes nothing', async () => {
    const base = td.dir('trip-auth-');
    const media = join(base, 'media');
    writeFile(media, 'a.jpg', 'photo');
    const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [], sync: { stabilityMs: 0 } }));
    await engine.initialScanDone();
    const url = engine.endpoints.adminUrl!;
    const token = engine.token;
    const cfgBefore = readFileSync(defaultConfigPath(engine.dataDir), 'utf8');
    const before = { paused: engine.paused, files: engine.status().total_files, events: engine.catalog.events(0, 1000).length };
    const bad: (Record<string, string> | null)[] = [
      null,
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${token.slice(0, -1)}` },
      { authorization: `Bearer ${token}x` },
      { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` },
      { authorization: token },
    ];
    const failures: string[] = [];
    let tried = 0;
    for (const [name, def] of Object.entries(routes)) {
      if (name === 'login') continue; // the password exchange: open by design
      const path = buildPath(def.path, Object.fromEntries([...def.path.matchAll(/:([a-zA-Z_]+)/g)].map((m) => [m[1]!, 'media'])));
      for (const h of bad) {
        const res = await fetch(`${url}${path}`, {
          method: def.method,
          headers: { 'content-type': 'application/json', ...(h ?? {}) },
          body: def.method === 'GET' ? undefined : JSON.stringify({ paused: true, path: '/', key: 'media/a.jpg', roots: [], targets: [] }),
        });
        await res.arrayBuffer();
        tried++;
        if (res.status !== 401) failures.push(`${def.method} ${path} ${JSON.stringify(h)}: ${res.status}`);
      }
      // the token in the query string only counts for the stream routes (EventSource, <img>)
      const res = await fetch(`${url}${path}?access_token=${encodeURIComponent(token)}`, { method: def.method, headers: { 'content-type': 'application/json' }, body: def.method === 'GET' ? undefined : '{}' });
      await res.arrayBuffer();
      tried++;
      if (res.status !== 401) failures.push(`${def.method} ${path} with ?access_token: ${res.status}`);
    }
    // the raw routes (event stream, metrics, uploads, downloads…): all but the health check
    for (const [name, p0] of Object.entries(STREAM_ROUTES)) {
      if (name === 'health') continue;
      const p = p0.replace(/:[a-zA-Z_]+/g, 'media');
      for (const method of ['GET', 'PUT', 'POST']) {
        const res = await fetch(`${url}${p}?key=media/a.jpg&root=media&path=x.jpg`, { method, headers: { authorization: 'Bearer wrong' }, body: method === 'GET' ? undefined : 'data' });
        await res.body?.cancel();
        tried++;
        if (res.status !== 401 && res.status !== 405) failures.push(`${method} ${p} with a wrong token: ${res.status}`);
      }
    }
    for (const name of QUERY_TOKEN_ROUTES) {
      const p = (STREAM_ROUTES as Record<string, string>)[name];
      if (!p || p.includes(':')) continue;
      const res = await fetch(`${url}${p}?access_token=wrong`);
      await res.body?.cancel();
      tried++;
      if (res.status !== 401) failures.push(`GET ${p}?access_token=wrong: ${res.status}`);
    }
    expect(failures).toEqual([]);
    expect(tried).toBeGreaterThan(300);
    expect(readFileSync(defaultConfigPath(engine.dataDir), 'utf8')).toBe(cfgBefore);
    expect({ paused: engine.paused, files: engine.status().total_files, events: engine.catalog.events(0, 1000).length }).toEqual(before);
    // and the right token still works
    const ok = await fetch(`${url}${routes.status.path}`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
  });
});

describe('config fuzzer (fixed seed)', () => {
  it('refuses every broken config with a sentence naming the field, never crashes, never touches the file', () => {
    const dir = td.dir('trip-fuzz-');
    const out = fuzzConfigs(dir, 20260601, 400);
    expect(out.problems).toEqual([]);
    expect(out.tried).toBe(400);
    expect(out.refused).toBeGreaterThan(300);
  });
});
