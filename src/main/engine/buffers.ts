// Reused byte buffers for reading files (hashing, whole-file upload bodies, upload parts): a fresh
// buffer per read cost the engine measurably more CPU in a sync (each one above glibc's 128 KiB mmap
// threshold is mapped, faulted in and unmapped again).
//
// A buffer goes back only when nothing can still read from or write into it; one a failed or
// aborted request may still hold is left to the GC. At most `maxIdleBytes` are kept idle, and none
// once nothing was given back for `idleMs`.

const MIN_CLASS = 64 * 1024;
const MAX_POWER_OF_TWO_CLASS = 8 * 1024 * 1024;

/** The length of the buffer take(size) hands out: a power of two from 64 KiB to 8 MiB, else `size`. */
export function bufferClass(size: number): number {
  if (size > MAX_POWER_OF_TWO_CLASS) return size;
  let c = MIN_CLASS;
  while (c < size) c *= 2;
  return c;
}

export class BufferPool {
  private free = new Map<number, Buffer[]>();
  private idleBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxIdleBytes: number,
    private readonly idleMs: number,
  ) {}

  /** A buffer of bufferClass(size) bytes (at least `size`); its contents are old data. */
  take(size: number): Buffer {
    const len = bufferClass(size);
    const list = this.free.get(len);
    const buf = list?.pop();
    if (buf) {
      this.idleBytes -= len;
      return buf;
    }
    return Buffer.allocUnsafeSlow(len);
  }

  /** Give back a buffer from take() that nothing reads or writes any more. */
  give(buf: Buffer): void {
    const len = buf.length;
    if (len !== bufferClass(len) || len > this.maxIdleBytes) return; // not one of ours, or too big to keep
    let list = this.free.get(len);
    if (!list) this.free.set(len, (list = []));
    list.push(buf);
    this.idleBytes += len;
    // Over the bound: drop the biggest idle buffers first (the small ones are the frequent ones).
    if (this.idleBytes > this.maxIdleBytes) {
      for (const size of [...this.free.keys()].sort((a, b) => b - a)) {
        const l = this.free.get(size)!;
        while (l.length && this.idleBytes > this.maxIdleBytes) {
          l.pop();
          this.idleBytes -= size;
        }
        if (this.idleBytes <= this.maxIdleBytes) break;
      }
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.clear(), this.idleMs);
    this.timer.unref?.();
  }

  /** Bytes held idle (tests, diagnostics). */
  get idle(): number {
    return this.idleBytes;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.free.clear();
    this.idleBytes = 0;
  }
}

/** The engine's pool: 64 MiB idle at most (4 uploads x 2 targets x an 8 MiB part). */
export const ioBuffers = new BufferPool(64 * 1024 * 1024, 10_000);
