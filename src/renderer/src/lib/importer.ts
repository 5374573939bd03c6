// Files and folders dropped on the window, copied into a storage root.
// - Electron: the shell gives real paths; the engine copies them (`importFiles`), 200 paths a request.
// - Browser: each file is streamed to `PUT /api/admin/upload` (4 at a time, XHR for byte progress);
//   folders are walked with the File System entries API, a directory batch at a time.
// Progress lives in a plain object and the UI samples it a few times a second, so 10,000 files do
// not mean 10,000 renders.
import { STREAM_ROUTES, type ApiErrorBody, type UploadResult } from '../../../shared/api';
import type { ApiClient } from '../../../shared/client';
import { isNotAvailable } from './errors';

export interface ImportProgress {
  phase: 'listing' | 'copying' | 'done' | 'cancelled' | 'failed';
  root: string;
  rootLabel: string;
  /** items found so far (files; in Electron, dropped paths, a folder counts once) */
  found: number;
  done: number;
  skipped: number;
  failed: number;
  bytesDone: number;
  /** bytes of the files listed so far (browser only) */
  bytesTotal: number;
  /** the first problems, at most 50 */
  problems: { path: string; reason: string }[];
  message?: string;
  startedAt: number;
}

export const IMPORT_BATCH = 200;
export const UPLOAD_PARALLEL = 4;
const MAX_PROBLEMS = 50;

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Join a sub-folder and a relative path into the path the engine expects ("/" separators, no leading "/"). */
export function joinRel(sub: string, rel: string): string {
  return [sub, rel]
    .join('/')
    .split(/[\\/]+/)
    .filter((p) => p && p !== '.')
    .join('/');
}

export class ImportJob {
  readonly progress: ImportProgress;
  private readonly ctrl = new AbortController();
  private readonly xhrs = new Set<XMLHttpRequest>();

  constructor(
    private readonly client: ApiClient,
    private readonly token: string | null,
    root: string,
    rootLabel: string,
    private readonly subfolder: string,
  ) {
    this.progress = { phase: 'listing', root, rootLabel, found: 0, done: 0, skipped: 0, failed: 0, bytesDone: 0, bytesTotal: 0, problems: [], startedAt: Date.now() };
  }

  cancel(): void {
    this.ctrl.abort();
    for (const x of this.xhrs) x.abort();
    if (this.progress.phase === 'listing' || this.progress.phase === 'copying') this.progress.phase = 'cancelled';
  }

  private problem(path: string, reason: string): void {
    if (this.progress.problems.length < MAX_PROBLEMS) this.progress.problems.push({ path, reason });
  }

  /** Electron: absolute paths from the preload's webUtils.getPathForFile. */
  async runPaths(paths: string[]): Promise<void> {
    const p = this.progress;
    p.found = paths.length;
    p.phase = 'copying';
    for (const batch of chunk(paths, IMPORT_BATCH)) {
      if (this.ctrl.signal.aborted) return;
      try {
        const r = await this.client.call('importFiles', { body: { root: p.root, paths: batch, dest_dir: this.subfolder || undefined } }, this.ctrl.signal);
        p.done += batch.length - Math.min(batch.length, r.skipped.length);
        p.skipped += r.skipped.length;
        p.bytesDone += r.bytes;
        for (const s of r.skipped) this.problem(s.path, s.reason);
      } catch (e) {
        if (this.ctrl.signal.aborted) return;
        if (isNotAvailable(e)) {
          p.phase = 'failed';
          p.message = 'This version of the backup engine cannot take dropped files yet. Copy them into the folder with your file manager instead.';
          return;
        }
        p.failed += batch.length;
        this.problem(batch[0] ?? '', e instanceof Error ? e.message : String(e));
      }
    }
    p.phase = 'done';
  }

  /** Browser: entries taken synchronously from the drop event. */
  runEntries(entries: FileSystemEntry[]): Promise<void> {
    return this.runSource(
      walk(entries, this.ctrl.signal, (path, reason) => {
        this.progress.failed++;
        this.problem(path, reason);
      }),
    );
  }

  /** Browser without the entries API (or files from a file input): plain files, no folders. */
  runFiles(files: readonly File[]): Promise<void> {
    async function* gen() {
      for (const file of files) yield { file, rel: file.webkitRelativePath || file.name };
    }
    return this.runSource(gen());
  }

