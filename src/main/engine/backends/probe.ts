// "Test connection": write a small probe object, check its metadata and bytes come back, delete it.
// Each step is timed; a failure names the step, what went wrong and what to do.
//
// Two findings besides (issue 19): with `immutableDays`, whether the bucket has Object Lock on
// (checked first: without it every upload would be refused); and what the key could do to the
// backups if it were stolen, found out by deleting the probe. A key that cannot delete passes (that
// is the recommended key) and its probe stays in `.triplicate/`; a key that can delete passes with
// a warning and the provider's recipe for a better one.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TestConnectionResult, TestFinding } from '../../../shared/api';
import type { TargetConfig } from '../../../shared/config';
import { PRESETS } from './presets';
import { isStorageError, StorageError, type StorageBackend } from './types';

export interface TestConnectionOptions {
  signal?: AbortSignal;
  /** Key prefix of the target; defaults to `backend.prefix`. */
  prefix?: string;
  /** The whole test gives up after this long. Default 30 s. */
  timeoutMs?: number;
  /** The settings tested: their `immutableDays`, provider and bucket shape the findings. */
  target?: TargetConfig;
}

/** Where probes go: `<prefix>.triplicate/probe-<random>`. */
export const PROBE_DIR = '.triplicate/';

const STEP_WHAT: Record<string, string> = {
  lock: 'read the bucket’s Object Lock setting',
  put: 'write a test file',
  head: 'read back the test file’s details',
  get: 'read back the test file',
  delete: 'delete the test file',
};

