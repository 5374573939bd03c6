// Issue #17, items 3 and 4: every sentence and count of the status agrees with the cards, and the
// seed's top-level fields count files.
//
// 1. A property test over generated states (destinations up, down, paused, turned off; files
//    missing here, failed, converting; scanning; no files; no destinations): the counts are built
//    from the catalog's per-file rows as the engine builds them, then checked against a plain count
//    of the generated files, and the sentence against those counts.
// 2. A real engine with two s3rver destinations: the Cloud paused, files deleted here.
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CopyState, SyncStatus, TargetState, TargetStatus } from '../../src/shared/api';
import { cardState, countFiles, guardSentence, heldPerTarget, missingToOffer, summarize, type FileStateRow } from '../../src/shared/status';
import { iconFor, trayState } from '../../src/main/desktop/logic/tray';
import { startS3 } from '../helpers/s3';
import { rng } from '../robustness/lib';
import { bytes, startEngine, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

// ---- generated states ---------------------------------------------------------------------------

const COPY_STATES: CopyState[] = ['pending', 'uploading', 'synced', 'failed', 'skipped'];
const TARGETS = [
  { id: 'nas', label: 'NAS' },
  { id: 'cloud', label: 'Cloud' },
  { id: 'usb', label: 'USB disk' },
];

interface World {
  folders: number;
  folderProblem?: string;
  targets: { id: string; label: string; state: TargetState }[];
  /** per file: here or not, and its copy on each destination (none: no copy row yet); held: the burst guard holds it back (its folder is `held`) */
  files: { local: 'present' | 'missing'; size: number; copies: Record<string, CopyState | undefined>; folder?: 'media' | 'other'; held?: boolean }[];
  scanning: boolean;
  paused: boolean;
  converting: { active: number; queued: number } | null;
  /** The burst guard holds the folder "media" (the files are then in "media" or "other"). */
  hold?: boolean;
}

function generate(seed: number): World {
  const r = rng(Math.imul(seed, 2654435761) ^ 0x9e3779b9); // nearby seeds start far apart
  const int = (n: number) => r.int(0, n - 1);
  const nTargets = r.pick([0, 1, 2, 2, 2, 2, 3, 3]);
  const targets = TARGETS.slice(0, nTargets).map((t) => ({ ...t, state: r.pick<TargetState>(['online', 'online', 'online', 'online', 'unknown', 'offline', 'paused', 'paused', 'disabled']) }));
  const nFiles = r.pick([0, 1, 2, 3, 5, 8, 13, 15, 20]);
  // Most files are safe everywhere; a few are not (as on a real day), in every combination.
  const calm = r.chance(0.4);
  const files: World['files'] = [];
  for (let i = 0; i < nFiles; i++) {
    const local = r.chance(calm ? 0.1 : 0.2) ? 'missing' : 'present';
    const copies: Record<string, CopyState | undefined> = {};
    const settled = r.chance(calm ? 0.85 : 0.5);
    for (const t of targets) {
      if (settled) copies[t.id] = 'synced';
      else if (t.state === 'paused' && r.chance(0.6)) copies[t.id] = r.pick(['pending', 'pending', 'synced']);
      else copies[t.id] = r.chance(0.1) ? undefined : r.pick(COPY_STATES);
    }
    files.push({ local, size: 100 + int(5000), copies });
  }
  const w: World = {
    folders: r.chance(0.05) ? 0 : 1,
    ...(r.chance(0.05) ? { folderProblem: 'The folder "Media" cannot be read: the USB disk is not plugged in.' } : {}),
    targets,
    files,
    scanning: r.chance(0.1),
    paused: r.chance(0.08),
    converting: r.chance(0.1) ? { active: int(2), queued: int(3) } : null,
  };
  // (drawn last, so the states above are those of the seeds before holds were generated)
  if (nFiles > 0 && r.chance(0.2)) {
    // a burst in "media": its changed and new files wait (a copy pending, none yet, one that
    // finished or was running before the trip), its deleted files keep their copies
    w.hold = true;
    w.folders = 2;
    for (const f of files) {
      f.folder = r.chance(0.7) ? 'media' : 'other';
      if (f.folder !== 'media' || !r.chance(0.6)) continue;
      f.held = true;
      if (f.local === 'present') for (const t of targets) f.copies[t.id] = r.pick<CopyState | undefined>(['pending', 'pending', 'pending', undefined, 'synced', 'uploading']);
    }
  }
  return w;
}

/** The per-file rows as the catalog keeps them (copy_sig: "<target>:<state>" by target id). */
function rowsOf(w: World, only: (f: World['files'][number]) => boolean = () => true): FileStateRow[] {
  const m = new Map<string, FileStateRow>();
  for (const f of w.files.filter(only)) {
    const sig = Object.entries(f.copies)
      .filter(([, s]) => s !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([t, s]) => `${t}:${s}`)
      .join(' ');
    const key = `${sig}|${f.local}`;
    const row = m.get(key) ?? { sig, local_state: f.local, n: 0, bytes: 0 };
    row.n += 1;
    row.bytes += f.size;
    m.set(key, row);
  }
  return [...m.values()];
}

const waitingOf = (t: TargetStatus) => t.pending + t.uploading;

/** The status as the engine assembles it, from the world (targets in priority order). */
function statusOf(w: World): SyncStatus {
  const enabled = w.targets.filter((t) => t.state !== 'disabled');
  const targets: Record<string, TargetStatus> = {};
  const copies = { pending: 0, uploading: 0, synced: 0, failed: 0, skipped: 0 };
  const perTarget: Record<string, number> = {};
  const heldRows = rowsOf(w, (f) => f.held === true);
  for (const t of w.targets) {
    const c = (s: CopyState) => w.files.filter((f) => f.copies[t.id] === s).length;
    const held = heldPerTarget(heldRows, t.id);
    targets[t.id] = {
      label: t.label,
      state: t.state,
      synced_count: c('synced'),
      synced_bytes: w.files.filter((f) => f.copies[t.id] === 'synced').reduce((a, f) => a + f.size, 0),
      pending: c('pending') - held.pending,
      uploading: c('uploading'),
      failed: c('failed'),
      skipped: c('skipped'),
      held: held.held,
      rate_bps: 0,
      ...(t.state === 'offline' ? { offline_since: Date.UTC(2026, 0, 5, 9, 30), next_try_at: Date.UTC(2026, 0, 5, 9, 45) } : {}),
    };
    perTarget[`${t.id}_synced_count`] = c('synced');
    if (t.state !== 'disabled') for (const s of COPY_STATES) copies[s] += c(s);
  }
  const s: SyncStatus = {
    ...countFiles(rowsOf(w), enabled.map((t) => t.id), heldRows),
    ...perTarget,
    copies,
    targets,
    scanning: w.scanning,
    paused: w.paused,
    summary: '',
    health: 'green',
    started_at: 0,
    now: 0,
  };
  if (w.converting) s.transcoding = w.converting;
  if (w.hold) {
    const held = w.files.filter((f) => f.held);
    const counts = { rewritten: held.filter((f) => f.local === 'present').length, suspicious_new: 0, renamed: 0, deleted: held.filter((f) => f.local === 'missing').length };
    const at = { root_label: 'Media', tripped_at: Date.UTC(2026, 0, 5, 21, 2), since: Date.UTC(2026, 0, 5, 21, 0), counts };
    const missing = w.files.filter((f) => f.folder === 'media' && f.local === 'missing').length;
    s.guard = { holds: [{ id: 1, root_id: 'media', ...at, files: held.length, missing, summary: guardSentence(at) }] };
  }
  Object.assign(s, summarize(s, { folders: w.folders, ...(w.folderProblem ? { folderProblem: w.folderProblem } : {}) }));
  return s;
}

/** The file-level truth, counted plainly from the generated files. */
function truth(w: World) {
  const enabled = w.targets.filter((t) => t.state !== 'disabled');
  const states = w.files.map((f): CopyState | 'held' => {
    // a held file that would wait to be copied is held: nothing of it can go
    const waiting = f.held ? 'held' : 'pending';
    const cs = enabled.map((t) => f.copies[t.id] ?? (f.local === 'present' ? 'pending' : 'skipped'));
    if (enabled.length && cs.every((c) => c === 'synced')) return 'synced';
    if (!enabled.length) return waiting;
    for (const s of ['failed', 'uploading', 'pending', 'skipped'] as const) if (cs.includes(s)) return s === 'pending' ? waiting : s;
    return 'synced';
  });
  const count = (s: CopyState | 'held') => states.filter((x) => x === s).length;
  const everywhere = w.files.filter((_, i) => states[i] === 'synced');
  return {
    enabled,
    states,
    counts: { pending: count('pending'), uploading: count('uploading'), synced: count('synced'), failed: count('failed'), skipped: count('skipped'), held: count('held') },
    safeHere: everywhere.filter((f) => f.local === 'present').length,
    keptElsewhere: everywhere.filter((f) => f.local === 'missing').length,
    missing: w.files.filter((f) => f.local === 'missing').length,
    allSafe: w.files.length > 0 && enabled.length > 0 && everywhere.length === w.files.length && w.files.every((f) => f.local === 'present'),
  };
}

/** Numbers in the sentence, without clock times and byte sizes. */
function numbersIn(sentence: string): number[] {
  const plain = sentence.replace(/\d\d:\d\d/g, ' ').replace(/\([\d.,]+ (bytes?|KB|MB|GB|TB|PB)\)/g, ' ');
  return [...plain.matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));
}

