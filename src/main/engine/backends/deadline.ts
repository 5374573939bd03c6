// A deadline on the first answer (restic-style wrapper, like retry and bandwidth): a HEAD, or a GET
// until its headers are in, that takes longer fails with a 'timeout' StorageError. A GET's body then
// streams for as long as it takes. Downloads use it so that a target that does not answer is
// passed over for the next copy instead of holding the visitor.
import { StorageError, type GetOptions, type GetResult, type ObjectInfo, type StorageBackend } from './types';

export function withAnswerDeadline(backend: StorageBackend, ms: number): StorageBackend {
  const within = async <T>(op: string, key: string, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      return await fn(signal ? AbortSignal.any([signal, ac.signal]) : ac.signal);
    } catch (e) {
      if (ac.signal.aborted && !signal?.aborted) {
        throw new StorageError('timeout', `${backend.description} did not answer within ${ms / 1000} s.`, `${op} ${key}: no answer in ${ms} ms`, { cause: e });
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
  const wrapped: StorageBackend = {
    id: backend.id,
    kind: backend.kind,
    description: backend.description,
    prefix: backend.prefix,
    put: (key, body, opts) => backend.put(key, body, opts),
    get: (key: string, opts?: GetOptions): Promise<GetResult> => within('get', key, opts?.signal, (signal) => backend.get(key, { ...opts, signal })),
    head: (key: string, signal?: AbortSignal): Promise<ObjectInfo | null> => within('head', key, signal, (s) => backend.head(key, s)),
    list: (prefix, opts) => backend.list(prefix, opts),
    delete: (key, signal) => backend.delete(key, signal),
    copy: (src, dst, signal) => backend.copy(src, dst, signal),
    close: () => backend.close?.(),
  };
  if (backend.cleanupIncomplete) wrapped.cleanupIncomplete = backend.cleanupIncomplete.bind(backend);
  return wrapped;
}
