// Bad input: what a real folder of photos throws at the engine.
//   - names: generated from a seed (unicode NFC/NFD pairs, emoji, spaces, leading dashes, shell and
//     URL characters, control characters, 255-byte names, deep paths, keys beyond 1024 bytes, names
//     that are not UTF-8), on an S3 target and a folder target;
//   - special files: 0 bytes, a FIFO, symlink loops and links out of the folder, a file replaced by
//     a folder of the same name;
//   - files that grow, shrink, change in place (same size and mtime), vanish or are replaced while
//     they upload (through a slow link, so the upload is really in flight);
//   - permission denied (the engine runs as `nobody`: root reads everything);
//   - a file above 5 GiB (sparse; full mode);
//   - a config fuzzer, and the admin API without or with a wrong token.
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createBackend } from '../../src/main/engine/backends';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import { ConfigError, defaultConfigPath, loadConfig, saveConfig } from '../../src/main/engine/config/config';
import type { EventRecord, FileRecord, SyncStatus } from '../../src/shared/api';
import { routes } from '../../src/shared/api';
import type { ConfigInput, TargetConfig } from '../../src/shared/config';
import { FaultProxy } from './fault-proxy';
import { asRoot, readableBundle, unprivilegedSkipReason, type ReadableBundle } from '../helpers/unprivileged';
import { ENGINE_ENTRY, MiB, ServeChild, content, few, hashObject, multipartLeftovers, rm, rng, s3Target, sha256, sha256File, sleep, startS3Child, tempDir, until, type S3Child, type SuiteContext } from './lib';

const SUITE = 'inputs';

interface Rig {
  base: string;
  media: string;
  data: string;
  s3: S3Child;
  targets: TargetConfig[];
  proxy?: FaultProxy;
  child?: ServeChild;
}

async function rig(ctx: SuiteContext, name: string, opts: { folder?: boolean; proxy?: boolean; cfg?: Partial<ConfigInput> } = {}): Promise<Rig> {
  const base = tempDir(`trip-rb-${name}-`);
  const media = join(base, 'media');
  mkdirSync(media, { recursive: true });
  const data = join(base, 'data');
  const s3 = await startS3Child(join(base, 's3'), ['nas', 'cloud']);
  let proxy: FaultProxy | undefined;
  let endpoint = s3.endpoint;
  if (opts.proxy) {
    proxy = new FaultProxy(s3.port, '127.0.0.1', ctx.seed);
    await proxy.start();
    endpoint = proxy.endpoint;
  }
  const targets: TargetConfig[] = [s3Target('nas', endpoint, 'nas', { priority: 1 })];
  if (opts.folder) targets.push({ id: 'usb', label: 'USB disk', kind: 'folder', path: join(base, 'usb'), prefix: '', priority: 2, enabled: true, concurrency: 4, versionsPrefix: '.triplicate/versions/' });
  else targets.push(s3Target('cloud', endpoint, 'cloud', { priority: 2 }));
  if (opts.folder) mkdirSync(join(base, 'usb'), { recursive: true });
  saveConfig(defaultConfigPath(data), {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets,
    sync: { stabilityMs: 300, backoffSeconds: [0.5, 1, 1, 2, 2], leaseSeconds: 30, rescanIntervalMinutes: 0, guard: { enabled: false } },
    media: { transcode: false },
    restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
    server: { adminPort: 0, downloadPort: 0 },
    ...(opts.cfg ?? {}),
  });
  return { base, media, data, s3, targets, proxy };
}

async function teardown(r: Rig | undefined, ctx: SuiteContext): Promise<void> {
  if (!r) return;
  if (r.child?.alive()) await r.child.stop(15_000);
  await r.proxy?.stop();
  await r.s3.stop();
  if (!ctx.keep) {
    spawnSync('chmod', ['-R', 'u+rwX', r.base]);
    rm(r.base);
  }
}

async function idle(child: ServeChild, timeoutMs: number): Promise<SyncStatus> {
  let stable = 0;
  return until(
    async () => {
      const s = await child.client.call('status');
      stable = s.pending + s.uploading === 0 && !s.scanning ? stable + 1 : 0;
      return stable >= 4 ? s : undefined;
    },
    timeoutMs,
    'the engine to finish',
    300,
  );
}

async function events(child: ServeChild): Promise<EventRecord[]> {
  return child.client.call('events', { query: { limit: 1000 } });
}

function put(media: string, rel: string | Buffer, data: Buffer): void {
  if (Buffer.isBuffer(rel)) {
    writeFileSync(Buffer.concat([Buffer.from(`${media}/`), rel]), data);
    return;
  }
  const p = join(media, ...rel.split('/'));
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}

// ---- names --------------------------------------------------------------------------------------