function check(w: World, s: SyncStatus): void {
  const t = truth(w);
  const labels = (ids: { label: string }[]) => ids.map((x) => x.label);
  // the seed's sum, and the file-level counts equal a plain count of the files
  expect(s.pending + s.uploading + s.synced + s.failed + s.skipped + s.held).toBe(s.total_files);
  expect({ pending: s.pending, uploading: s.uploading, synced: s.synced, failed: s.failed, skipped: s.skipped, held: s.held }).toEqual(t.counts);
  expect(s.total_files).toBe(w.files.length);
  expect(s.safe_files).toBe(t.counts.synced);
  expect(s.missing_local_files).toBe(t.missing);
  expect(s.missing_safe_files).toBe(t.keptElsewhere);
  expect(s.synced_size_bytes).toBe(w.files.filter((_, i) => t.states[i] === 'synced').reduce((a, f) => a + f.size, 0));
  // per destination, as the seed: <id>_synced_count
  for (const x of w.targets) expect(s[`${x.id}_synced_count`]).toBe(w.files.filter((f) => f.copies[x.id] === 'synced').length);
  // a card's "N files to copy" counts only files that can go; the held ones are "N changes held",
  // and a card with nothing that can go does not say "Working"
  for (const x of w.targets) {
    const st = s.targets[x.id]!;
    expect(waitingOf(st), `${x.label} to copy`).toBe(w.files.filter((f) => !f.held && (f.copies[x.id] === 'pending' || f.copies[x.id] === 'uploading')).length + w.files.filter((f) => f.held && f.copies[x.id] === 'uploading').length);
    expect(st.held, `${x.label} held`).toBe(w.files.filter((f) => f.held && (f.copies[x.id] === 'pending' || (f.copies[x.id] === undefined && f.local === 'present'))).length);
    const card = cardState(st);
    if (card === 'online' || card === 'unknown') expect(waitingOf(st) > 0 || st.held === 0, `${x.label}: "Working" with only held changes`).toBe(true);
    if (card === 'held') expect(st.held > 0 && waitingOf(st) === 0).toBe(true);
  }
  // "Bring back N missing files" offers the files a hold does not answer for
  expect(missingToOffer(s)).toBe(w.files.filter((f) => f.local === 'missing' && !(w.hold && f.folder === 'media')).length);
  if (w.hold) {
    expect(s.health).toBe('failing');
    expect(s.summary).toBe(s.guard!.holds[0]!.summary);
    return;
  }

  const sentence = s.summary;
  // "All ... safe" only when every file is on every destination and here
  if (/\bAll\b[^.;]*\bsafe\b/.test(sentence) || /^The 1 file[^.;]*\bsafe\b/.test(sentence)) expect(t.allSafe, sentence).toBe(true);
  // ... and it is said when that is so and nothing else is going on
  const quiet = !w.paused && !w.scanning && !w.folderProblem && w.folders > 0 && !(w.converting && w.converting.active > 0) && t.enabled.every((x) => x.state === 'online' || x.state === 'unknown');
  if (t.allSafe && quiet) {
    expect(sentence).toMatch(/^(All [\d,]+ files|The 1 file) \([^)]+\) (are|is) safe in \d+ places\.$/);
    expect(s.health).toBe('green');
  }
  // "N files are safe in P places": N files are on every destination and here; P = destinations + 1
  for (const m of sentence.matchAll(/([\d,]+) files? (?:is|are) safe in (\d+) places/g)) {
    expect(Number(m[1]!.replace(/,/g, '')), sentence).toBe(t.safeHere);
    expect(Number(m[2]), sentence).toBe(t.enabled.length + 1);
  }
  for (const m of sentence.matchAll(/All ([\d,]+) files[^.;]* safe in (\d+) places/g)) {
    expect(Number(m[1]!.replace(/,/g, '')), sentence).toBe(w.files.length);
    expect(Number(m[2]), sentence).toBe(t.enabled.length + 1);
  }
  // files gone from here: the count of those every destination keeps
  for (const m of sentence.matchAll(/([\d,]+) (?:files? )?(?:is|are) no longer on this computer and (?:is|are) kept on ([^.;]+)/g)) {
    expect(Number(m[1]!.replace(/,/g, '')), sentence).toBe(t.keptElsewhere);
    expect(m[2], sentence).toBe(joinNames(labels(t.enabled)));
  }
  // never "Copying ... to" a destination that is paused, offline or turned off, nor one with nothing to copy
  const copying = /Copying ([^…]*)…/.exec(sentence);
  if (copying) {
    for (const x of w.targets) {
      const st = s.targets[x.id]!;
      const named = new RegExp(`\\b${x.label}\\b`).test(copying[1]!);
      if (x.state === 'paused' || x.state === 'offline' || x.state === 'disabled' || waitingOf(st) === 0) expect(named, `${sentence} names ${x.label} (${x.state})`).toBe(false);
    }
    // "Copying 5 files to NAS and 3 to Cloud": each number is that destination's "to copy"
    for (const m of copying[1]!.matchAll(/([\d,]+) (?:files? )?to ([A-Za-z ]+?)(?= and |,|$)/g)) {
      const x = w.targets.find((y) => m[2]!.split(/ and |, /).includes(y.label));
      expect(x, sentence).toBeDefined();
      expect(Number(m[1]!.replace(/,/g, '')), sentence).toBe(waitingOf(s.targets[x!.id]!));
    }
  }
  // "N files are waiting for X": X's own count
  for (const m of sentence.matchAll(/([\d,]+) (?:files? )?(?:is|are) waiting for ([A-Za-z ]+?)(?: \(paused\)|:|;|\.|,| and )/g)) {
    const x = w.targets.find((y) => y.label === m[2]);
    expect(x, `${sentence}: waiting for "${m[2]}"`).toBeDefined();
    expect(Number(m[1]!.replace(/,/g, '')), sentence).toBe(waitingOf(s.targets[x!.id]!));
    if (/\(paused\)/.test(m[0])) expect(x!.state).toBe('paused');
  }
  // a destination with something to copy that is paused is named as paused, never as being copied to
  const pausedWaiting = t.enabled.filter((x) => x.state === 'paused' && waitingOf(s.targets[x.id]!) > 0);
  if (!w.paused && t.counts.failed === 0 && !w.folderProblem && w.folders > 0 && !t.enabled.some((x) => x.state === 'offline') && !w.scanning)
    for (const x of pausedWaiting) expect(sentence).toContain(`${x.label} (paused)`);
  // every number is a count of the status
  const counts = new Set<number>([
    s.pending, s.uploading, s.synced, s.failed, s.skipped, s.total_files, s.safe_files, s.missing_local_files, s.missing_safe_files,
    s.pending + s.uploading, t.safeHere, t.enabled.length + 1, s.transcoding?.active ?? -1, s.transcoding?.queued ?? -1,
    ...Object.values(s.targets).flatMap((x) => [waitingOf(x), x.failed, x.synced_count]),
  ]);
  for (const n of numbersIn(sentence)) expect(counts.has(n), `${n} in "${sentence}" is not a count of the status`).toBe(true);
  // the colour agrees with the sentence
  if (s.health === 'green') {
    expect(sentence).not.toMatch(/waiting|paused|could not|not answered|no longer on this computer|Copying|Looking/);
    expect(t.counts.failed + t.counts.pending + t.counts.uploading).toBe(0);
    expect(t.keptElsewhere).toBe(0);
  }
  if (/could not be copied/.test(sentence)) expect(s.health).toBe('failing');
  if (t.counts.failed > 0 && !w.paused && w.folders > 0 && t.enabled.length > 0) {
    expect(s.health).toBe('failing');
    expect(sentence).toMatch(new RegExp(`^${t.counts.failed.toLocaleString('en-US')} files? could not be copied`));
  }
  // a paused destination while others are being copied to: the colour says what happens now
  if (/\(paused\)|is paused|are paused|Backups are paused/.test(sentence)) expect(s.health).toBe(/^(Copying|Looking|Converting)/.test(sentence) ? 'syncing' : 'paused');
  if (/not answered/.test(sentence)) expect(s.health).toBe('behind');
  if (/^Copying|^Looking|^Getting|^Converting/.test(sentence)) expect(s.health).toBe('syncing');
  if (s.health === 'behind' && t.enabled.length > 0) expect(sentence).toMatch(/not answered|no longer on this computer/);
  // the tray shows the same colour and the same sentence
  expect(iconFor(s)).toBe(s.health);
  const tip = trayState(s, { state: 'connected' }).tooltip.replace(/…$/, '');
  expect(`Triplicate: ${sentence}`.startsWith(tip)).toBe(true);
}

