// Verification of one target (like restic `check --read-data-subset`):
// 1. HEAD every synced copy and compare size + sha256 metadata with the catalog;
// 2. within a byte budget, download a rolling sample (copies never read first, then the longest
//    unread) and re-hash it.
// A missing or damaged copy of a file that is on local disk is deleted and uploaded again; one whose
// file is gone locally is copied again from a good copy on another destination (a repair job), or,
// when no other destination has one, marked failed. Either way an error event names the file and
// the target.
import { createHash } from 'node:crypto';
import type { VerifyTargetReport } from '../../../shared/api';
import type { TargetConfig } from '../../../shared/config';
import { fileKey, objectKey } from '../../../shared/keys';
import { isStorageError, type StorageBackend } from '../backends/types';
import type { Catalog } from '../catalog/catalog';
import type { EventBus } from '../events';
import { errorText, forEachLimit } from '../util';
import type { CopyWithFile, RestoreStore } from './store';

export interface VerifyContext {
  catalog: Catalog;
  store: RestoreStore;
  bus: EventBus;
  /** New uploads were queued. */
  wake(): void;
}

export interface VerifyOptions {
  full: boolean;
  readBudget: number;
  signal: AbortSignal;
  headConcurrency?: number;
  /** Called now and then while the pass runs (lease heartbeat). */
  onTick?: () => void;
}

const MAX_PROBLEMS = 100;

/** Does another destination hold a synced copy of the same content? */
function goodCopyElsewhere(catalog: Catalog, c: CopyWithFile, targetId: string): boolean {
  return catalog.copiesOfFile(c.file_id).some((o) => o.target_id !== targetId && o.state === 'synced' && o.sha256 === c.sha256);
}

export async function verifyTarget(ctx: VerifyContext, target: TargetConfig, backend: StorageBackend, opts: VerifyOptions): Promise<VerifyTargetReport> {
  const report: VerifyTargetReport = { target_id: target.id, label: target.label, checked: 0, ok: 0, missing: 0, damaged: 0, files_read: 0, bytes_read: 0, requeued: 0, problems: [] };
  const bad = new Set<number>();
  const keyOf = (c: CopyWithFile) => objectKey(target.prefix, c.root_id, c.rel_path);

  /** `corrupt`: its bytes do not match its own checksum (deleted first: the uploader trusts matching metadata). */
  const problem = async (c: CopyWithFile, kind: 'missing' | 'damaged', what: string, corrupt = false) => {
    bad.add(c.file_id);
    report[kind]++;
    const fk = fileKey(c.root_id, c.rel_path);
    const local = c.local_state === 'present' && c.file_sha256 === c.sha256;
    let message: string;
    if (local) {
      // The uploader trusts an object whose metadata matches: remove the bad one first.
      // A copy whose metadata names other content stays: the upload keeps it as a version.
      if (corrupt) await backend.delete(keyOf(c), opts.signal).catch(() => undefined);
      ctx.catalog.queueUpload(c.file_id, target.id, c.file_size);
      report.requeued++;
      message = `The copy of "${fk}" on ${target.label} ${what}. Triplicate uploads it again from this computer.`;
    } else if ((kind === 'missing' || corrupt) && goodCopyElsewhere(ctx.catalog, c, target.id)) {
      // Gone from this computer, but good on another destination: copied from there (a repair job,
      // hashed as it is copied; see the uploader).
      ctx.catalog.queueRepair(c.file_id, target.id, c.file_size, `The copy on ${target.label} ${what}; Triplicate copies it again from another destination.`);
      report.requeued++;
      message = `The copy of "${fk}" on ${target.label} ${what}, and the file is no longer on this computer: Triplicate copies it again from another destination.`;
    } else {
      ctx.catalog.setCopyState(c.file_id, target.id, 'failed', {
        last_error: `The copy on ${target.label} ${what}, and the file is no longer on this computer. Restore it from another destination, then press Retry.`,
      });
      message = `The copy of "${fk}" on ${target.label} ${what}, and the file is no longer on this computer: restore it from another destination, then press Retry.`;
    }
    if (report.problems.length < MAX_PROBLEMS) report.problems.push({ key: fk, problem: message });
    ctx.bus.record({ level: 'error', kind: 'verify-problem', message, file_key: fk, target_id: target.id });
  };

  // 1. HEAD every synced copy
  const copies = ctx.store.syncedCopies(target.id);
  let fatal: unknown = null;
  const headAc = new AbortController();
  const onAbort = () => headAc.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await forEachLimit(copies, opts.headConcurrency ?? 8, async (c) => {
      if (fatal || headAc.signal.aborted) return;
      try {
        const info = await backend.head(keyOf(c), headAc.signal);
        report.checked++;
        if (report.checked % 200 === 0) opts.onTick?.();
        if (!info) return await problem(c, 'missing', 'is missing');
        if (info.size !== (c.size ?? c.file_size) || (c.sha256 && info.sha256 !== c.sha256)) {
          return await problem(c, 'damaged', `does not match (${info.size !== (c.size ?? c.file_size) ? `size ${info.size} instead of ${c.size ?? c.file_size}` : 'checksum metadata differs'})`);
        }
        ctx.store.setVerified(c.file_id, target.id);
        report.ok++;
      } catch (e) {
        if (isStorageError(e) && (e.targetLevel || e.kind === 'aborted')) {
          fatal ??= e;
          headAc.abort();
          return;
        }
        if (report.problems.length < MAX_PROBLEMS) report.problems.push({ key: fileKey(c.root_id, c.rel_path), problem: errorText(e) });
      }
    });
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
  }
  if (fatal) {
    report.error = `${target.label} could not be checked: ${errorText(fatal)}`;
    if (report.requeued) ctx.wake();
    return report;
  }

  // 2. read a rolling sample
  const budget = opts.full ? Infinity : opts.readBudget;
  if (budget > 0) {
    for (const c of ctx.store.sampleCopies(target.id)) {
      if (report.bytes_read >= budget || opts.signal.aborted) break;
      if (bad.has(c.file_id)) continue;
      opts.onTick?.();
      try {
        const res = await backend.get(keyOf(c), { signal: opts.signal });
        const h = createHash('sha256');
        let n = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          h.update(chunk);
          n += chunk.length;
        }
        report.files_read++;
        report.bytes_read += n;
        const sha = h.digest('hex');
        if (n !== (c.size ?? c.file_size) || (c.sha256 && sha !== c.sha256)) {
          await problem(c, 'damaged', `is damaged (its bytes do not match its checksum)`, n === (c.size ?? c.file_size));
          report.ok = Math.max(0, report.ok - 1);
        } else {
          ctx.store.setRead(c.file_id, target.id);
        }
      } catch (e) {
        if (isStorageError(e) && e.kind === 'not_found') {
          await problem(c, 'missing', 'is missing');
          report.ok = Math.max(0, report.ok - 1);
          continue;
        }
        if (isStorageError(e) && (e.targetLevel || e.kind === 'aborted')) {
          report.error = `${target.label} stopped answering during the check: ${errorText(e)}`;
          break;
        }
        if (report.problems.length < MAX_PROBLEMS) report.problems.push({ key: fileKey(c.root_id, c.rel_path), problem: errorText(e) });
      }
    }
  }
  if (report.requeued) ctx.wake();
  return report;
}