interface NameCase {
  rel: string | Buffer;
  what: string;
  /** backed-up: under its NFC key on both targets; skipped: a sentence in the event log names it;
   * either: one of a pair is backed up and the other reported */
  expect: 'backed-up' | 'skipped' | 'pair';
  partner?: string;
  data: Buffer;
}

const EMOJI = ['🎉', '📷', '👩‍👩‍👧', '🏳️‍🌈', '🇫🇷', '❤️', '🐙', '🧪'];
const WORDS = ['photo', 'Événement', 'café', 'naïve', 'Zürich', '東京', 'Ελλάδα', 'москва', 'שלום', 'مرحبا', 'ﬁle', 'Ａｂｃ', 'e\u0301t\u00e9'];
const ODD = [' ', '  ', '-', '--', '#', '?', '%41', '%', '+', '&', "'", '"', '<', '>', ':', '*', '|', '[', ']', '{', '}', '~', '@', '=', ';', ',', '$', '!', '`', '^', '(', ')', '\t'];

function nameCases(seed: number, count: number): NameCase[] {
  const r = rng(seed);
  const cases: NameCase[] = [];
  let n = 0;
  const data = () => content(r.int(0, 20_000), seed * 1000 + ++n);
  const add = (rel: string | Buffer, what: string, expect: NameCase['expect'] = 'backed-up') => cases.push({ rel, what, expect, data: data() });
  // fixed cases: each category at least once
  add('cafe\u0301-nfd-only.jpg', 'an NFD name (stored under its NFC key)');
  const pairDir = `pair-${seed}`;
  cases.push({ rel: `${pairDir}/caf\u00e9.jpg`, what: 'NFC half of an NFC/NFD pair', expect: 'pair', partner: `${pairDir}/cafe\u0301.jpg`, data: data() });
  cases.push({ rel: `${pairDir}/cafe\u0301.jpg`, what: 'NFD half of an NFC/NFD pair', expect: 'pair', partner: `${pairDir}/caf\u00e9.jpg`, data: data() });
  add('🎉 party 🎂.png', 'emoji');
  add('👩‍👩‍👧 family (ZWJ).jpg', 'a ZWJ emoji sequence');
  add(' leading space.jpg', 'a leading space');
  add('trailing space .jpg ', 'trailing spaces');
  add('-rf', 'a leading dash');
  add('--help.jpg', 'two leading dashes');
  add('#1 ?q=1&x=%20+plus.jpg', 'URL characters');
  add('quote\'s "and" <tags>.jpg', 'quotes and angle brackets');
  add('a:b*c|d.jpg', 'characters Windows refuses');
  add('line\nbreak.jpg', 'a newline in the name');
  add('bell\u0007char.jpg', 'a control character');
  add('.hidden', 'a dot file');
  add('...', 'a name of three dots');
  add('Case.JPG', 'upper case twin');
  add('case.jpg', 'lower case twin');
  add(`${'x'.repeat(251)}.jpg`, 'a 255-byte ASCII name');
  add(`${'é'.repeat(125)}.jpg`, 'a 254-byte name of 2-byte characters');
  add(`${'東'.repeat(83)}.jpg`, 'a 253-byte name of 3-byte characters');
  add(`${Array.from({ length: 40 }, (_, i) => `d${i}`).join('/')}/deep.jpg`, 'a folder 40 levels deep');
  add(`long-key/${Array.from({ length: 5 }, () => 'y'.repeat(240)).join('/')}/too-long.jpg`, 'a path beyond the 1024-byte key limit', 'skipped');
  add('back\\slash.jpg', 'a backslash in the name');
  add(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2d, 0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0x2e, 0x6a, 0x70, 0x67]), 'a name that is not UTF-8 (Latin-1 bytes)', 'skipped');
  // random ones
  for (let i = 0; i < count; i++) {
    const parts: string[] = [];
    const depth = r.int(1, 3);
    for (let d = 0; d < depth; d++) {
      let s = '';
      const len = r.int(1, 4);
      for (let j = 0; j < len; j++) {
        const roll = r.next();
        s += roll < 0.35 ? r.pick(WORDS) : roll < 0.55 ? r.pick(EMOJI) : roll < 0.85 ? r.pick(ODD) : String(r.int(0, 9999));
      }
      s = s.replace(/\//g, '_');
      if (s.trim() === '' || s === '.' || s === '..') s = `w${i}${s}`;
      if (d === 0) s = `rnd${i}-${s}`;
      parts.push(s);
    }
    const name = parts.join('/') + r.pick(['.jpg', '.MOV.json', '', '.tar.gz', '.heic']);
    const form = r.chance(0.3) ? name.normalize('NFD') : name;
    add(form, 'generated');
  }
  return cases;
}

