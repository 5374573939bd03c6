// Rows of a paged route (queue, media) loaded on demand for a virtualized list: only the pages the
// user scrolls to are fetched (at most 3 requests at once), so 100,000 rows cost a few requests.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Page } from '../../../shared/api';
import { isNotAvailable } from './errors';

export type FetchPage<T> = (offset: number, limit: number, signal: AbortSignal) => Promise<Page<T>>;

interface Cache<T> {
  key: string;
  pages: Map<number, T[]>;
  loading: Set<number>;
  queue: number[];
  total: number | null;
  ctrl: AbortController;
  want: [number, number];
}

const MAX_PARALLEL = 3;

export interface PagedList<T> {
  total: number | null;
  get(index: number): T | undefined;
  /** Rows first..last are on screen: fetch their pages (and drop queued pages far away). */
  ensure(first: number, last: number): void;
  /** Something changed on the engine: fetch the visible pages again, keep showing the old rows meanwhile. */
  refresh(): void;
  /** Change loaded rows in place (live events). */
  patch(fn: (row: T) => T | undefined): void;
  error: unknown;
  notAvailable: boolean;
  version: number;
}

export function usePagedList<T>(key: string, fetchPage: FetchPage<T>, pageSize = 200): PagedList<T> {
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const cache = useRef<Cache<T> | null>(null);
  const bump = useCallback(() => setVersion((v) => v + 1), []);

  const fresh = (k: string): Cache<T> => ({ key: k, pages: new Map(), loading: new Set(), queue: [], total: null, ctrl: new AbortController(), want: [0, 50] });
  if (!cache.current) cache.current = fresh(key);

  const pump = useCallback(() => {
    const c = cache.current!;
    while (c.loading.size < MAX_PARALLEL && c.queue.length > 0) {
      const page = c.queue.shift()!;
      if (c.pages.has(page) || c.loading.has(page)) continue;
      c.loading.add(page);
      const ctrl = c.ctrl;
      fetchRef
        .current(page * pageSize, pageSize, ctrl.signal)
        .then((res) => {
          if (cache.current !== c || ctrl.signal.aborted) return;
          c.pages.set(page, res.items);
          c.total = res.total;
          setError(null);
          bump();
        })
        .catch((e: unknown) => {
          if (cache.current !== c || ctrl.signal.aborted) return;
          setError(e);
          bump();
        })
        .finally(() => {
          c.loading.delete(page);
          if (cache.current === c) pump();
        });
    }
  }, [bump, pageSize]);

  const ensure = useCallback(
    (first: number, last: number) => {
      const c = cache.current!;
      c.want = [first, last];
      const p0 = Math.floor(Math.max(0, first) / pageSize);
      const p1 = Math.floor(Math.max(0, last) / pageSize);
      const wanted: number[] = [];
      for (let p = p0; p <= p1; p++) if (!c.pages.has(p) && !c.loading.has(p)) wanted.push(p);
      c.queue = wanted; // pages the user scrolled past are not fetched any more
      pump();
    },
    [pageSize, pump],
  );

  // A new query (or a remount after cancel): start over; the old requests are cancelled.
  useEffect(() => {
    const c = cache.current;
    if (!c || c.key !== key || c.ctrl.signal.aborted) {
      c?.ctrl.abort();
      cache.current = fresh(key);
      setError(null);
      bump();
    }
    ensure(...cache.current!.want);
  }, [key, bump, ensure]);

  useEffect(() => () => cache.current?.ctrl.abort(), []);

  const refresh = useCallback(() => {
    const c = cache.current!;
    const [first, last] = c.want;
    const p0 = Math.floor(Math.max(0, first) / pageSize);
    const p1 = Math.floor(Math.max(0, last) / pageSize);
    // keep the visible pages on screen while they reload; forget the rest
    for (const p of [...c.pages.keys()]) if (p < p0 || p > p1) c.pages.delete(p);
    const ctrl = c.ctrl;
    for (let p = p0; p <= p1; p++) {
      if (c.loading.has(p)) continue;
      c.loading.add(p);
      fetchRef
        .current(p * pageSize, pageSize, ctrl.signal)
        .then((res) => {
          if (cache.current !== c || ctrl.signal.aborted) return;
          c.pages.set(p, res.items);
          c.total = res.total;
          bump();
        })
        .catch(() => undefined)
        .finally(() => c.loading.delete(p));
    }
  }, [bump, pageSize]);

  const patch = useCallback(
    (fn: (row: T) => T | undefined) => {
      const c = cache.current!;
      let changed = false;
      for (const [p, rows] of c.pages) {
        let copy: T[] | null = null;
        rows.forEach((r, i) => {
          const n = fn(r);
          if (n !== undefined && n !== r) {
            copy ??= rows.slice();
            copy[i] = n;
          }
        });
        if (copy) {
          c.pages.set(p, copy);
          changed = true;
        }
      }
      if (changed) bump();
    },
    [bump],
  );

  const c = cache.current;
  return {
    total: c.total,
    get: (i: number) => c.pages.get(Math.floor(i / pageSize))?.[i % pageSize],
    ensure,
    refresh,
    patch,
    error,
    notAvailable: error !== null && isNotAvailable(error),
    version,
  };
}