export async function testConnection(backend: StorageBackend, arg?: AbortSignal | TestConnectionOptions): Promise<TestConnectionResult> {
  const opts: TestConnectionOptions = arg instanceof AbortSignal ? { signal: arg } : (arg ?? {});
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;

  const prefix = opts.prefix ?? backend.prefix ?? '';
  const key = `${prefix}${PROBE_DIR}probe-${randomBytes(8).toString('hex')}`;
  const payload = Buffer.from(`Triplicate connection test ${new Date().toISOString()} ${randomBytes(16).toString('hex')}\n`);
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const mtimeMs = Date.now();
  const steps: TestConnectionResult['steps'] = [];
  const findings: TestFinding[] = [];
  const started = performance.now();
  const t = opts.target;
  const lockDays = t?.kind === 's3' ? (t.immutableDays ?? 0) : 0;
  const preset = t?.kind === 's3' ? PRESETS[t.preset] : undefined;
  const bucket = t?.kind === 's3' ? t.bucket : undefined;
  let lockOn = false;
  let stored = false;
  let versionId: string | undefined;
  let canDelete: TestConnectionResult['can_delete'];
  let current = 'put';

  const step = async (name: string, fn: () => Promise<string | void>) => {
    current = name;
    const t0 = performance.now();
    try {
      const note = await fn();
      steps.push({ step: name, ok: true, ms: Math.round(performance.now() - t0), ...(note ? { note } : {}) });
    } catch (e) {
      steps.push({ step: name, ok: false, ms: Math.round(performance.now() - t0), error: errorLine(e) });
      throw e;
    }
  };

  try {
    if (lockDays > 0 && preset?.objectLock === 'bucket-rule') {
      findings.push({
        level: 'warn',
        message: `${preset.label} locks copies with bucket lock rules, which Triplicate cannot check: make sure a rule keeps ${prefix ? `"${prefix}"` : 'the whole bucket'} for at least ${plural(lockDays, 'day')}.`,
        link: preset.keyRecipe,
      });
    } else if (lockDays > 0 && backend.objectLock) {
      const check = backend.objectLock.bind(backend);
      await step('lock', async () => {
        const lock = await check(signal);
        if (lock.state === 'on') {
          lockOn = true;
          return `Object Lock is on${lock.defaultRetention ? ` (bucket default: ${lock.defaultRetention})` : ''}`;
        }
        if (lock.state === 'denied') {
          findings.push({
            level: 'warn',
            message: `Triplicate could not check that the bucket has Object Lock on: this key may not read that setting (s3:GetBucketObjectLockConfiguration). If the bucket does not have it, every upload will be refused.`,
          });
          return 'not allowed to read the setting';
        }
        const where = bucket ? `The bucket "${bucket}"` : 'This bucket';
        const fix = preset?.objectLockNote ?? '';
        throw problem(
          lock.state === 'off'
            ? `${where} does not have Object Lock on, so its copies could still be deleted. ${fix} Or set "Undeletable for" to 0 days.`.replace(/\s+/g, ' ')
            : `${backend.description} does not support Object Lock, so copies there cannot be made undeletable. Set "Undeletable for" to 0 days, or use a server that has it.`,
          `object lock: ${lock.state}${'detail' in lock ? `; ${lock.detail}` : ''}`,
        );
      });
    }
    await step('put', async () => {
      // The probe is written without retention, whatever `immutableDays` says: it must be deletable.
      const info = await backend.put(key, { size: payload.length, open: () => Readable.from([payload]) }, { sha256, mtimeMs, contentType: 'text/plain', signal, unlocked: true });
      versionId = info.versionId;
      stored = true;
    });
    await step('head', async () => {
      const info = await backend.head(key, signal);
      if (!info) {
        throw problem(`${backend.description} accepted the test file but cannot find it right after. Check that the endpoint and bucket point at a normal S3 bucket.`);
      }
      if (info.size !== payload.length) {
        throw problem(`${backend.description} reports the test file as ${info.size} bytes instead of ${payload.length}. This destination cannot be trusted with backups.`);
      }
      if (info.sha256 !== sha256) {
        throw problem(
          `${backend.description} does not keep custom metadata (the file's SHA-256), which Triplicate needs to verify every copy. Choose another provider or server.`,
        );
      }
    });
    await step('get', async () => {
      const res = await backend.get(key, { signal });
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of res.body) {
        const b = c as Buffer;
        n += b.length;
        // A probe is tiny; anything much bigger is not our file.
        if (n > payload.length * 2 + 1024) break;
        chunks.push(b);
      }
      res.body.destroy();
      if (!Buffer.concat(chunks).equals(payload)) {
        throw problem(`${backend.description} returned different bytes than Triplicate wrote. This destination cannot be trusted with backups; check the server.`);
      }
    });
    await step('delete', async () => {
      canDelete = await deleteProbe(backend, key, versionId, signal);
      if (canDelete === 'no') return 'refused: this key cannot delete';
      stored = false;
      if (canDelete === 'hide') return 'hidden only: its version stays';
      if (await backend.head(key, signal)) {
        throw problem(`${backend.description} still shows the test file after deleting it. Check the bucket's settings (object lock, retention).`);
      }
    });
    findings.push(deleteFinding(canDelete!, { key, bucket, lockDays, lockOn, preset, prefix, keyed: t?.kind === 's3' }));
    const total = Math.round(performance.now() - started);
    const did = canDelete === 'yes' ? 'wrote, read back and deleted a test file' : 'wrote and read back a test file';
    return { ok: true, steps, message: `${backend.description} works: Triplicate ${did} in ${total} ms.`, findings, can_delete: canDelete };
  } catch (e) {
    if (stored) {
      // Best effort, bounded, and not tied to the (possibly expired) signal of the test.
      await backend.delete(key, AbortSignal.timeout(5000)).catch(() => {});
    }
    return { ok: false, steps, message: failureMessage(backend, current, e, timeout.aborted && !opts.signal?.aborted, timeoutMs), ...(findings.length ? { findings } : {}) };
  }
}

/**
 * Delete the probe as a stolen key would try to: its version for good when the bucket keeps
 * versions (what erases a backup), else by name. A refusal is the answer, not a failure.
 */
async function deleteProbe(backend: StorageBackend, key: string, versionId: string | undefined, signal: AbortSignal): Promise<'yes' | 'hide' | 'no'> {
  /** false: refused. */
  const attempt = async (fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (e) {
      if (isStorageError(e) && e.kind === 'refused') return false;
      throw e;
    }
  };
  const eraseVersion = versionId ? backend.deleteVersion?.bind(backend) : undefined;
  if (versionId && eraseVersion) {
    if (await attempt(() => eraseVersion(key, versionId, signal))) return 'yes';
    return (await attempt(() => backend.delete(key, signal))) ? 'hide' : 'no';
  }
  return (await attempt(() => backend.delete(key, signal))) ? 'yes' : 'no';
}