async function readObject(b: StorageBackend, key: string): Promise<string | null> {
  const got = await hashObject(b, key).catch(() => null);
  return got?.sha256 ?? null;
}

async function namesAndSpecialFiles(ctx: SuiteContext, counts: { tried: number }): Promise<void> {
  const { report } = ctx;
  let r: Rig | undefined;
  try {
    r = await rig(ctx, 'names', { folder: true });
    const cases = nameCases(ctx.seed, ctx.mode === 'full' ? 300 : 60);
    for (const c of cases) put(r.media, c.rel, c.data);
    // special files
    put(r.media, 'special/empty.jpg', Buffer.alloc(0));
    spawnSync('mkfifo', [join(r.media, 'special', 'a-fifo.jpg')]);
    symlinkSync('.', join(r.media, 'special', 'loop-self'));
    symlinkSync('loop-b', join(r.media, 'special', 'loop-a'));
    symlinkSync('loop-a', join(r.media, 'special', 'loop-b'));
    symlinkSync('/etc', join(r.media, 'special', 'out-of-the-folder'));
    symlinkSync('/etc/passwd', join(r.media, 'special', 'passwd.jpg'));
    symlinkSync('nowhere', join(r.media, 'special', 'dangling.jpg'));
    symlinkSync('../special/empty.jpg', join(r.media, 'special', 'link-to-file.jpg'));
    put(r.media, 'special/becomes-a-folder.jpg', content(5000, 5));
    counts.tried += cases.length + 9;

    r.child = new ServeChild(r.data);
    await r.child.waitReady();
    let s = await idle(r.child, 180_000);
    report.check(SUITE, 'odd names and special files: the engine keeps running and finishes', r.child.alive(), s.summary);

    // a file replaced by a folder of the same name
    unlinkSync(join(r.media, 'special', 'becomes-a-folder.jpg'));
    put(r.media, 'special/becomes-a-folder.jpg/inside.jpg', content(6000, 6));
    await r.child.client.call('initialSync', { body: {} });
    s = await idle(r.child, 60_000);

    const ev = await events(r.child);
    const evText = ev.map((e) => `${e.message} ${e.file_key ?? ''} ${e.detail ?? ''}`).join('\n');
    const nas = createBackend(r.targets[0]!);
    const usb = createBackend(r.targets[1]!);
    const problems: string[] = [];
    let backed = 0;
    try {
      for (const c of cases) {
        const shown = Buffer.isBuffer(c.rel) ? c.rel.toString('latin1') : c.rel;
        if (c.expect === 'skipped') {
          const named = Buffer.isBuffer(c.rel) ? /not valid|UTF-8|unreadable|cannot|encod/i.test(evText) : evText.includes(shown.split('/').pop()!.slice(0, 40));
          if (!named) problems.push(`${c.what}: not reported in the event log`);
          continue;
        }
        const rel = (c.rel as string).normalize('NFC').replace(/\\/g, '/');
        const want = sha256(c.data);
        const keys = [`media/${rel}`];
        for (const [tid, b] of [['nas', nas], ['usb', usb]] as const) {
          const got = await readObject(b, keys[0]!);
          if (c.expect === 'pair') {
            const other = cases.find((x) => x.rel === c.partner)!;
            if (got !== want && got !== sha256(other.data)) problems.push(`${c.what} on ${tid}: neither half of the pair is there`);
            continue;
          }
          if (got !== want) problems.push(`${c.what} ${JSON.stringify(rel).slice(0, 60)} on ${tid}: ${got ? 'different content' : 'missing'}`);
          else backed++;
        }
      }
      const pairReported = /two Unicode forms/.test(evText);
      if (!pairReported) problems.push('the NFC/NFD pair is not reported');
      for (const [tid, b] of [['nas', nas], ['usb', usb]] as const) {
        if ((await readObject(b, 'media/special/empty.jpg')) !== sha256(Buffer.alloc(0))) problems.push(`the 0-byte file is not on ${tid}`);
        if ((await readObject(b, 'media/special/becomes-a-folder.jpg/inside.jpg')) === null && tid === 'nas') problems.push(`the file inside the folder that replaced a file is not on ${tid}`);
        for (const k of ['a-fifo.jpg', 'loop-self', 'loop-a', 'passwd.jpg', 'dangling.jpg', 'link-to-file.jpg', 'out-of-the-folder/passwd']) {
          if ((await b.head(`media/special/${k}`).catch(() => null)) !== null) problems.push(`${k} (not a regular file) was copied to ${tid}`);
        }
      }
    } finally {
      nas.close?.();
      usb.close?.();
    }
    const usbFolderConflict = s.targets.usb?.failed ?? 0;
    report.check(SUITE, `${cases.length} file names: each backed up under its NFC key, or named in the event log`, problems.length === 0, problems.length ? few(problems, 8) : `${backed} copies checked`);
    report.check(
      SUITE,
      'nothing failed but the folder target refusing a folder where a file of the same name still is',
      s.failed === usbFolderConflict && usbFolderConflict <= 1 && (s.targets.nas?.failed ?? 0) === 0,
      `${s.failed} failed; "${s.summary}"`,
    );
    const left = multipartLeftovers(r.s3.dir, 'nas').orphans;
    report.check(SUITE, 'names: no unfinished multipart upload', left.length === 0, left.length ? few(left) : undefined);
  } catch (e) {
    report.check(SUITE, 'odd names and special files', false, (e as Error).stack?.slice(0, 1500));
  } finally {
    await teardown(r, ctx);
  }
}

