// The download server's own port is taken: backups go on, the operator is told why sharing is off.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { cleanup, startEngine, tempDir, waitFor, writeFile } from '../helpers/engine';

let blocker: Server;
let engine: Engine;
const dataDir = tempDir('trip-dl-port-');
const media = tempDir('trip-dl-port-media-');

beforeAll(async () => {
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  writeFile(media, 'a.txt', 'a');
  engine = await startEngine(dataDir, { roots: [{ id: 'media', label: 'M', path: media }], server: { downloadHost: '127.0.0.1', downloadPort: port } }, { downloadPort: undefined });
  silenceConsole();
});

afterAll(async () => {
  await engine?.stop();
  blocker.close();
  cleanup(dataDir, media);
});

it('a download port in use: the engine runs, the event says why, links are refused with a sentence', async () => {
  expect(engine.endpoints.adminUrl).toBeTruthy();
  expect(engine.endpoints.downloadUrl).toBeUndefined();
  const ev = engine.catalog.events(0, 100).find((e) => e.kind === 'download-server');
  expect(ev?.level).toBe('error');
  expect(ev?.message).toMatch(/^Downloads and shared links are off: port \d+ on 127\.0\.0\.1 is already used by another program\. Choose another download port/);
  await waitFor(() => !!engine.catalog.fileByPath('media', 'a.txt'), 15_000, 'a.txt scanned');
  const api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  const e = await api.call('createLink', { body: { key: 'media/a.txt', ttl_seconds: 60 } }).catch((x: ApiError) => x);
  expect(e).toBeInstanceOf(ApiError);
  expect((e as ApiError).status).toBe(503);
  expect((e as ApiError).message).toMatch(/Downloads are off/);
  expect(engine.catalog.db.prepare('SELECT count(*) AS n FROM links').get()).toEqual({ n: 0 }); // nothing half-made
});
