// The crash loop: `triplicate serve` on a generated tree with two s3rver targets, killed with SIGKILL
// at random moments (during start-up, at a random time, while a multipart upload is in flight) and
// started again, while the tree changes (new, rewritten, renamed and deleted files, with the engine
// running or dead). After every kill the durable state must already be right:
//   - no job lost: every present file has, on each target, a synced copy of its content or a job;
//   - no false "synced": every copy marked synced is on the target with that size and sha256.
// At the end the engine runs until idle and stops cleanly, then every file is read back from both
// targets (GET + sha256), and no multipart upload may be left unfinished on either server.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultConfigPath, saveConfig } from '../../src/main/engine/config/config';
import type { S3TargetConfig } from '../../src/shared/config';
import {
  MiB,
  ServeChild,
  auditObjects,
  checkInvariants,
  content,
  few,
  listTree,
  multipartLeftovers,
  readCatalog,
  rm,
  rng,
  s3Target,
  sleep,
  startS3Child,
  tempDir,
  until,
  verifyTree,
  type S3Child,
  type SuiteContext,
} from './lib';

const SUITE = 'crash';

export async function crashLoop(ctx: SuiteContext): Promise<void> {
  const { report, mode } = ctx;
  const full = mode === 'full';
  const kills = full ? 50 : 6;
  const small = full ? 3000 : 400;
  const large = full ? 6 : 2;
  const r = rng(ctx.seed);
  report.log(`\n== crash loop: ${small} small + ${large} large files, ${kills} SIGKILLs`);

  const base = tempDir('trip-rb-crash-');
  const media = join(base, 'media');
  const data = join(base, 'data');
  let s3a: S3Child | undefined;
  let s3b: S3Child | undefined;
  let child: ServeChild | undefined;
  try {
    s3a = await startS3Child(join(base, 's3a'), ['nas']);
    s3b = await startS3Child(join(base, 's3b'), ['cloud']);
    const targets: S3TargetConfig[] = [
      s3Target('nas', s3a.endpoint, 'nas', { priority: 1 }),
      s3Target('cloud', s3b.endpoint, 'cloud', { priority: 2, preset: 'r2', region: 'auto' }),
    ];
    const where = [
      { id: 'nas', s3dir: s3a.dir, bucket: 'nas' },
      { id: 'cloud', s3dir: s3b.dir, bucket: 'cloud' },
    ];
    saveConfig(defaultConfigPath(data), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      targets,
      sync: { stabilityMs: 300, backoffSeconds: [0.5, 1, 1, 2, 2], leaseSeconds: 30, rescanIntervalMinutes: 0, guard: { enabled: false } },
      media: { transcode: false },
      restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
      server: { adminPort: 0, downloadPort: 0 },
    });

    // the tree
    let seq = 0;
    const write = (rel: string, size: number, atomic = false) => {
      const p = join(media, ...rel.split('/'));
      mkdirSync(dirname(p), { recursive: true });
      const buf = content(size, ++seq + ctx.seed * 7919);
      if (atomic) {
        const tmp = join(dirname(p), `.incoming-${seq}`);
        writeFileSync(tmp, buf);
        renameSync(tmp, p);
      } else writeFileSync(p, buf);
    };
    for (let i = 0; i < small; i++) write(`day-${String(i % 20).padStart(2, '0')}/IMG_${String(i).padStart(5, '0')}.${i % 3 ? 'jpg' : 'dat'}`, r.int(1, 64 * 1024));
    for (let i = 0; i < large; i++) write(`video/clip-${i}.mp4`, r.int(6, full ? 40 : 12) * MiB + r.int(0, 4096));
    const mutations = { added: 0, rewritten: 0, renamed: 0, deleted: 0, largeRewritten: 0 };
    const mutate = (n: number) => {
      const files = listTree(media).filter((f) => !f.rel.split('/').pop()!.startsWith('.incoming-'));
      for (let i = 0; i < n; i++) {
        const roll = r.next();
        if (roll < 0.4 || files.length < 10) {
          write(`new/${seq}-${r.int(0, 1e6)}.jpg`, r.int(0, 200 * 1024), r.chance(0.5));
          mutations.added++;
        } else if (roll < 0.7) {
          const big = files.filter((x) => x.size > 5 * MiB);
          const f = big.length && r.chance(0.15) ? r.pick(big) : r.pick(files);
          write(f.rel, f.size > 5 * MiB ? f.size : r.int(1, 100 * 1024), r.chance(0.5));
          mutations.rewritten++;
          if (f.size > 5 * MiB) mutations.largeRewritten++;
        } else if (roll < 0.85) {
          const f = r.pick(files);
          if (!existsSync(f.abs)) continue;
          const to = join(media, 'moved', `${seq++}-${f.rel.split('/').pop()}`);
          mkdirSync(dirname(to), { recursive: true });
          renameSync(f.abs, to);
          mutations.renamed++;
        } else {
          const f = r.pick(files);
          if (f.size > 5 * MiB) continue; // keep the large files: they are the multipart cases
          rmSync(f.abs, { force: true });
          mutations.deleted++;
        }
      }
    };

    const moments = { startup: 0, random: 0, multipart: 0, beforeReady: 0 };
    let lost: string[] = [];
    let falseSynced: string[] = [];
    let failed: string[] = [];
    let maxSynced = 0;
    const t0 = Date.now();
    for (let k = 1; k <= kills; k++) {
      if (k > 1 && r.chance(0.6)) mutate(r.int(1, 6)); // changes while the engine is dead
      child = new ServeChild(data);
      const how = r.pick(['startup', 'random', 'random', 'multipart', 'multipart'] as const);
      moments[how]++;
      if (how === 'startup') {
        await Promise.race([child.exited, sleep(r.int(50, 1800))]);
      } else {
        await child.waitReady();
        if (r.chance(0.5)) setTimeout(() => mutate(r.int(1, 4)), r.int(0, 1000)).unref(); // changes while it runs
        if (how === 'random') await sleep(r.int(200, full ? 4000 : 3000));
        else {
          // wait for a multipart upload in flight on either server, then kill a little later
          const inFlight = () => multipartLeftovers(s3a!.dir, 'nas').orphans.length + multipartLeftovers(s3b!.dir, 'cloud').orphans.length > 0;
          const end = Date.now() + 6000;
          while (Date.now() < end && !inFlight()) await sleep(20);
          await sleep(r.int(0, 300));
        }
      }
      if (!child.ready) moments.beforeReady++;
      if (!child.alive()) {
        report.check(SUITE, `engine alive until kill ${k}`, false, `it exited by itself: ${child.stderr.slice(-1500)}`);
        break;
      }
      await child.kill();
      if (!existsSync(join(data, 'catalog.db'))) continue;
      const inv = checkInvariants(readCatalog(data), where);
      maxSynced = Math.max(maxSynced, inv.synced);
      lost = lost.concat(inv.lost.map((x) => `kill ${k}: ${x}`));
      falseSynced = falseSynced.concat(inv.falseSynced.map((x) => `kill ${k}: ${x}`));
      failed = failed.concat(inv.failed.map((x) => `kill ${k}: ${x}`));
      if (k % 10 === 0 || k === kills) report.log(`  … ${k} kills, ${inv.synced} copies synced so far, ${Math.round((Date.now() - t0) / 1000)} s`);
    }
    report.check(SUITE, `no job lost at any of ${kills} kills`, lost.length === 0, lost.length ? few(lost) : undefined);
    report.check(SUITE, `no copy marked synced that is not on the target, at any kill`, falseSynced.length === 0, falseSynced.length ? few(falseSynced) : undefined);
    report.check(SUITE, 'no copy failed during the kills', failed.length === 0, failed.length ? few(failed) : undefined);

    // the last run: until idle, then a clean stop
    child = new ServeChild(data);
    await child.waitReady();
    const drainStart = Date.now();
    let stable = 0;
    const st = await until(
      async () => {
        const s = await child!.client.call('status');
        stable = s.pending + s.uploading === 0 && !s.scanning ? stable + 1 : 0;
        return stable >= 4 ? s : undefined;
      },
      full ? 600_000 : 180_000,
      'the last run to copy everything',
      500,
    ).catch((e: Error) => {
      report.check(SUITE, 'the last run copies everything', false, e.message);
      return null;
    });
    const drainS = (Date.now() - drainStart) / 1000;
    if (st) report.check(SUITE, 'the last run copies everything, nothing failed', st.failed === 0, st.failed ? `${st.failed} failed: ${st.summary}` : `${st.safe_files} files safe, drained in ${drainS.toFixed(1)} s`);
    const stop = await child.stop();
    report.check(SUITE, 'SIGTERM stops the engine cleanly', stop.clean, stop.clean ? undefined : `exit ${stop.code ?? stop.signal}: ${child.stderr.slice(-800)}`);
    report.check(SUITE, 'the engine lock is released', !existsSync(join(data, 'engine.lock')));

    const snap = readCatalog(data);
    const inv = checkInvariants(snap, where);
    const present = snap.files.filter((f) => f.local_state === 'present');
    const notSynced = present.flatMap((f) =>
      where.filter((t) => !snap.copies.some((c) => c.file_id === f.id && c.target_id === t.id && c.state === 'synced' && c.sha256 === f.sha256)).map((t) => `${f.rel_path} on ${t.id}`),
    );
    report.check(SUITE, 'at the end every present file has a synced copy of its content on both targets', notSynced.length === 0 && inv.lost.length === 0, notSynced.length ? few(notSynced) : `${present.length} files x 2`);
    report.check(SUITE, 'at the end no copy is marked synced that is not on the target', inv.falseSynced.length === 0, inv.falseSynced.length ? few(inv.falseSynced) : undefined);
    const onDisk = listTree(media).filter((f) => !f.rel.split('/').pop()!.startsWith('.incoming-'));
    const missingFromCatalog = onDisk.filter((f) => !present.some((p) => p.rel_path === f.rel.normalize('NFC')));
    report.check(SUITE, 'every file on disk is in the catalog', missingFromCatalog.length === 0, missingFromCatalog.length ? few(missingFromCatalog.map((f) => f.rel)) : `${onDisk.length} files`);

    const v = await verifyTree(media, 'media', targets, { skip: (rel) => rel.split('/').pop()!.startsWith('.incoming-') });
    report.check(SUITE, `every file read back from both targets byte-exact (GET + sha256)`, v.problems.length === 0, v.problems.length ? few(v.problems) : `${v.files} files, ${(v.bytes / MiB).toFixed(1)} MiB verified`);
    const audit = [auditObjects(s3a.dir, 'nas'), auditObjects(s3b.dir, 'cloud')];
    const bad = audit.flatMap((a) => a.bad);
    report.check(SUITE, 'every object on both servers (versions included) holds the content its sha256 metadata names', bad.length === 0, bad.length ? few(bad) : `${audit[0]!.objects + audit[1]!.objects} objects, ${audit[0]!.versions + audit[1]!.versions} of them versions`);
    const left = [multipartLeftovers(s3a.dir, 'nas'), multipartLeftovers(s3b.dir, 'cloud')];
    const orphans = left.flatMap((l) => l.orphans);
    const stray = left.reduce((a, l) => a + l.stray.length, 0);
    report.check(SUITE, 'no unfinished multipart upload left on either server', orphans.length === 0, orphans.length ? few(orphans) : stray ? `(${stray} part folders re-created by a part that raced its abort, s3rver artefact)` : undefined);

    report.figure(SUITE, 'kills', kills);
    report.figure(SUITE, 'kills_before_ready', moments.beforeReady);
    report.figure(SUITE, 'kill_moments', moments);
    report.figure(SUITE, 'files_at_end', onDisk.length);
    report.figure(SUITE, 'mutations', mutations);
    report.figure(SUITE, 'files_verified', v.files);
    report.figure(SUITE, 'bytes_verified', v.bytes * 1);
    report.figure(SUITE, 'copies_verified', v.files * 2);
    report.figure(SUITE, 'lost', lost.length + inv.lost.length + notSynced.length);
    report.figure(SUITE, 'false_synced', falseSynced.length + inv.falseSynced.length);
    report.figure(SUITE, 'orphaned_multipart', orphans.length);
    report.figure(SUITE, 'drain_seconds', Math.round(drainS * 10) / 10);
    report.figure(SUITE, 'seconds', Math.round((Date.now() - t0) / 1000));
  } finally {
    if (child?.alive()) await child.kill();
    await s3a?.stop();
    await s3b?.stop();
    if (!ctx.keep) rm(base);
    else report.log(`  (kept ${base})`);
  }
}