// ---- files that change while they upload ----------------------------------------------------------

async function changesDuringUpload(ctx: SuiteContext, counts: { tried: number }): Promise<void> {
  const { report } = ctx;
  let r: Rig | undefined;
  try {
    r = await rig(ctx, 'change', { proxy: true });
    await r.proxy!.setMode({ kind: 'trickle', bytesPerSecond: 3 * MiB });
    r.child = new ServeChild(r.data);
    await r.child.waitReady();
    const rr = rng(ctx.seed + 11);
    const kinds = ['grow', 'shrink', 'rewrite-same-size-and-mtime', 'vanish', 'replace', 'truncate-to-zero'] as const;
    const rounds = ctx.mode === 'full' ? 3 : 1;
    const plan: { rel: string; kind: (typeof kinds)[number]; size: number }[] = [];
    for (let round = 0; round < rounds; round++) for (const kind of kinds) for (const size of [2 * MiB, 8 * MiB]) plan.push({ rel: `${round}/${kind}-${size / MiB}M.dat`, kind, size });
    counts.tried += plan.length;
    const results: string[] = [];
    // one at a time, so that each change lands in the middle of that file's upload
    for (const p of plan) {
      const abs = join(r.media, ...p.rel.split('/'));
      put(r.media, p.rel, content(p.size, rr.int(1, 1e9)));
      const key = `media/${p.rel}`;
      let rec: FileRecord | undefined;
      await until(
        async () => {
          rec = await r!.child!.client.call('file', { query: { key } }).catch(() => undefined);
          return rec?.copies.some((c) => c.state === 'uploading');
        },
        60_000,
        `${p.rel} to start uploading`,
        50,
      );
      await sleep(rr.int(100, 400));
      const st = statSync(abs);
      switch (p.kind) {
        case 'grow':
          appendFileSync(abs, content(300_000, 9));
          break;
        case 'shrink':
          truncateSync(abs, Math.floor(p.size / 2));
          break;
        case 'truncate-to-zero':
          truncateSync(abs, 0);
          break;
        case 'rewrite-same-size-and-mtime': {
          const fd = openSync(abs, 'r+');
          writeSync(fd, content(4096, 77), 0, 4096, Math.floor(p.size / 2));
          closeSync(fd);
          utimesSync(abs, st.atime, st.mtime); // the sneaky kind: size and mtime as before
          break;
        }
        case 'vanish':
          unlinkSync(abs);
          break;
        case 'replace': {
          const tmp = `${abs}.new`;
          writeFileSync(tmp, content(p.size + 1234, 4242));
          renameSync(tmp, abs);
          break;
        }
      }
    }
    await r.proxy!.setMode({ kind: 'pass' });
    // the sneaky rewrite keeps size and mtime: only the upload's own hashing can notice it
    const s = await idle(r.child, 180_000);
    const nas = createBackend(r.targets[0]!);
    const cloud = createBackend(r.targets[1]!);
    try {
      for (const p of plan) {
        const abs = join(r.media, ...p.rel.split('/'));
        const local = existsSync(abs) ? (await sha256File(abs)).sha256 : null;
        for (const [tid, b] of [['nas', nas], ['cloud', cloud]] as const) {
          const got = await readObject(b, `media/${p.rel}`);
          const head = await b.head(`media/${p.rel}`);
          if (local && got !== local) results.push(`${p.rel} (${p.kind}) on ${tid}: ${got ? 'stale or mixed content' : 'missing'}`);
          if (!local && got && head?.sha256 !== got) results.push(`${p.rel} (vanished) on ${tid}: an object whose content does not match its sha256`);
        }
      }
    } finally {
      nas.close?.();
      cloud.close?.();
    }
    report.check(SUITE, `${plan.length} files changed during their upload (grow, shrink, same-size rewrite, vanish, replace, truncate): each target holds the final content`, results.length === 0, results.length ? few(results) : undefined);
    report.check(SUITE, 'changes during upload: nothing failed', s.failed === 0, s.summary);
  } catch (e) {
    report.check(SUITE, 'files that change during upload', false, (e as Error).stack?.slice(0, 1500));
  } finally {
    await teardown(r, ctx);
  }
}

