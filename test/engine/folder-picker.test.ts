// The web console's folder picker (`listDirs` without a path) opens where the operator's folders
// are (issue #17, item 5): beside the folders already backed up, else the home folder, and for a
// service whose home is Triplicate's own data folder, the usual places for shared media.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/shared/client';
import { startEngine } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();
const HOME = process.env.HOME;
afterEach(() => {
  if (HOME === undefined) delete process.env.HOME;
  else process.env.HOME = HOME;
});

async function engineWith(roots: string[]) {
  const base = td.dir('trip-picker-');
  for (const r of roots) mkdirSync(join(base, r), { recursive: true });
  const engine = td.add(await startEngine(join(base, 'data'), { roots: roots.map((r, i) => ({ id: `r${i}`, label: r, path: join(base, r) })) }));
  return { base, engine, api: new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token }) };
}

describe('where the folder picker starts', () => {
  it('beside the folders already backed up (their common parent)', async () => {
    const { base, api } = await engineWith(['Photos/2024', 'Photos/2025', 'Scans']);
    expect((await api.call('listDirs', {})).path).toBe(base);
    const one = await engineWith(['Museum/Collection']);
    expect((await one.api.call('listDirs', {})).path).toBe(join(one.base, 'Museum'));
  });

  it('with no folder yet: the home folder', async () => {
    const { api } = await engineWith([]);
    expect((await api.call('listDirs', {})).path).toBe(homedir());
  });

  it('a service whose home is its own data folder: a place for shared media instead', async () => {
    const { engine, api } = await engineWith([]);
    process.env.HOME = engine.dataDir;
    const start = (await api.call('listDirs', {})).path;
    expect(start).not.toBe(engine.dataDir);
    expect(['/srv', '/mnt', '/media', '/home', '/']).toContain(start);
  });

  it('an explicit path is listed as asked', async () => {
    const { base, api } = await engineWith(['Scans']);
    expect((await api.call('listDirs', { query: { path: join(base, 'Scans') } })).path).toBe(join(base, 'Scans'));
  });
});
