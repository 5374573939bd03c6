// Files moved by hand: uploads from the web console, drops copied by path, browsing a destination,
// deleting and copying objects, and Save diagnostics.
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/shared/client';
import { startS3 } from '../helpers/s3';
import { bytes, sha256, startEngine, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

async function setup() {
  const base = td.dir('trip-files-');
  const media = join(base, 'media');
  writeFile(media, 'old/a.jpg', bytes(1000, 1));
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const cloud = td.add(await startS3({ buckets: ['cloud'] }));
  const engine = td.add(
    await startEngine(join(base, 'data'), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      targets: [nas.target('nas', { label: 'NAS', priority: 1 }), cloud.target('cloud', { label: 'Cloud', priority: 2 })],
    }),
  );
  const url = engine.endpoints.adminUrl!;
  const client = new ApiClient({ baseUrl: url, token: engine.token });
  await waitForStatus(engine, (s) => s.safe_files === 1);
  return { base, media, engine, client, url, token: engine.token };
}

/** Names and contents of the entries of a zip (stored or deflated), enough to check ours. */
function unzip(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (buf.readUInt32LE(i) === 0x04034b50) {
    const method = buf.readUInt16LE(i + 8);
    let csize = buf.readUInt32LE(i + 18);
    const nlen = buf.readUInt16LE(i + 26);
    const xlen = buf.readUInt16LE(i + 28);
    const name = buf.subarray(i + 30, i + 30 + nlen).toString('utf8');
    const start = i + 30 + nlen + xlen;
    const flags = buf.readUInt16LE(i + 6);
    if (flags & 8) {
      // sizes follow the data (yazl streams): find the data descriptor
      let j = start;
      while (buf.readUInt32LE(j) !== 0x08074b50) j++;
      csize = j - start;
      out.set(name, method === 8 ? inflateRawSync(buf.subarray(start, j)) : buf.subarray(start, j));
      i = j + 16;
      continue;
    }
    out.set(name, method === 8 ? inflateRawSync(buf.subarray(start, start + csize)) : buf.subarray(start, start + csize));
    i = start + csize;
  }
  return out;
}