// ---- permission denied ------------------------------------------------------------------------

async function permissionDenied(ctx: SuiteContext, counts: { tried: number }): Promise<void> {
  const { report } = ctx;
  // As root, chmod 000 denies nothing: the engine then runs as `nobody` (setpriv), from a bundle it
  // can read wherever the checkout is. As anyone else, chmod 000 denies the engine running as ourselves.
  const asNobody = asRoot;
  const skip = unprivilegedSkipReason();
  if (skip) {
    report.log(`  (skipped permission tests: ${skip})`);
    return;
  }
  let r: Rig | undefined;
  let bundle: ReadableBundle | undefined;
  try {
    if (asNobody) bundle = await readableBundle({ triplicate: ENGINE_ENTRY });
    r = await rig(ctx, 'perm');
    put(r.media, 'ok/a.jpg', content(3000, 1));
    put(r.media, 'ok/b.jpg', content(4000, 2));
    put(r.media, 'secret.jpg', content(5000, 3));
    put(r.media, 'locked/inside-1.jpg', content(6000, 4));
    put(r.media, 'locked/inside-2.jpg', content(7000, 5));
    put(r.media, 'later-locked/x.jpg', content(8000, 6));
    if (asNobody) {
      chmodSync(r.base, 0o755);
      spawnSync('chown', ['-R', 'nobody:', r.media, dirname(r.data)]);
      mkdirSync(r.data, { recursive: true });
      spawnSync('chown', ['-R', 'nobody:', r.data]);
    }
    chmodSync(join(r.media, 'secret.jpg'), 0o000);
    chmodSync(join(r.media, 'locked'), 0o000);
    counts.tried += 3;
    r.child = new ServeChild(r.data, { asNobody: bundle });
    await r.child.waitReady();
    let s = await idle(r.child, 60_000);
    const ev = await events(r.child);
    const evText = ev.map((e) => `${e.message}\n${e.detail ?? ''}`).join('\n');
    report.check(SUITE, 'permission denied: the readable files are backed up', s.targets.nas!.synced_count >= 3 && s.targets.cloud!.synced_count >= 3, `${s.targets.nas!.synced_count} on the NAS`);
    report.check(SUITE, 'permission denied: the unreadable file is named in the event log', /secret\.jpg/.test(evText), few(ev.filter((e) => e.level !== 'info').map((e) => e.message), 3));
    report.check(SUITE, 'permission denied: the unreadable folder is named in the event log', /locked/.test(evText), undefined);
    if (asNobody) {
      // the engine runs as another user than the one who ran `npm install` (a system service):
      // the ffmpeg/ffprobe binaries from npm must still run (scripts/postinstall.mjs)
      const tools = ev.find((e) => /ffprobe|ffmpeg/.test(e.message) && e.level !== 'info');
      report.check(SUITE, 'running as another user than the installer: ffmpeg and ffprobe still run', !tools, tools?.message);
    }
    report.check(SUITE, 'permission denied: the overview does not say every file is safe', !/^All .* safe/.test(s.summary) || s.health !== 'green', `"${s.summary}" (${s.health})`);

    // a folder that becomes unreadable after its files were backed up: they are not "deleted"
    chmodSync(join(r.media, 'later-locked'), 0o000);
    await r.child.client.call('initialSync', { body: {} });
    s = await idle(r.child, 60_000);
    const x = await r.child.client.call('file', { query: { key: 'media/later-locked/x.jpg' } });
    report.check(SUITE, 'a folder that becomes unreadable: its files are not taken for deleted', x.local === 'present', `local: ${x.local}; "${s.summary}"`);

    // fixed: everything goes through
    chmodSync(join(r.media, 'secret.jpg'), 0o644);
    chmodSync(join(r.media, 'locked'), 0o755);
    chmodSync(join(r.media, 'later-locked'), 0o755);
    await r.child.client.call('initialSync', { body: {} });
    await r.child.client.call('retryFailed', { body: {} });
    s = await idle(r.child, 60_000);
    report.check(SUITE, 'permission fixed: everything is backed up after a rescan', s.safe_files === 6 && s.failed === 0, `${s.safe_files} of 6 safe; "${s.summary}"`);
  } catch (e) {
    report.check(SUITE, 'permission denied', false, (e as Error).stack?.slice(0, 1500));
  } finally {
    await teardown(r, ctx);
    bundle?.dispose();
  }
}

// ---- a file above 5 GiB -------------------------------------------------------------------------