  private async runSource(source: AsyncGenerator<{ file: File; rel: string }>): Promise<void> {
    const p = this.progress;
    const queue: { file: File; rel: string }[] = [];
    let listingDone = false;
    let stop = false;
    const wake: (() => void)[] = [];
    const notify = () => wake.splice(0).forEach((f) => f());

    const lister = (async () => {
      for await (const item of source) {
        if (this.ctrl.signal.aborted) break;
        queue.push(item);
        p.found++;
        p.bytesTotal += item.file.size;
        notify();
        // do not list far ahead of the uploads: memory stays small for huge drops
        while (queue.length > 2000 && !stop) await new Promise<void>((r) => wake.push(r));
      }
      listingDone = true;
      notify();
    })();

    p.phase = 'copying';
    const worker = async () => {
      for (;;) {
        if (this.ctrl.signal.aborted || stop) return;
        const item = queue.shift();
        if (!item) {
          if (listingDone) return;
          await new Promise<void>((r) => wake.push(r));
          continue;
        }
        notify();
        const res = await this.upload(item.file, joinRel(this.subfolder, item.rel));
        if (res === 'unavailable') {
          stop = true;
          p.phase = 'failed';
          p.message = 'This version of the backup engine cannot take uploads yet. Copy the files into the folder on the server instead.';
          notify();
          return;
        }
        if (res === 'ok') {
          p.done++;
          p.bytesDone += item.file.size;
        } else if (res.skipped) {
          p.skipped++;
          this.problem(item.rel, res.reason);
        } else {
          p.failed++;
          this.problem(item.rel, res.reason);
        }
      }
    };
    await Promise.all([lister, ...Array.from({ length: UPLOAD_PARALLEL }, worker)]);
    if (p.phase === 'copying') p.phase = this.ctrl.signal.aborted ? 'cancelled' : 'done';
  }

  private upload(file: File, rel: string): Promise<'ok' | 'unavailable' | { skipped: boolean; reason: string }> {
    return new Promise((resolve) => {
      const qs = new URLSearchParams({ root: this.progress.root, path: rel, mtime: String(file.lastModified) });
      const xhr = new XMLHttpRequest();
      this.xhrs.add(xhr);
      xhr.open('PUT', `${this.client.baseUrl.replace(/\/$/, '')}${STREAM_ROUTES.uploadFile}?${qs}`);
      if (this.token) xhr.setRequestHeader('authorization', `Bearer ${this.token}`);
      xhr.setRequestHeader('content-type', 'application/octet-stream');
      let last = 0;
      xhr.upload.onprogress = (e) => {
        this.progress.bytesDone += e.loaded - last;
        last = e.loaded;
      };
      const done = (r: 'ok' | 'unavailable' | { skipped: boolean; reason: string }) => {
        this.xhrs.delete(xhr);
        this.progress.bytesDone -= last; // the caller adds the whole size on success
        resolve(r);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            JSON.parse(xhr.responseText) as UploadResult;
          } catch {
            /* a body is optional */
          }
          return done('ok');
        }
        if (xhr.status === 404 || xhr.status === 501) return done('unavailable');
        let body: Partial<ApiErrorBody> = {};
        try {
          body = JSON.parse(xhr.responseText) as ApiErrorBody;
        } catch {
          /* not JSON */
        }
        done({ skipped: xhr.status === 409, reason: body.error ?? `The engine answered ${xhr.status}.` });
      };
      xhr.onerror = () => done({ skipped: false, reason: 'The backup engine did not answer. Try again when it is back.' });
      xhr.onabort = () => done({ skipped: false, reason: 'Cancelled.' });
      xhr.send(file);
    });
  }
}

/** Depth-first walk of dropped entries, yielding files with their path relative to the drop. */
export async function* walk(
  entries: FileSystemEntry[],
  signal: AbortSignal,
  onError: (path: string, reason: string) => void,
): AsyncGenerator<{ file: File; rel: string }> {
  const stack: FileSystemEntry[] = [...entries].reverse();
  while (stack.length > 0) {
    if (signal.aborted) return;
    const entry = stack.pop()!;
    const rel = entry.fullPath.replace(/^\/+/, '') || entry.name;
    if (entry.isFile) {
      try {
        const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
        yield { file, rel };
      } catch {
        onError(rel, 'This file could not be read. It may have been moved, or you may not have access.');
      }
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      const children: FileSystemEntry[] = [];
      // readEntries returns at most ~100 at a time; an empty batch means the end.
      for (let guard = 0; guard < 100_000; guard++) {
        let batch: FileSystemEntry[];
        try {
          batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        } catch {
          onError(rel, 'This folder could not be read.');
          break;
        }
        if (batch.length === 0) break;
        children.push(...batch);
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
  }
}
