// Drag a file out of the window (Restore browser, Browse): the OS needs a real file, so a file that
// is on local disk is dragged from its folder, and a missing one is first fetched from the engine
// (local disk, then the destinations) into a temporary folder. Dropping it somewhere restores it there.
import type { WebContents } from 'electron';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { STREAM_ROUTES } from '../../shared/api';
import type { ApiClient } from '../../shared/client';
import { log } from './log';

/** Bigger files are restored with the Restore button, not by dragging. */
const MAX_DRAG_FETCH_BYTES = 512 * 1024 * 1024;

export class DragOut {
  private readonly ready = new Map<string, string>();
  private readonly pending = new Map<string, Promise<{ ready: boolean; message?: string }>>();
  private tempRoot: string | null = null;

  constructor(
    private readonly client: ApiClient,
    private readonly iconPath: string,
  ) {}

  prepare(key: string): Promise<{ ready: boolean; message?: string }> {
    if (this.ready.has(key)) return Promise.resolve({ ready: true });
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetch(key).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  async start(sender: WebContents, key: string): Promise<void> {
    let file = this.ready.get(key);
    if (!file) {
      const r = await this.prepare(key);
      file = this.ready.get(key);
      if (!file) {
        sender.send('triplicate:command', { type: 'message', level: 'warn', text: r.message ?? 'This file cannot be dragged out; use Restore instead.' });
        return;
      }
    }
    try {
      sender.startDrag({ file, icon: this.iconPath });
    } catch (e) {
      log.warn('startDrag failed', e);
    }
  }

  private async fetch(key: string): Promise<{ ready: boolean; message?: string }> {
    try {
      const rec = await this.client.call('file', { query: { key } });
      if (rec.local === 'present') {
        const roots = await this.client.call('listRoots');
        const root = roots.find((r) => r.id === rec.root_id);
        if (root) {
          const path = join(root.path, ...rec.rel_path.split('/'));
          const st = await stat(path).catch(() => null);
          if (st?.isFile()) {
            this.ready.set(key, path);
            return { ready: true };
          }
        }
      }
      if (rec.size > MAX_DRAG_FETCH_BYTES) return { ready: false, message: 'This file is too big to drag out. Use the Restore button instead.' };
      if (!this.tempRoot) this.tempRoot = await mkdtemp(join(tmpdir(), 'triplicate-drag-'));
      const dir = join(this.tempRoot, String(rec.id));
      await mkdir(dir, { recursive: true });
      const dest = join(dir, basename(rec.rel_path));
      const url = `${this.client.baseUrl}${STREAM_ROUTES.download}?key=${encodeURIComponent(key)}`;
      const res = await fetch(url, { headers: this.client.headers() });
      if (res.status === 404) return { ready: false, message: 'No copy of this file could be found to drag out.' };
      if (!res.ok || !res.body) return { ready: false, message: `The engine could not send the file (answer ${res.status}).` };
      await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream), createWriteStream(dest));
      this.ready.set(key, dest);
      return { ready: true };
    } catch (e) {
      log.warn('prepare drag failed', e);
      return { ready: false, message: 'The file could not be fetched for dragging. Use the Restore button instead.' };
    }
  }

  async dispose(): Promise<void> {
    if (this.tempRoot) await rm(this.tempRoot, { recursive: true, force: true }).catch(() => undefined);
  }
}