async function hugeSparseFile(ctx: SuiteContext, counts: { tried: number }): Promise<number> {
  const { report } = ctx;
  let r: Rig | undefined;
  const size = 5 * 1024 * MiB + 3 * MiB + 17;
  try {
    r = await rig(ctx, 'huge', { cfg: {} });
    // 5 GiB and a bit, sparse, with real data at the start, in the middle and at the end
    const abs = join(r.media, 'huge', 'archive.mkv.bin');
    mkdirSync(dirname(abs), { recursive: true });
    const fd = openSync(abs, 'w');
    for (const at of [0, 2 * 1024 * MiB, size - 1 * MiB]) writeSync(fd, content(1 * MiB, at + 1), 0, 1 * MiB, at);
    closeSync(fd);
    truncateSync(abs, size);
    counts.tried++;
    const local = await sha256File(abs);
    r.child = new ServeChild(r.data);
    await r.child.waitReady();
    const t0 = Date.now();
    const s = await idle(r.child, 1_800_000);
    report.check(SUITE, 'a 5 GiB + 3 MiB sparse file is backed up to both targets', s.safe_files === 1 && s.failed === 0, `${((Date.now() - t0) / 1000).toFixed(0)} s; "${s.summary}"`);
    for (const t of r.targets) {
      const b = createBackend(t);
      try {
        const got = await hashObject(b, 'media/huge/archive.mkv.bin');
        report.check(SUITE, `the 5 GiB file read back from ${t.id} byte-exact`, got?.sha256 === local.sha256 && got.size === size, got ? `${got.size} bytes` : 'missing');
      } finally {
        b.close?.();
      }
    }
    return 2 * size;
  } catch (e) {
    report.check(SUITE, 'a file above 5 GiB', false, (e as Error).stack?.slice(0, 1500));
    return 0;
  } finally {
    await teardown(r, ctx);
  }
}

// ---- config fuzzer -------------------------------------------------------------------------------

/** A valid config with every section filled in. */
export function sampleConfig(media: string): ConfigInput {
  return {
    siteName: 'Museum',
    roots: [{ id: 'photos', label: 'Photos', path: media, include: ['**/*.jpg'], exclude: ['**/tmp/**'] }],
    targets: [
      { id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: 'http://127.0.0.1:9', bucket: 'museum', credentials: { accessKeyId: 'AKIA', secretAccessKey: 'SECRET' }, priority: 1, bandwidth: { defaultBytesPerSecond: 0, schedule: [{ days: ['mon'], start: '08:00', end: '18:00', bytesPerSecond: 1000 }] } },
      { id: 'usb', label: 'USB', kind: 'folder', path: '/mnt/usb', priority: 2 },
    ],
    sync: { stabilityMs: 2000, backoffSeconds: [30, 60], leaseSeconds: 120, hashConcurrency: 2 },
    media: { transcode: true, crf: 23, preset: 'veryfast', maxHeight: 1080 },
    server: { adminHost: '127.0.0.1', adminPort: 0, downloadPort: 0 },
    restore: { concurrency: 4, verifyIntervalHours: 24 },
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const JUNK: Json[] = [null, true, false, 0, -1, 1.5, 1e308, -0, '', ' ', 'x'.repeat(5000), '../../etc', '💥', [], [null], {}, { a: 1 }, 'http://', 'ftp://x', '00:61', '25:00', 'MON', -65536, 65536, 2 ** 53, 'NaN'];

/** Paths (as key lists) of every node of a JSON value. */
function nodes(v: Json, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(path);
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...path, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) nodes(x, [...path, k], out);
  return out;
}

function mutateJson(v: Json, r: ReturnType<typeof rng>): { value: Json; what: string } {
  const copy = JSON.parse(JSON.stringify(v)) as Json;
  const all = nodes(copy).filter((p) => p.length > 0);
  const path = r.pick(all);
  const parentPath = path.slice(0, -1);
  let parent: Json = copy;
  for (const k of parentPath) parent = (parent as Record<string, Json>)[k as string]!;
  const key = path[path.length - 1]!;
  const op = r.int(0, 5);
  const where = path.join('.');
  if (op === 0) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Record<string, Json>)[key as string];
    return { value: copy, what: `removed ${where}` };
  }
  if (op === 1) {
    const j = r.pick(JUNK);
    (parent as Record<string, Json>)[key as string] = j;
    return { value: copy, what: `${where} = ${JSON.stringify(j)?.slice(0, 30)}` };
  }
  if (op === 2 && !Array.isArray(parent)) {
    (parent as Record<string, Json>)[`${String(key)}_typo`] = (parent as Record<string, Json>)[key as string]!;
    delete (parent as Record<string, Json>)[key as string];
    return { value: copy, what: `renamed ${where} to ${String(key)}_typo` };
  }
  if (op === 3) {
    const cur = (parent as Record<string, Json>)[key as string];
    const j = typeof cur === 'number' ? String(cur) : typeof cur === 'string' ? (Number(cur) || cur.length) : typeof cur === 'boolean' ? (cur ? 'yes' : 0) : Array.isArray(cur) ? cur[0] ?? 'x' : 'x';
    (parent as Record<string, Json>)[key as string] = j as Json;
    return { value: copy, what: `${where}: changed type to ${typeof j}` };
  }
  if (op === 4) {
    (parent as Record<string, Json>)[key as string] = { nested: r.pick(JUNK) };
    return { value: copy, what: `${where} = an object` };
  }
  // duplicate an id
  const v2 = copy as { roots?: Json[]; targets?: Json[] };
  if (Array.isArray(v2.targets) && v2.targets.length) v2.targets.push(JSON.parse(JSON.stringify(v2.targets[0])) as Json);
  return { value: copy, what: 'a destination listed twice' };
}