function deleteFinding(
  can: 'yes' | 'hide' | 'no',
  o: { key: string; bucket?: string; lockDays: number; lockOn: boolean; preset?: (typeof PRESETS)[keyof typeof PRESETS]; prefix: string; keyed: boolean },
): TestFinding {
  const where = o.bucket ? `"${o.bucket}"` : 'this destination';
  const recipe = o.preset?.keyRecipe;
  // The card's lasting line (S3 keys only: a folder has no key to change), before the recipe's link.
  const short = (s: string): { short?: string } => (o.keyed ? { short: s } : {});
  const makeOne = recipe ? 'Make a key that cannot:' : 'Make a key that may write, read and list, but not delete.';
  if (can === 'no') {
    return {
      level: 'good',
      message: `This key cannot delete, so a stolen copy of it cannot erase the backups. Its test file stays at "${o.key}"; a lifecycle rule that removes "${o.prefix}${PROBE_DIR}probe-" files after a day clears such files.`,
    };
  }
  if (can === 'hide') {
    return {
      level: 'good',
      message: `This key can only hide files in ${where} (a delete marker): their earlier versions stay, so a stolen copy of it cannot erase the backups. The hidden test file stays at "${o.key}".`,
    };
  }
  if (o.lockOn) {
    return {
      level: 'warn',
      message: `This key can delete, but Object Lock keeps every copy in ${where} for ${plural(o.lockDays, 'day')} after it is written: a stolen copy of the key cannot erase them before then. A key that cannot delete is safer still.`,
      link: recipe,
      ...short(`This key can delete the backups once their ${plural(o.lockDays, 'day')} of Object Lock are over. ${makeOne}`),
    };
  }
  if (!o.keyed) {
    // A folder (a USB disk, a mounted share) has no key: whatever runs here can delete in it.
    return {
      level: 'warn',
      message: `Any program on this computer can delete the backups in this folder: ransomware that reaches it can erase these copies too. Keep another copy where it cannot: a bucket whose key cannot delete, or with "Undeletable for" set.`,
    };
  }
  if (o.preset?.objectLock === 'bucket-rule') {
    return {
      level: 'warn',
      message: `Anyone with this key can delete every backup in ${where}: ${o.preset.label} has no key that may write but not delete, so protect the copies with a bucket lock rule.`,
      link: recipe,
      // No key of this provider can do better: with "Undeletable for" set, the lock rule is the answer, not a lasting warning.
      ...(o.lockDays === 0 ? short(`This key can delete the backups. Protect them with a bucket lock rule${recipe ? ':' : '.'}`) : {}),
    };
  }
  return {
    level: 'warn',
    message: `Anyone with this key can delete every backup in ${where}: ransomware that finds it on this computer can erase the copies too. Give Triplicate a key that may write, read and list, but not delete.`,
    link: recipe,
    ...short(`This key can delete the backups. ${makeOne}`),
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function problem(message: string, detail = 'probe check failed'): StorageError {
  return new StorageError('integrity', message, detail);
}

function errorLine(e: unknown): string {
  if (isStorageError(e)) return e.detail ? `${e.message} (${e.detail})` : e.message;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function failureMessage(backend: StorageBackend, step: string, e: unknown, timedOut: boolean, timeoutMs: number): string {
  const what = STEP_WHAT[step] ?? step;
  if (timedOut) {
    const limit = timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} seconds`;
    return `${backend.description} did not finish the test within ${limit} (while trying to ${what}). Check that it is switched on and reachable.`;
  }
  if (!isStorageError(e)) return `Triplicate could not ${what} on ${backend.description}: ${e instanceof Error ? e.message : String(e)}`;
  if (e.kind === 'aborted') return 'The test was cancelled.';
  if (e.kind === 'integrity') return e.message;
  return `Triplicate could not ${what}. ${e.message}`;
}
