// The engine sends what needs attention to a webhook (ntfy here) for a remote admin of a headless box.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startS3 } from '../helpers/s3';
import { bytes, startEngine, waitFor, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

it('posts to the webhook when a destination stops answering, and when it is back', async () => {
  const got: { path: string; headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.end('ok');
    });
  });
  td.add(hook);
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const port = (hook.address() as AddressInfo).port;
  const base = td.dir('trip-notify-');
  const media = join(base, 'media');
  writeFile(media, 'a.jpg', bytes(100, 1));
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  await nas.stop();
  const engine = await startEngine(
    join(base, 'data'),
    { siteName: 'City Museum', roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas.target('nas', { label: 'NAS' })], notifications: { webhookUrl: `http://127.0.0.1:${port}/ntfy.sh/museum-alerts` } },
    { notify: { targetOfflineAfterMs: 0 } },
  );
  td.add(engine);
  await waitFor(() => got.length >= 1, 20_000, 'offline message');
  expect(got[0]!.body).toMatch(/NAS/);
  await nas.start();
  await waitFor(() => got.some((g) => /answers again|back/i.test(g.body + JSON.stringify(g.headers))), 20_000, 'back message');
});
