// A deadline on the first answer (restic-style wrapper, like retry and bandwidth): a HEAD, or a GET
// until its headers are in, that takes longer fails with a 'timeout' StorageError. A GET's body then
// streams for as long as it takes. Downloads use it so that a target that does not answer is
// passed over for the next copy instead of holding the visitor.
import { optionalCalls, StorageError, type GetOptions, type GetResult, type ObjectInfo, type StorageBackend } from './types';

export function withAnswerDeadline(backend: StorageBackend, ms: number): StorageBackend {
  /**
   * Run `fn` with a signal that the caller's aborts, and the deadline too until `fn` answers. A
   * listener, not AbortSignal.any: that costs ~25 µs a call on Node 20, a tenth of a proxied
   * download's CPU. `keep`: the answer holds a stream the caller's signal must still reach.
   */
  const within = async <T>(op: string, key: string, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>, keep?: (answer: T, release: () => void) => void): Promise<T> => {
    const ac = new AbortController();
    const follow = () => ac.abort(signal!.reason);
    signal?.addEventListener('abort', follow, { once: true });
    if (signal?.aborted) follow();
    const release = () => signal?.removeEventListener('abort', follow);
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      const answer = await fn(ac.signal);
      if (keep) keep(answer, release);
      else release();
      return answer;
    } catch (e) {
      release();
      if (ac.signal.aborted && !signal?.aborted) {
        throw new StorageError('timeout', `${backend.description} did not answer within ${ms / 1000} s.`, `${op} ${key}: no answer in ${ms} ms`, { cause: e });
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
  const untilClosed = (got: GetResult, release: () => void) => {
    if (got.body.destroyed) release();
    else got.body.once('close', release);
  };
  const wrapped: StorageBackend = {
    id: backend.id,
    kind: backend.kind,
    description: backend.description,
    prefix: backend.prefix,
    put: (key, body, opts) => backend.put(key, body, opts),
    get: (key: string, opts?: GetOptions): Promise<GetResult> => within('get', key, opts?.signal, (signal) => backend.get(key, { ...opts, signal }), untilClosed),
    head: (key: string, signal?: AbortSignal): Promise<ObjectInfo | null> => within('head', key, signal, (s) => backend.head(key, s)),
    list: (prefix, opts) => backend.list(prefix, opts),
    delete: (key, signal) => backend.delete(key, signal),
    copy: (src, dst, signal) => backend.copy(src, dst, signal),
    close: () => backend.close?.(),
  };
  return Object.assign(wrapped, optionalCalls(backend));
}