function joinNames(names: string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

describe('the status sentence and counts (generated states)', () => {
  it('agree with each other and with the files, over 3,000 generated states', () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 3000; seed++) {
      const w = generate(seed);
      const s = statusOf(w);
      try {
        check(w, s);
      } catch (e) {
        const files = w.files.map((f) => `${f.held ? `held(${f.folder}) ` : ''}${f.local}{${Object.entries(f.copies).map(([k, v]) => `${k}:${v ?? '-'}`).join(',')}}`).join(' ');
        throw new Error(
          `seed ${seed}: targets ${w.targets.map((x) => `${x.id}=${x.state}`).join(',') || 'none'}; ${w.paused ? 'paused; ' : ''}${w.scanning ? 'scanning; ' : ''}files ${files || 'none'}\n` +
            `"${s.summary}" (${s.health})\n${(e as Error).message}`,
        );
      }
      seen.add(s.health);
    }
    // the generator reaches every colour
    expect([...seen].sort()).toEqual(['behind', 'failing', 'green', 'paused', 'syncing']);
  });

  it('says what the issue asked for in its two cases', () => {
    // the Cloud paused; the NAS has every file; one new file waits for the Cloud
    const w: World = {
      folders: 1,
      targets: [
        { id: 'nas', label: 'NAS', state: 'online' },
        { id: 'cloud', label: 'Cloud', state: 'paused' },
      ],
      files: [...Array(15)].map((_, i) => ({ local: 'present', size: 1000, copies: { nas: 'synced', cloud: i === 0 ? 'pending' : 'synced' } })),
      scanning: false,
      paused: false,
      converting: null,
    };
    let s = statusOf(w);
    check(w, s);
    expect(s.summary).toBe('1 file is waiting for Cloud (paused); NAS is up to date.');
    expect(s.health).toBe('paused');
    // 2 files deleted here, all copied: not "All 15 files are safe in 3 places"
    w.targets[1]!.state = 'online';
    w.files[0]!.copies.cloud = 'synced';
    w.files[3]!.local = 'missing';
    w.files[7]!.local = 'missing';
    s = statusOf(w);
    check(w, s);
    expect(s.summary).toBe('13 files are safe in 3 places; 2 are no longer on this computer and are kept on NAS and Cloud.');
    expect(s.health).toBe('behind');
    expect({ pending: s.pending, synced: s.synced, total_files: s.total_files, nas: s.nas_synced_count, cloud: s.cloud_synced_count }).toEqual({ pending: 0, synced: 15, total_files: 15, nas: 15, cloud: 15 });
  });
});

