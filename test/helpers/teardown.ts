// One teardown for the tests that start real things: each is added as it starts and closed after
// the test (or the file), the last started first, so an engine stops before the s3rver it writes
// to and a temp dir goes once nothing uses it.
//
//   const td = useTeardown();
//   const base = td.dir('trip-sync-');
//   const s3 = td.add(await startS3());
//   const engine = td.add(await startEngine(join(base, 'data'), cfg));
import { ChildProcess } from 'node:child_process';
import { afterAll, afterEach } from 'vitest';
import { cleanup, tempDir } from './engine';

/**
 * What can be closed: a path (removed with what it holds), a child process (killed if it still
 * runs), something with `dispose()` (an s3rver, a child s3rver), `stop()` (an engine, a proxy) or
 * `close()` (an http server, a backend), or a function that closes anything else.
 */
export type Closable = string | ChildProcess | { dispose(): unknown } | { stop(): unknown } | { close(): unknown } | (() => unknown);

export class Teardown {
  private readonly items: Closable[] = [];

  /** Close `x` at teardown; returns it, so it can be added where it is made. */
  add<T extends Closable>(x: T): T {
    this.items.push(x);
    return x;
  }

  /** Leave `x` alone at teardown (the test closed it itself). */
  forget(x: Closable): void {
    const i = this.items.lastIndexOf(x);
    if (i >= 0) this.items.splice(i, 1);
  }

  /** A new temp dir, removed at teardown. */
  dir(prefix = 'trip-'): string {
    return this.add(tempDir(prefix));
  }

  /**
   * Close everything, last added first. Every item is closed even when one fails; the first
   * failure is thrown at the end. A failing `stop()` is let pass: an engine the test stopped, or
   * left half started, on purpose.
   */
  async run(): Promise<void> {
    let failure: unknown;
    for (const x of this.items.splice(0).reverse()) {
      try {
        await close(x);
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

async function close(x: Closable): Promise<void> {
  if (typeof x === 'function') await x();
  else if (typeof x === 'string') cleanup(x);
  else if (x instanceof ChildProcess) {
    if (x.exitCode === null && x.signalCode === null) x.kill('SIGKILL');
  } else if ('dispose' in x) await x.dispose();
  else if ('stop' in x) await Promise.resolve(x.stop()).catch(() => undefined);
  else await x.close();
}

/** A teardown run after each test of the file (or, with 'all', once after the last). */
export function useTeardown(when: 'each' | 'all' = 'each'): Teardown {
  const t = new Teardown();
  (when === 'each' ? afterEach : afterAll)(() => t.run());
  return t;
}
