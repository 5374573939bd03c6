// The burst guard (sync/guard.ts) with a real engine, two s3rver destinations and files made here:
// ransomware rewrites 300 of 1,000 photos and videos with random bytes and renames them to
// `.locked` at full speed; the guard trips, (almost) nothing damaged reaches the destinations, and
// the roll-back puts all 1,000 back byte-exact. Normal work (a card of new photos, files renamed by
// the operator, videos converted to MP4) never trips it.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/shared/client';
import type { Engine } from '../../src/main/engine/engine';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import { Readable } from 'node:stream';
import { versionKey } from '../../src/shared/keys';
import { formatClock } from '../../src/shared/format';
import { cardState, heldFolderNote, heldTargetNote, missingToOffer } from '../../src/shared/status';
import { DAY_MS } from '../../src/main/engine/restore/retention';
import { bytes, sha256, sha256OfFile, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { backendOf, engineFor, forget, listAll, restoreOf, rig, teardown, type Rig } from '../restore/helpers';

let jpegBase: Buffer;

beforeAll(async () => {
  jpegBase = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).jpeg().toBuffer();
});

/** A real JPEG (sharp's), made unique by a comment segment of varied bytes right after its SOI. */
function jpeg(seed: number): Buffer {
  const n = 1500 + (seed % 500);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(n + 2);
  return Buffer.concat([jpegBase.subarray(0, 2), Buffer.from([0xff, 0xfe]), len, bytes(n, seed), jpegBase.subarray(2)]);
}

function box(type: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + payload.length);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, payload]);
}

/** An ISO media file with a real `ftyp` box ('isom' for MP4, 'qt  ' for QuickTime), then varied bytes. */
function video(seed: number, brand = 'isom'): Buffer {
  const ftyp = Buffer.concat([Buffer.from(brand, 'latin1'), Buffer.from([0, 0, 2, 0]), Buffer.from(`${brand}mp41`, 'latin1')]);
  return Buffer.concat([box('ftyp', ftyp), box('free', Buffer.alloc(8)), box('mdat', bytes(4000 + (seed % 1000), seed + 7))]);
}

function walk(dir: string, top = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, top));
    else out.push(relative(top, p).split(sep).join('/'));
  }
  return out;
}

function walkRel(root: string): string[] {
  return walk(root).sort();
}

/** Objects that hold content not among `expected` (by the SHA-256 in their metadata; a kept version is an original some noise replaced), and the current objects of `expected` that differ. */
async function damageOn(b: StorageBackend, expected: Map<string, string>): Promise<{ damaged: number; wrongCurrent: string[] }> {
  const good = new Set(expected.values());
  const current = new Map<string, string | undefined>();
  let damaged = 0;
  for (const k of await listAll(b, '')) {
    if (k.startsWith('.triplicate/')) {
      damaged++;
      continue;
    }
    const sha = (await b.head(k))?.sha256;
    current.set(k, sha);
    if (!sha || !good.has(sha)) damaged++;
  }
  return { damaged, wrongCurrent: [...expected].filter(([k, sha]) => current.get(k) !== sha).map(([k]) => k) };
}

const GUARD_TIMEOUT = 90_000;

/** The guard on, Media with 20 photos (IMG_0000.jpg…, contents from `seed`), and an empty second folder Other. */
async function twoFolders(seed: number): Promise<{ r: Rig; other: string }> {
  const r = await rig({ sync: { guard: { enabled: true } } });
  const other = join(r.base, 'other');
  mkdirSync(other, { recursive: true });
  r.cfg = { ...r.cfg, roots: [...(r.cfg.roots ?? []), { id: 'other', label: 'Other', path: other }] };
  for (let i = 0; i < 20; i++) writeFile(r.media, `IMG_${String(i).padStart(4, '0')}.jpg`, jpeg(seed + i));
  return { r, other };
}