// ---- a real engine ------------------------------------------------------------------------------

const td = useTeardown();

const sum = (s: SyncStatus) => s.pending + s.uploading + s.synced + s.failed + s.skipped;

describe('the status of a real engine', () => {
  it('counts files, names the paused Cloud, and never says all safe with files gone from here', async () => {
    const base = td.dir('trip-status-truth-');
    const media = join(base, 'media');
    const nas = td.add(await startS3({ buckets: ['nas'] }));
    const cloud = td.add(await startS3({ buckets: ['cloud'] }));
    for (let i = 1; i <= 4; i++) writeFile(media, `p${i}.jpg`, bytes(20_000 + i, i));
    const e = td.add(
      await startEngine(join(base, 'data'), {
        roots: [{ id: 'media', label: 'Media', path: media }],
        targets: [nas.target('nas', { label: 'NAS', priority: 1 }), cloud.target('cloud', { label: 'Cloud', preset: 'r2', region: 'auto', priority: 2 })],
      }),
    );
    let s = await waitForStatus(e, (x) => x.safe_files === 4 && x.total_files === 4 && !x.scanning, 60_000, 'all 4 files safe');
    // the seed's fields count files; the copies have their own key
    expect({ pending: s.pending, uploading: s.uploading, synced: s.synced, failed: s.failed, skipped: s.skipped, total_files: s.total_files }).toEqual({ pending: 0, uploading: 0, synced: 4, failed: 0, skipped: 0, total_files: 4 });
    expect(s.copies).toEqual({ pending: 0, uploading: 0, synced: 8, failed: 0, skipped: 0 });
    expect([s.nas_synced_count, s.cloud_synced_count]).toEqual([4, 4]);
    expect(s.summary).toMatch(/^All 4 files \(.+\) are safe in 3 places\.$/);
    // a rate is shown only while something is being copied
    await new Promise((r) => setTimeout(r, 300)); // past the status cache
    s = e.status();
    expect([s.targets.nas!.rate_bps, s.targets.cloud!.rate_bps]).toEqual([0, 0]);

    // the Cloud paused, a new file: the NAS gets it, the Cloud waits
    e.pauseTarget('cloud', true);
    writeFile(media, 'p5.jpg', bytes(30_000, 5));
    s = await waitForStatus(e, (x) => x.total_files === 5 && x.targets.nas!.synced_count === 5 && x.targets.cloud!.pending === 1 && !x.scanning, 60_000, 'NAS has p5, Cloud waits');
    expect({ pending: s.pending, synced: s.synced, failed: s.failed, total_files: s.total_files }).toEqual({ pending: 1, synced: 4, failed: 0, total_files: 5 });
    expect(sum(s)).toBe(s.total_files);
    expect([s.nas_synced_count, s.cloud_synced_count]).toEqual([5, 4]);
    expect(s.copies).toEqual({ pending: 1, uploading: 0, synced: 9, failed: 0, skipped: 0 });
    expect(s.summary).toBe('1 file is waiting for Cloud (paused); NAS is up to date.');
    expect(s.health).toBe('paused');

    // two files deleted here (both destinations have them)
    unlinkSync(join(media, 'p1.jpg'));
    unlinkSync(join(media, 'p2.jpg'));
    s = await waitForStatus(e, (x) => x.missing_local_files === 2, 30_000, 'two files missing');
    expect(sum(s)).toBe(s.total_files);
    expect(s.missing_safe_files).toBe(2);
    expect(s.summary).not.toMatch(/All .* safe/);
    expect(s.summary).toBe('1 file is waiting for Cloud (paused); NAS is up to date. 2 files are no longer on this computer and are kept on NAS and Cloud.');

    // the Cloud resumed: it catches up; 3 files are in 3 places, 2 in 2
    e.pauseTarget('cloud', false);
    s = await waitForStatus(e, (x) => x.targets.cloud!.synced_count === 5 && x.pending + x.uploading === 0, 60_000, 'Cloud caught up');
    expect({ pending: s.pending, uploading: s.uploading, synced: s.synced, failed: s.failed, skipped: s.skipped, total_files: s.total_files }).toEqual({ pending: 0, uploading: 0, synced: 5, failed: 0, skipped: 0, total_files: 5 });
    expect([s.nas_synced_count, s.cloud_synced_count]).toEqual([5, 5]);
    expect(s.summary).toBe('3 files are safe in 3 places; 2 are no longer on this computer and are kept on NAS and Cloud.');
    expect(s.health).toBe('behind');
    // once the copying stopped, no rate stays behind
    await new Promise((r) => setTimeout(r, 700)); // past the status cache and the status event's delay
    s = e.status();
    expect(s.targets.cloud!.rate_bps).toBe(0);
    // the admin API answers the same numbers
    const res = await fetch(`${e.endpoints.adminUrl!}/api/admin/media-sync/status`, { headers: { authorization: `Bearer ${e.token}` } });
    const api = (await res.json()) as SyncStatus;
    expect({ pending: api.pending, synced: api.synced, total_files: api.total_files, nas: api.nas_synced_count, cloud: api.cloud_synced_count, summary: api.summary }).toEqual({ pending: 0, synced: 5, total_files: 5, nas: 5, cloud: 5, summary: s.summary });
  });
});
