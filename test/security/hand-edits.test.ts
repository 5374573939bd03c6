// Issue #16 item 7: config.json edited by hand while the engine runs is noticed (loaded when valid,
// refused with a sentence when not), and a save from the app never writes older settings over it.
// A relative folder path is refused in the API and in config.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfigPath } from '../../src/main/engine/config/config';
import { createEngine } from '../../src/main/engine/engine';
import { ApiClient, ApiError } from '../../src/shared/client';
import { startS3 } from '../helpers/s3';
import { bytes, startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

/** config.json as a person edits it: any field, any shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

const td = useTeardown();

async function setup() {
  const base = td.dir('trip-sec-hand-');
  const media = join(base, 'media');
  writeFile(media, 'a.jpg', bytes(1000, 1));
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const data = join(base, 'data');
  const engine = td.add(await startEngine(data, { siteName: 'Museum', roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas.target('nas', { label: 'NAS' })] }));
  const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  await waitForStatus(engine, (s) => s.safe_files === 1, 30_000, 'the first file backed up');
  const file = defaultConfigPath(data);
  /** Edit config.json the way a person with an editor does. */
  const edit = (change: (c: Loose) => void): string => {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Loose;
    change(c);
    const text = `${JSON.stringify(c, null, 4)}\n`;
    writeFileSync(file, text);
    return text;
  };
  const onDisk = () => JSON.parse(readFileSync(file, 'utf8')) as Loose;
  const events = (kind: string) => engine.catalog.events(0, 1000).filter((e) => e.kind === kind);
  return { base, media, data, engine, client, file, edit, onDisk, events };
}

describe('config.json edited by hand', () => {
  it('is picked up while the engine runs, and a later save from the app keeps the hand edit', async () => {
    const { base, engine, client, edit, onDisk, events } = await setup();
    const more = join(base, 'more');
    writeFile(more, 'm.jpg', bytes(700, 3));
    edit((c) => {
      c.siteName = 'Hand edited';
      c.roots.push({ id: 'more', label: 'More', path: more });
    });
    await waitFor(() => engine.cfg.siteName === 'Hand edited', 30_000, 'the engine to load the hand edit');
    expect(engine.cfg.roots.map((r) => r.id)).toEqual(['media', 'more']);
    await waitForStatus(engine, (s) => s.safe_files === 2, 30_000, 'the hand-added folder backed up');
    expect(events('config-reloaded').map((e) => e.level)).toEqual(['info']);
    expect(events('config-reloaded')[0]!.message).toMatch(/config\.json was changed/);

    // a save from the app now: on top of the hand edit, not over it
    await client.call('updateSettings', { body: { media: { crf: 30 } } });
    expect(onDisk()).toMatchObject({ siteName: 'Hand edited', media: { crf: 30 } });
    expect(onDisk().roots.map((r: { id: string }) => r.id)).toEqual(['media', 'more']);

    // the engine's own write is not taken for a hand edit: the next one is the second reload
    edit((c) => {
      c.siteName = 'Edited again';
    });
    await waitFor(() => engine.cfg.siteName === 'Edited again', 30_000, 'the second hand edit');
    expect(events('config-reloaded')).toHaveLength(2);
    expect(engine.cfg.media.crf).toBe(30);
  });

  it('a save from the app right after a hand edit never writes the old values back', async () => {
    const { engine, client, edit, onDisk } = await setup();
    edit((c) => {
      c.siteName = 'Hand edited';
    });
    // at once, before the engine may have noticed the edit
    let status = 200;
    try {
      await client.call('updateSettings', { body: { media: { crf: 31 } } });
    } catch (e) {
      status = (e as ApiError).status;
      expect(status).toBe(409);
      expect((e as ApiError).body.error).toMatch(/^config\.json was changed by hand at \d\d:\d\d; Triplicate loaded it\. Check the page and save again\.$/);
    }
    expect(onDisk().siteName).toBe('Hand edited');
    expect(engine.cfg.siteName).toBe('Hand edited');
    // saving again (or the first save, when the engine had already loaded the edit) keeps both
    if (status === 409) await client.call('updateSettings', { body: { media: { crf: 31 } } });
    expect(onDisk()).toMatchObject({ siteName: 'Hand edited', media: { crf: 31 } });
  });

  it('an invalid hand edit is reported as an error event naming the field; the running settings stay and the file is left as written', async () => {
    const { engine, client, file, edit, events } = await setup();
    const text = edit((c) => {
      c.siteName = 'Broken';
      c.sync.stabilityMs = -5;
    });
    await waitFor(() => events('config-invalid').length > 0, 30_000, 'an error event about the invalid config.json');
    const ev = events('config-invalid')[0]!;
    expect(ev.level).toBe('error');
    expect(ev.message).toMatch(/config\.json/);
    expect(ev.message).toMatch(/sync\.stabilityMs/);
    expect(ev.message).toMatch(/keeps/);
    expect(engine.cfg.siteName).toBe('Museum');
    expect(engine.cfg.sync.stabilityMs).toBeGreaterThan(0);
    // a save from the app does not overwrite the operator's (broken) file either
    await expect(client.call('updateSettings', { body: { media: { crf: 30 } } })).rejects.toMatchObject({ status: 409, body: { error: expect.stringMatching(/config\.json was changed by hand at \d\d:\d\d.*sync\.stabilityMs/s) } });
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(engine.cfg.media.crf).not.toBe(30);

    // a hand edit adding a relative folder path: refused the same way
    const rel = edit((c) => {
      c.sync.stabilityMs = 300;
      c.roots.push({ id: 'rel', label: 'Relative', path: 'photos' });
    });
    await waitFor(() => events('config-invalid').some((e) => /roots\[1\]\.path/.test(e.message)), 30_000, 'an error event about the relative path');
    expect(engine.cfg.roots.map((r) => r.id)).toEqual(['media']);
    expect(readFileSync(file, 'utf8')).toBe(rel);

    // fixed by hand: loaded
    edit((c) => {
      c.roots.pop();
    });
    await waitFor(() => engine.cfg.siteName === 'Broken', 30_000, 'the fixed file loaded');
  });

  it('a relative folder path is refused in the API and in config.json', async () => {
    const { base, engine, client, file } = await setup();
    const before = readFileSync(file, 'utf8');
    await expect(client.call('addRoot', { body: { path: 'media' } })).rejects.toMatchObject({ status: 400, body: { error: expect.stringMatching(/full folder path/) } });
    mkdirSync(join(base, 'usb'));
    await client.call('addTarget', { body: { kind: 'folder', label: 'USB', path: join(base, 'usb') } });
    const after = readFileSync(file, 'utf8');
    await expect(client.call('updateTarget', { params: { id: 'usb' }, body: { path: 'usb' } })).rejects.toMatchObject({ status: 400, body: { error: expect.stringMatching(/full folder path/) } });
    expect(engine.cfg.targets.find((t) => t.id === 'usb')).toMatchObject({ path: join(base, 'usb') });
    expect(readFileSync(file, 'utf8')).toBe(after);
    expect(before).not.toBe(after);

    // config.json written by hand with a relative path: the start is refused naming the field
    const data = join(base, 'data2');
    mkdirSync(data);
    writeFileSync(defaultConfigPath(data), JSON.stringify({ roots: [{ id: 'photos', label: 'Photos', path: 'photos' }], server: { adminPort: 0, downloadPort: 0 } }));
    let err: unknown;
    try {
      td.add(createEngine({ dataDir: data, adminPort: 0, downloadPort: 0 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/roots\[0\]\.path: .*full folder path/);
  });
});