describe('burst guard', () => {
  let r: Rig;
  let engine: Engine;

  afterAll(teardown);

  it('stops 300 files encrypted and renamed to .locked at full speed, and puts all 1,000 back', { timeout: 240_000 }, async () => {
    r = await rig({ sync: { guard: { enabled: true } } });
    for (const t of [r.nasT, r.cloudT]) t.concurrency = 8;
    const originals = new Map<string, Buffer>();
    for (let i = 0; i < 1000; i++) {
      const rel = i < 700 ? `photos/${String(Math.floor(i / 100))}/IMG_${String(i).padStart(4, '0')}.jpg` : `videos/CLIP_${String(i).padStart(4, '0')}.mp4`;
      const c = i < 700 ? jpeg(i + 1) : video(i + 1);
      originals.set(rel, c);
      writeFile(r.media, rel, c);
    }
    engine = await engineFor(r);
    await waitForStatus(engine, (s) => s.synced === 1000 && s.total_files === 1000 && !s.scanning, GUARD_TIMEOUT, '1,000 files on both destinations');
    const expected = new Map([...originals].map(([rel, c]) => [`media/${rel}`, sha256(c)]));

    // Ransomware: 200 photos and 100 videos rewritten with random bytes and renamed, as fast as this process can.
    const victims = [...originals.keys()].filter((_, i) => i % 7 < 2 || (i >= 700 && i % 3 === 0)).slice(0, 300);
    expect(victims.length).toBe(300);
    for (const rel of victims) {
      const p = join(r.media, ...rel.split('/'));
      writeFileSync(p, randomBytes(originals.get(rel)!.length));
      renameSync(p, `${p}.locked`);
    }
    const tripped = await waitForStatus(engine, (s) => (s.guard?.holds.length ?? 0) > 0, GUARD_TIMEOUT, 'the guard to trip');
    expect(tripped.health).toBe('failing');
    expect(tripped.summary).toMatch(/ransomware/);
    // every original gone and every .locked file seen: all 600 held back
    await waitFor(() => (engine.status().guard?.holds[0]?.files ?? 0) >= 600, GUARD_TIMEOUT, 'every damaged file held back');
    await waitFor(() => !engine.uploadsBusy(), GUARD_TIMEOUT, 'uploads to finish');
    const hold = engine.status().guard!.holds[0]!;
    expect(hold.files).toBe(600);
    expect(hold.counts.renamed + hold.counts.suspicious_new).toBe(300);
    expect(hold.counts.extension ?? 'locked').toBe('locked');
    expect(hold.summary).toMatch(/Media/);
    // the held .locked files are not "to copy" anywhere, the cards do not say "Working", and the
    // 300 originals gone from here are the guard's to put back, not "Bring back 300 missing files"
    const held = engine.status();
    expect({ pending: held.pending, uploading: held.uploading, held: held.held, missing: held.missing_local_files, offer: missingToOffer(held) }).toEqual({ pending: 0, uploading: 0, held: 300, missing: 300, offer: 0 });
    for (const t of Object.values(held.targets)) expect({ toCopy: t.pending + t.uploading, held: t.held, card: cardState(t) }).toEqual({ toCopy: 0, held: 300, card: 'held' });

    // What left for each destination before the trip; the current object of every other file is the original.
    const left: number[] = [];
    for (const t of [r.nasT, r.cloudT]) {
      const d = await damageOn(backendOf(t), expected);
      left.push(d.damaged);
      const untouched = [...expected.keys()].filter((k) => !victims.includes(k.slice('media/'.length)));
      expect(d.wrongCurrent.filter((k) => untouched.includes(k))).toEqual([]);
    }
    console.log(`[guard] damaged versions that reached the destinations before the trip: NAS ${left[0]}, Cloud ${left[1]}`);
    // measured 0 on both (a suspicious file's upload waits holdSuspiciousSeconds; the trip cancels it)
    for (const n of left) expect(n).toBeLessThanOrEqual(0);

    // The hold survives a restart.
    await engine.stop();
    forget(engine);
    engine = await engineFor(r);
    const again = await waitForStatus(engine, (s) => (s.guard?.holds.length ?? 0) > 0, GUARD_TIMEOUT, 'the hold after a restart');
    expect(again.guard!.holds[0]!.id).toBe(hold.id);

    // "Put everything back as it was": through the admin API, as the Overview's button does.
    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const res = await client.call('guardRollback', { body: { hold: hold.id } });
    expect(res.quarantined).toBe(300);
    expect(res.restore).toBeDefined();
    const done = await restoreOf(engine).waitFor(res.restore!.id, { timeoutMs: GUARD_TIMEOUT });
    expect(done.state).toBe('done');
    expect(done, JSON.stringify(done)).toMatchObject({ files_done: 300 });
    expect(engine.status().guard).toBeUndefined();

    // All 1,000 back byte-exact with their names, nothing else in the folder; the .locked files in the quarantine.
    expect(walkRel(r.media)).toEqual([...originals.keys()].sort());
    for (const [rel, c] of originals) expect(sha256OfFile(join(r.media, ...rel.split('/'))), rel).toBe(sha256(c));
    const q = join(r.data, 'quarantine');
    expect(walk(q).filter((p) => p.endsWith('.locked'))).toHaveLength(300);
    await waitForStatus(engine, (s) => s.synced === 1000 && s.total_files === 1000 && s.pending === 0, GUARD_TIMEOUT, 'everything safe again');
    for (const t of [r.nasT, r.cloudT]) expect((await damageOn(backendOf(t), expected)).wrongCurrent).toEqual([]);
  });

  it('never trips on normal work: a card of 500 photos, 200 files renamed, 300 videos converted to MP4', { timeout: 240_000 }, async () => {
    const n = await rig({ sync: { guard: { enabled: true } } });
    for (const t of [n.nasT, n.cloudT]) t.concurrency = 8;
    const movs: string[] = [];
    const jpgs: string[] = [];
    for (let i = 0; i < 500; i++) {
      if (i < 300) {
        const rel = `videos/MVI_${String(i).padStart(4, '0')}.mov`;
        writeFile(n.media, rel, video(i + 1, 'qt  '));
        movs.push(rel);
      } else {
        const rel = `photos/IMG_${String(i).padStart(4, '0')}.jpg`;
        writeFile(n.media, rel, jpeg(i + 1));
        jpgs.push(rel);
      }
    }
    const e = await engineFor(n);
    await waitForStatus(e, (s) => s.synced === 500 && !s.scanning, GUARD_TIMEOUT, 'the first 500 files on both destinations');

    // a card of 500 new photos
    for (let i = 0; i < 500; i++) writeFile(n.media, `card/DSC_${String(i).padStart(4, '0')}.jpg`, jpeg(10_000 + i));
    // 200 photos renamed by the operator (the same content under new names, in a new folder)
    for (const rel of jpgs) {
      const p = join(n.media, ...rel.split('/'));
      const to = join(n.media, 'wedding', rel.split('/').pop()!.replace('IMG_', 'Wedding_'));
      if (!existsSync(join(n.media, 'wedding'))) mkdirSync(join(n.media, 'wedding'));
      renameSync(p, to);
    }
    // 300 videos converted to MP4, the originals deleted
    for (const rel of movs) {
      writeFile(n.media, rel.replace(/\.mov$/, '.mp4'), video(20_000 + movs.indexOf(rel)));
      unlinkSync(join(n.media, ...rel.split('/')));
    }
    await waitForStatus(e, (s) => s.total_files - s.missing_local_files === 1000 && s.pending === 0 && s.uploading === 0 && !s.scanning, GUARD_TIMEOUT, 'the work backed up');
    // the deletions as the guard's timer sees them once they settled
    e.sync.guard.checkDeletes(Date.now() + 60_000);
    expect(e.status().guard).toBeUndefined();
    expect(statSync(join(n.media, 'wedding')).isDirectory()).toBe(true);

    // The same engine does trip on a burst: 60 photos rewritten as noise in place.
    const card = walkRel(join(n.media, 'card')).slice(0, 60);
    for (const rel of card) writeFileSync(join(n.media, 'card', rel), randomBytes(2000));
    await waitForStatus(e, (s) => (s.guard?.holds.length ?? 0) > 0, GUARD_TIMEOUT, 'the guard to trip on a real burst');
    const h = e.status().guard!.holds[0]!;
    expect(h.counts.rewritten).toBeGreaterThanOrEqual(50);
    // "These changes are mine": backed up after all
    const client = new ApiClient({ baseUrl: e.endpoints.adminUrl!, token: e.token });
    const acc = await client.call('guardAccept', { body: {} });
    expect(acc.accepted).toBeGreaterThanOrEqual(50);
    await waitForStatus(e, (s) => !s.guard && s.pending === 0 && s.uploading === 0, GUARD_TIMEOUT, 'the accepted changes backed up');
    const nas = backendOf(n.nasT);
    const noise = readFileSync(join(n.media, 'card', card[0]!));
    expect((await nas.head(`media/card/${card[0]}`))?.sha256).toBe(sha256(noise));
  });

  it('while a folder is held, "bring back every missing file" leaves it to the two buttons: the count, the list and the restore agree', { timeout: 240_000 }, async () => {
    const { r: m, other } = await twoFolders(50_000);
    for (let i = 0; i < 3; i++) writeFile(other, `o${i}.jpg`, jpeg(51_000 + i));
    const e = await engineFor(m);
    await waitForStatus(e, (s) => s.synced === 23 && !s.scanning, GUARD_TIMEOUT, '23 files on both destinations');

    // The operator deletes one photo of Other; a burst in Media rewrites 12 photos as noise, then deletes one.
    unlinkSync(join(other, 'o1.jpg'));
    for (let i = 1; i <= 12; i++) writeFileSync(join(m.media, `IMG_${String(i).padStart(4, '0')}.jpg`), randomBytes(2000));
    await waitForStatus(e, (s) => (s.guard?.holds.length ?? 0) > 0, GUARD_TIMEOUT, 'the guard to trip');
    unlinkSync(join(m.media, 'IMG_0019.jpg'));
    await waitFor(() => e.file('media/IMG_0019.jpg')?.local === 'missing' && e.file('other/o1.jpg')?.local === 'missing' && (e.status().guard?.holds[0]?.files ?? 0) >= 13, GUARD_TIMEOUT, 'both deletions seen');
    await waitFor(() => !e.uploadsBusy(), GUARD_TIMEOUT, 'uploads to finish');
    const s = e.status();
    const hold = s.guard!.holds[0]!;
    expect({ missing: s.missing_local_files, inHeld: hold.missing, offer: missingToOffer(s) }).toEqual({ missing: 2, inHeld: 1, offer: 1 });
    // the 12 rewritten photos are held (none of them counts as synced), whether the trip came before or after each was seen
    expect({ held: s.held, synced: s.synced, perTarget: Object.values(s.targets).map((t) => t.held) }).toEqual({ held: 12, synced: 11, perTarget: [12, 12] });

    // The Restore page's list asks as the page does: it counts what the sentence above it offers.
    const client = new ApiClient({ baseUrl: e.endpoints.adminUrl!, token: e.token });
    const list = await client.call('queue', { query: { state: 'all', local: 'missing', held: 'exclude' } });
    expect({ total: list.total, keys: list.items.map((f) => f.key) }).toEqual({ total: 1, keys: ['other/o1.jpg'] });
    expect((await client.call('queue', { query: { state: 'all', local: 'missing' } })).total).toBe(2);

    // Asked for by name, the held folder is refused with the sentence that says where to answer.
    await expect(client.call('restoreMissing', { body: { root: 'media' } })).rejects.toThrow(heldFolderNote(hold));
    await expect(client.call('restoreMissing', { body: { prefix: 'media/IMG_0019.jpg' } })).rejects.toThrow(/Media is on hold since/);
    // "Bring back all 1": exactly the file it counts; the note names the held folder and its buttons.
    const run = await client.call('restoreMissing', { body: {} });
    expect(run.files_total).toBe(missingToOffer(s));
    expect(run.message).toBe(heldFolderNote(hold));
    expect(run.message).toMatch(/Its 1 missing file is not brought back from here until you answer on the Overview: “Put everything back as it was at \d\d:\d\d” or “These changes are mine: back them up”\.$/);
    expect((await restoreOf(e).waitFor(run.id, { timeoutMs: GUARD_TIMEOUT })).state).toBe('done');
    expect(existsSync(join(other, 'o1.jpg'))).toBe(true);
    expect(existsSync(join(m.media, 'IMG_0019.jpg'))).toBe(false);

    // Each destination holds the 12 rewritten photos: its line says so with the number its card shows.
    const st = await waitForStatus(e, (x) => x.missing_local_files === 1, GUARD_TIMEOUT, 'o1.jpg back');
    for (const t of Object.values(st.targets)) expect(heldTargetNote(t, st.guard!.holds)).toBe(`Holding 12 changes from Media since ${formatClock(hold.tripped_at)}.`);

    // Answered ("these changes are mine"): the folder's missing file is offered again, and listed.
    e.sync.guard.accept();
    const after = e.status();
    expect({ missing: after.missing_local_files, offer: missingToOffer(after) }).toEqual({ missing: 1, offer: 1 });
    expect((await client.call('queue', { query: { state: 'all', local: 'missing', held: 'exclude' } })).total).toBe(1);
    for (const t of Object.values(after.targets)) expect(heldTargetNote(t, after.guard?.holds ?? [])).toBeUndefined();
  });

  it('retention leaves a held folder alone until the hold ends; other folders are pruned as usual', { timeout: 240_000 }, async () => {
    const { r: p, other } = await twoFolders(30_000);
    writeFile(other, 'keep.jpg', jpeg(31_000));
    const e = await engineFor(p);
    await waitForStatus(e, (s) => s.synced === 21 && !s.scanning, GUARD_TIMEOUT, '21 files on both destinations');

    // Three old previous contents of one file in each folder on the NAS, older than any restore point.
    const nas = backendOf(p.nasT);
    const now = Date.now();
    for (const [root, rel] of [['media', 'IMG_0000.jpg'], ['other', 'keep.jpg']] as const) {
      for (let i = 0; i < 3; i++) {
        const savedAt = now - (100 + i) * DAY_MS;
        const c = bytes(300, 40_000 + i);
        const key = versionKey('', '.triplicate/versions/', root, rel, savedAt, sha256(c));
        await nas.put(key, { size: c.length, open: () => Readable.from([c]) }, { sha256: sha256(c), mtimeMs: savedAt });
        e.catalog.addVersion({ target_id: 'nas', root_id: root, rel_path: rel, object_key: key, sha256: sha256(c), size: c.length, mtime_ms: savedAt, saved_at: savedAt, reason: 'overwritten' });
      }
    }
    const oldOf = async (rel: string) => (await listAll(nas, '.triplicate/versions/')).filter((k) => k.includes(`/${rel}/`));

    // A burst in Media: 12 photos rewritten as noise, then one deleted (deleted 100 days ago, as far as retention can tell).
    for (let i = 1; i <= 12; i++) writeFileSync(join(p.media, `IMG_${String(i).padStart(4, '0')}.jpg`), randomBytes(2000));
    await waitForStatus(e, (s) => (s.guard?.holds.length ?? 0) > 0, GUARD_TIMEOUT, 'the guard to trip');
    unlinkSync(join(p.media, 'IMG_0019.jpg'));
    await waitFor(() => e.file('media/IMG_0019.jpg')?.local === 'missing' && (e.status().guard?.holds[0]?.files ?? 0) >= 13, GUARD_TIMEOUT, 'the deletion held back');
    e.catalog.db.prepare(`UPDATE versions SET saved_at = ? WHERE reason = 'deleted' AND root_id = 'media' AND rel_path = 'IMG_0019.jpg'`).run(now - 100 * DAY_MS);

    const svc = restoreOf(e);
    const held = await svc.pruneNow({ now, target: 'nas' });
    expect(held.targets[0]).toMatchObject({ versions_deleted: 3, files_expired: 0 });
    expect(held.targets[0]!.versions_held).toBeGreaterThanOrEqual(4); // 3 old versions and the deletion's row
    expect(held.summary).toMatch(/burst guard holds/);
    expect(await oldOf('IMG_0000.jpg')).toHaveLength(3);
    expect(await oldOf('keep.jpg')).toHaveLength(0);
    expect(await nas.head('media/IMG_0019.jpg')).not.toBeNull();

    // The hold ends ("These changes are mine"): the next prune does what retention says.
    e.sync.guard.accept();
    const after = await svc.pruneNow({ now, target: 'nas' });
    expect(after.targets[0]).toMatchObject({ versions_held: 0, files_expired: 1 });
    expect(await oldOf('IMG_0000.jpg')).toHaveLength(0);
    expect(await nas.head('media/IMG_0019.jpg')).toBeNull();
  });
});
