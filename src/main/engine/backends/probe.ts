// "Test connection": write a small probe object, check its metadata and bytes come back, delete it.
// Each step is timed; a failure names the step, what went wrong and what to do.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TestConnectionResult } from '../../../shared/api';
import { isStorageError, StorageError, type StorageBackend } from './types';

export interface TestConnectionOptions {
  signal?: AbortSignal;
  /** Key prefix of the target; defaults to `backend.prefix`. */
  prefix?: string;
  /** The whole test gives up after this long. Default 30 s. */
  timeoutMs?: number;
}

/** Where probes go: `<prefix>.triplicate/probe-<random>`. */
export const PROBE_DIR = '.triplicate/';

const STEP_WHAT: Record<string, string> = {
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
  const started = performance.now();
  let stored = false;
  let current = 'put';

  const step = async (name: string, fn: () => Promise<void>) => {
    current = name;
    const t0 = performance.now();
    try {
      await fn();
      steps.push({ step: name, ok: true, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      steps.push({ step: name, ok: false, ms: Math.round(performance.now() - t0), error: errorLine(e) });
      throw e;
    }
  };

  try {
    await step('put', async () => {
      await backend.put(key, { size: payload.length, open: () => Readable.from([payload]) }, { sha256, mtimeMs, contentType: 'text/plain', signal });
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
      await backend.delete(key, signal);
      stored = false;
      if (await backend.head(key, signal)) {
        throw problem(`${backend.description} still shows the test file after deleting it. Check the bucket's settings (object lock, retention).`);
      }
    });
    const total = Math.round(performance.now() - started);
    return { ok: true, steps, message: `${backend.description} works: Triplicate wrote, read back and deleted a test file in ${total} ms.` };
  } catch (e) {
    if (stored) {
      // Best effort, bounded, and not tied to the (possibly expired) signal of the test.
      await backend.delete(key, AbortSignal.timeout(5000)).catch(() => {});
    }
    return { ok: false, steps, message: failureMessage(backend, current, e, timeout.aborted && !opts.signal?.aborted, timeoutMs) };
  }
}

function problem(message: string): StorageError {
  return new StorageError('integrity', message, 'probe check failed');
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
  if (e.kind === 'auth' && step === 'delete') {
    return `The access key may write and read on ${backend.description} but not delete. Give it permission to delete objects: Triplicate removes old versions when their retention ends.`;
  }
  return `Triplicate could not ${what}. ${e.message}`;
}