export interface FuzzOutcome {
  tried: number;
  refused: number;
  accepted: number;
  problems: string[];
}

/** Mutate a valid config `n` times; each must load or be refused with a ConfigError naming the field. */
export function fuzzConfigs(dir: string, seed: number, n: number): FuzzOutcome {
  const r = rng(seed);
  const base = sampleConfig(join(dir, 'media')) as unknown as Json;
  const path = join(dir, 'config.json');
  const out: FuzzOutcome = { tried: 0, refused: 0, accepted: 0, problems: [] };
  for (let i = 0; i < n; i++) {
    let text: string;
    let what: string;
    if (r.chance(0.1)) {
      const full = JSON.stringify(base, null, 2);
      const cut = r.int(1, full.length - 1);
      text = r.chance(0.5) ? full.slice(0, cut) : full.slice(0, cut) + r.pick(['}', ',', '"', '\u0000', '\ufeff', '//']) + full.slice(cut);
      what = `broken JSON at ${cut}`;
    } else {
      let v = base;
      const steps: string[] = [];
      for (let k = r.int(1, 3); k > 0; k--) {
        const m = mutateJson(v, r);
        v = m.value;
        steps.push(m.what);
      }
      text = JSON.stringify(v, null, 2);
      what = steps.join(', ');
    }
    writeFileSync(path, text);
    out.tried++;
    try {
      loadConfig(path);
      out.accepted++;
    } catch (e) {
      if (!(e instanceof ConfigError)) {
        out.problems.push(`${what}: ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
      } else {
        out.refused++;
        const named = /not valid JSON/.test(e.message) || /newer Triplicate/.test(e.message) || e.fields.length > 0;
        const fieldsOk = e.fields.every((f) => /^[A-Za-z(]/.test(f) && f.includes(':'));
        if (!named || !fieldsOk) out.problems.push(`${what}: the refusal does not name the field: ${e.message.slice(0, 200)}`);
      }
    }
    if (readFileSync(path, 'utf8') !== text) out.problems.push(`${what}: the config file was changed`);
  }
  return out;
}

async function configFuzzer(ctx: SuiteContext, counts: { tried: number }): Promise<void> {
  const { report } = ctx;
  const dir = tempDir('trip-rb-fuzz-');
  try {
    const n = ctx.mode === 'full' ? 5000 : 500;
    const f = fuzzConfigs(dir, ctx.seed, n);
    counts.tried += f.tried;
    report.check(SUITE, `config fuzzer: ${f.tried} mutated configs load or are refused with a sentence naming the field, file untouched`, f.problems.length === 0, f.problems.length ? few(f.problems) : `${f.refused} refused, ${f.accepted} still valid`);
    // through the real command line: exit 2, a sentence naming the field, no stack trace, file kept
    const r = rng(ctx.seed + 3);
    const bad: { text: string; field: RegExp }[] = [
      { text: JSON.stringify({ ...sampleConfig(join(dir, 'media')), sync: { stabilityMs: -5 } }), field: /sync\.stabilityMs/ },
      { text: JSON.stringify({ ...sampleConfig(join(dir, 'media')), targets: [{ id: 'Bad Id', label: 'x', kind: 's3', bucket: 'b', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, endpoint: 'http://x' }] }), field: /targets\[0\]\.id/ },
      { text: '{"roots": [ {"id": "a", ', field: /not valid JSON/ },
    ];
    for (let i = 0; i < (ctx.mode === 'full' ? 6 : 0); i++) {
      const m = mutateJson(sampleConfig(join(dir, 'media')) as unknown as Json, r);
      bad.push({ text: JSON.stringify(m.value), field: /./ });
    }
    const probs: string[] = [];
    for (const b of bad) {
      const data = join(dir, `data-${probs.length}-${Math.random().toString(36).slice(2, 6)}`);
      mkdirSync(data, { recursive: true });
      writeFileSync(join(data, 'config.json'), b.text);
      const child = new ServeChild(data);
      const res = await Promise.race([child.exited, sleep(30_000).then(() => null)]);
      if (!res) {
        await child.stop(5000);
        // still valid after mutation: it started; that is allowed
        continue;
      }
      counts.tried++;
      if (res.code !== 2) probs.push(`exit ${res.code} for ${b.text.slice(0, 60)}`);
      if (!b.field.test(child.stderr)) probs.push(`stderr does not name the field: ${child.stderr.slice(0, 200)}`);
      if (/\n\s+at /.test(child.stderr)) probs.push(`a stack trace on stderr: ${child.stderr.slice(0, 200)}`);
      if (readFileSync(join(data, 'config.json'), 'utf8') !== b.text) probs.push('the config file was changed');
    }
    report.check(SUITE, `config fuzzer through \`triplicate serve\`: refused with exit 2 and a sentence naming the field`, probs.length === 0, probs.length ? few(probs) : `${bad.length} configs`);
  } finally {
    if (!ctx.keep) rm(dir);
  }
}

// ---- the admin API with a missing or wrong token ------------------------------------------------------

async function adminAuth(ctx: SuiteContext, counts: { tried: number }): Promise<void> {
  const { report } = ctx;
  let r: Rig | undefined;
  try {
    r = await rig(ctx, 'auth');
    put(r.media, 'a.jpg', content(1000, 1));
    r.child = new ServeChild(r.data);
    const ready = await r.child.waitReady();
    await idle(r.child, 60_000);
    const cfgBefore = readFileSync(defaultConfigPath(r.data), 'utf8');
    const statusBefore = await r.child.client.call('status');
    const rr = rng(ctx.seed + 17);
    const tokens = [null, '', 'wrong', ready.token.slice(0, -1), `${ready.token}x`, ready.token.toUpperCase(), ` ${ready.token.slice(1)}`, 'null', 'undefined', `Basic ${Buffer.from(`a:${ready.token}`).toString('base64')}`];
    const names = Object.keys(routes) as (keyof typeof routes)[];
    const probs: string[] = [];
    const n = ctx.mode === 'full' ? 1500 : 300;
    for (let i = 0; i < n; i++) {
      const name = rr.pick(names);
      if (name === 'login') continue;
      const def = routes[name];
      const tok = rr.pick(tokens);
      const path = def.path.replace(/:[a-zA-Z_]+/g, () => rr.pick(['nas', 'media', 'x', '..%2f..', '%00']));
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (tok !== null) headers.authorization = tok.startsWith('Basic') ? tok : `Bearer ${tok}`;
      const qs = rr.chance(0.3) ? `?access_token=${encodeURIComponent(rr.pick(tokens) ?? '')}` : '';
      const res = await fetch(`${ready.adminUrl}${path}${qs}`, { method: def.method, headers, body: def.method === 'GET' ? undefined : JSON.stringify({ key: 'media/a.jpg', path: '/', id: 'x', paused: true, roots: [], targets: [] }) });
      await res.arrayBuffer();
      counts.tried++;
      if (res.status !== 401) probs.push(`${def.method} ${path} with token ${JSON.stringify(tok)?.slice(0, 20)}: ${res.status}`);
    }
    const statusAfter = await r.child.client.call('status');
    const same = readFileSync(defaultConfigPath(r.data), 'utf8') === cfgBefore && statusAfter.paused === statusBefore.paused && statusAfter.total_files === statusBefore.total_files && statusAfter.targets.nas?.state === statusBefore.targets.nas?.state;
    report.check(SUITE, `admin API: ${n} requests without or with a wrong token all get 401`, probs.length === 0, probs.length ? few(probs) : undefined);
    report.check(SUITE, 'admin API: nothing changed (config, pause state, files, destinations)', same);
  } catch (e) {
    report.check(SUITE, 'admin API auth', false, (e as Error).stack?.slice(0, 1500));
  } finally {
    await teardown(r, ctx);
  }
}

export async function badInputs(ctx: SuiteContext): Promise<void> {
  const counts = { tried: 0 };
  ctx.report.log('\n== bad input');
  await configFuzzer(ctx, counts);
  await adminAuth(ctx, counts);
  await namesAndSpecialFiles(ctx, counts);
  await changesDuringUpload(ctx, counts);
  await permissionDenied(ctx, counts);
  let hugeBytes = 0;
  if (ctx.mode === 'full') hugeBytes = await hugeSparseFile(ctx, counts);
  ctx.report.figure(SUITE, 'bad_inputs_tried', counts.tried);
  if (hugeBytes) ctx.report.figure(SUITE, 'huge_file_bytes_verified', hugeBytes);
}
