// Small helpers shared by the engine's modules.
import { randomBytes } from 'node:crypto';

/**
 * `bytes` random bytes as URL-safe text (base64url) that never starts with '-' or '_': these
 * end up on command lines (`triplicate link revoke <id>`, `--token <admin token>`), where a
 * leading '-' reads as an option (1 random value in 32 started with one).
 */
export function randomToken(bytes: number): string {
  for (;;) {
    const t = randomBytes(bytes).toString('base64url');
    if (/^[A-Za-z0-9]/.test(t)) return t;
  }
}

/** Run fn over items with at most `limit` in flight; resolves when all are done (errors are fn's business). */
export async function forEachLimit<T>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const inflight = new Set<Promise<void>>();
  for await (const item of items as AsyncIterable<T>) {
    const p: Promise<void> = fn(item).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= limit) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A sentence for a local file-system error, naming the file and the next step. */
export function describeLocalError(e: unknown, what: string): string {
  switch (errnoOf(e)) {
    case 'ENOENT':
      return `${what} is no longer there (moved or deleted).`;
    case 'EACCES':
    case 'EPERM':
      return `Triplicate is not allowed to read ${what}. Give the Triplicate user read permission on it.`;
    case 'EBUSY':
    case 'ETXTBSY':
      return `${what} is locked by another program. Triplicate tries again later.`;
    case 'EIO':
      return `The disk reported a read error on ${what}. Check the disk; Triplicate tries again later.`;
    case 'ENAMETOOLONG':
      return `The path of ${what} is too long for this system. Shorten the folder or file name.`;
    case 'ELOOP':
      return `${what} is a link that points to itself. Remove the link.`;
    default:
      return `Reading ${what} failed: ${errorText(e)}.`;
  }
}

/** Local clock time "10:47" for sentences. */
export { formatClock as clockTime } from '../../shared/format';

/** Another engine already runs on this data dir (its lock is held by a live process). */
export class EngineLockedError extends Error {}

/** Whether a process with this id runs (one of another user counts: EPERM). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
