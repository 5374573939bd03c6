// The download server's access log: one JSON line per request, written in batches. Tokens never
// reach it (only the path is logged, never the query or headers).
import { appendFileSync, createWriteStream, renameSync, statSync, type WriteStream } from 'node:fs';
import { log } from '../../log';
import { PRIVATE_FILE_MODE } from '../../private-files';
import { errorText } from '../../util';

export interface AccessEntry {
  ts: string;
  method: string;
  path: string;
  status?: number;
  bytes?: number;
  complete?: boolean;
  ms?: number;
  ip?: string;
  /** The visitor behind the tunnel (CF-Connecting-IP from cloudflared on this machine). */
  client?: string;
  source?: string;
  link?: string;
  range?: string;
  via?: 'admin';
  error?: string;
  ua?: string;
}

/** Access-log lines wait in memory at most this long (or until ACCESS_BATCH_CHARS), then go out in one write. */
const ACCESS_FLUSH_MS = 200;
const ACCESS_BATCH_CHARS = 64 * 1024;
/** Logs with lines still in memory: written synchronously if the process exits before their flush. */
const unflushedLogs = new Set<AccessLog>();
let exitHookInstalled = false;

/**
 * JSON-lines access log; tokens never reach it (only the path is logged, never the query or headers).
 * Lines are batched (like nginx's `access_log … buffer= flush=`): one write per ACCESS_FLUSH_MS or
 * per 64 KiB instead of one per request; stop() and process exit write what is left.
 */
export class AccessLog {
  private stream: WriteStream | null = null;
  private dropped = 0;
  private pending = '';
  private pendingLines = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly path: string) {}
  open(): void {
    try {
      if (statSync(this.path).size > 50 * 1024 * 1024) renameSync(this.path, `${this.path}.1`);
    } catch {}
    this.stream = createWriteStream(this.path, { flags: 'a', mode: PRIVATE_FILE_MODE });
    this.stream.on('error', (e) => log.warn(`download access log: ${errorText(e)}`));
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const l of unflushedLogs) l.flushSync();
      });
    }
  }
  write(e: AccessEntry): void {
    if (!this.stream) return;
    this.pending += `${JSON.stringify(e)}\n`;
    this.pendingLines++;
    if (this.pending.length >= ACCESS_BATCH_CHARS) this.flush();
    else if (!this.timer) {
      unflushedLogs.add(this);
      this.timer = setTimeout(() => this.flush(), ACCESS_FLUSH_MS);
      this.timer.unref?.();
    }
  }
  private take(): string {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    unflushedLogs.delete(this);
    let text = this.pending;
    if (this.dropped && text) {
      text = `${JSON.stringify({ ts: new Date().toISOString(), dropped_lines: this.dropped })}\n${text}`;
      this.dropped = 0;
    }
    this.pending = '';
    this.pendingLines = 0;
    return text;
  }
  flush(): void {
    const s = this.stream;
    if (!s || !this.pending) return;
    // A disk that cannot keep up must not make the log grow in memory.
    if (s.writableLength > 8 * 1024 * 1024) {
      const lines = this.pendingLines;
      this.take();
      this.dropped += lines;
      return;
    }
    s.write(this.take());
  }
  /** At process exit: append what is still in memory (best effort; the stream's own writes may be in flight). */
  flushSync(): void {
    if (!this.pending) return;
    try {
      appendFileSync(this.path, this.take());
    } catch {}
  }
  close(): Promise<void> {
    this.flush();
    this.take();
    const s = this.stream;
    this.stream = null;
    return new Promise((r) => (s ? s.end(() => r()) : r()));
  }
}