describe('files moved by hand', () => {
  it('uploads a file from the browser into a folder, refuses a different one with the same name and any path outside', async () => {
    const { url, token, media, engine } = await setup();
    const up = (path: string, body: Buffer) =>
      fetch(`${url}/api/admin/upload?root=media&path=${encodeURIComponent(path)}&mtime=1700000000000`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body });
    const content = bytes(50_000, 7);
    const r = await up('dropped/é photo.jpg', content);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ key: 'media/dropped/é photo.jpg', size: 50_000 });
    expect(sha256(readFileSync(join(media, 'dropped', 'é photo.jpg')))).toBe(sha256(content));
    await waitForStatus(engine, (s) => s.safe_files === 2, 20_000, 'uploaded file synced');
    expect((await up('dropped/é photo.jpg', content)).status).toBe(200); // identical: fine
    const clash = await up('dropped/é photo.jpg', bytes(10, 8));
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: string }).error).toMatch(/different file/);
    expect(sha256(readFileSync(join(media, 'dropped', 'é photo.jpg')))).toBe(sha256(content));
    for (const bad of ['../escape.jpg', '/etc/x', 'a/../../b']) expect((await up(bad, bytes(5, 1))).status).toBe(400);
    expect((await fetch(`${url}/api/admin/upload?root=media&path=x.jpg`, { method: 'PUT', body: 'x' })).status).toBe(401);
  });

  it('copies dropped files and folders by path, skipping clashes and links', async () => {
    const { client, base, media, engine } = await setup();
    const outside = join(base, 'camera');
    writeFile(outside, 'DCIM/1.jpg', bytes(100, 1));
    writeFile(outside, 'DCIM/2.jpg', bytes(200, 2));
    writeFile(outside, 'a.jpg', bytes(300, 3));
    symlinkSync('/etc/passwd', join(outside, 'link.jpg'));
    writeFile(media, 'import/a.jpg', bytes(999, 9));
    const r = await client.call('importFiles', { body: { root: 'media', paths: [join(outside, 'DCIM'), join(outside, 'a.jpg'), join(outside, 'link.jpg'), join(base, 'missing.jpg')], dest_dir: 'import' } });
    expect(r.copied).toBe(2);
    expect(r.bytes).toBe(300);
    expect(r.skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/different file named "import\/a.jpg"/), expect.stringMatching(/link/), expect.stringMatching(/no longer there/)]);
    expect(readFileSync(join(media, 'import', 'DCIM', '2.jpg'))).toEqual(bytes(200, 2));
    await waitForStatus(engine, (s) => s.safe_files === 4, 20_000, 'imported files synced');
    await expect(client.call('importFiles', { body: { root: 'nope', paths: [outside] } })).rejects.toMatchObject({ status: 400 });
  });

  it('browses a destination like a folder, downloads, deletes and copies objects', async () => {
    const { client, url, token, media, engine } = await setup();
    writeFile(media, 'old/b.jpg', bytes(2000, 2));
    writeFile(media, 'new/c.jpg', bytes(3000, 3));
    await waitForStatus(engine, (s) => s.safe_files === 3, 20_000);
    const top = await client.call('browseTarget', { params: { id: 'nas' }, query: {} });
    expect(top.folders).toEqual(['media/']);
    const inside = await client.call('browseTarget', { params: { id: 'nas' }, query: { prefix: 'media/old/' } });
    expect(inside.objects.map((o) => [o.name, o.size, o.file_key])).toEqual([['a.jpg', 1000, 'media/old/a.jpg'], ['b.jpg', 2000, 'media/old/b.jpg']]);
    const paged = await client.call('browseTarget', { params: { id: 'nas' }, query: { prefix: 'media/old/', limit: 1 } });
    expect(paged.objects).toHaveLength(1);
    expect(paged.next_cursor).toBe('media/old/a.jpg');

    const dl = await fetch(`${url}/api/admin/targets/nas/object?key=media/old/b.jpg&access_token=${token}`);
    expect(dl.status).toBe(200);
    expect(dl.headers.get('content-disposition')).toMatch(/attachment/);
    expect(Buffer.from(await dl.arrayBuffer())).toEqual(bytes(2000, 2));

    // deleting the NAS copy of a file that is still in its folder: it is copied again
    await client.call('deleteObject', { params: { id: 'nas' }, body: { key: 'media/new/c.jpg' } });
    await waitForStatus(engine, (s) => s.safe_files === 3 && s.pending === 0, 20_000, 'copied again');
    expect((await client.call('browseTarget', { params: { id: 'nas' }, query: { prefix: 'media/new/' } })).objects).toHaveLength(1);

    // copy an object that only the cloud has into the NAS
    const cloudOnly = (await client.call('browseTarget', { params: { id: 'cloud' }, query: { prefix: 'media/old/' } })).objects[0]!;
    await client.call('deleteObject', { params: { id: 'nas' }, body: { key: cloudOnly.key } });
    const copied = await client.call('copyObject', { params: { id: 'cloud' }, body: { key: cloudOnly.key, to: 'nas' } });
    expect(copied.key).toBe(cloudOnly.key);
    const d2 = await fetch(`${url}/api/admin/targets/nas/object?key=${encodeURIComponent(cloudOnly.key)}&access_token=${token}`);
    expect(sha256(Buffer.from(await d2.arrayBuffer()))).toBe(sha256(bytes(1000, 1)));
  });

  it('saves diagnostics as a zip with the logs and a config without secrets', async () => {
    const { url, token } = await setup();
    const r = await fetch(`${url}/api/admin/diagnostics`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/zip');
    const entries = unzip(Buffer.from(await r.arrayBuffer()));
    expect([...entries.keys()]).toEqual(expect.arrayContaining(['config.redacted.json', 'status.json', 'events.json', 'system.json']));
    expect([...entries.keys()].some((k) => k.startsWith('logs/'))).toBe(true);
    const cfg = entries.get('config.redacted.json')!.toString('utf8');
    expect(cfg).toContain('"bucket": "nas"');
    expect(cfg).not.toContain('S3RVER');
  });
});
