import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { ioBuffers } from '../buffers';
import { SNIFF_BYTES } from './sniff';

/** Bytes read per call while hashing a file. */
const READ_BLOCK = 1024 * 1024;

/**
 * SHA-256 (hex) and byte count of a file, read block by block into one reused buffer (buffers.ts):
 * no whole-file buffer, and no fresh buffer per file or per block (100,000 photos would otherwise
 * be gigabytes of garbage and page faults). With `sizeHint` (a stat the caller just made) a small
 * file takes a buffer its size and, normally, one read. `onHead` sees the first bytes (up to SNIFF_BYTES).
 */
export async function sha256File(path: string, signal?: AbortSignal, sizeHint?: number, onHead?: (head: Buffer) => void): Promise<{ sha256: string; size: number }> {
  signal?.throwIfAborted();
  const fh = await open(path, 'r');
  // one byte more than the hint: a file that grew since is read to its end all the same
  const buf = ioBuffers.take(sizeHint !== undefined && sizeHint < READ_BLOCK ? sizeHint + 1 : READ_BLOCK);
  try {
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      // the burst guard sniffs the first bytes from this same read (called synchronously: the buffer is reused)
      if (size === 0) onHead?.(buf.subarray(0, Math.min(bytesRead, SNIFF_BYTES)));
      h.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      size += bytesRead;
      signal?.throwIfAborted();
    }
    return { sha256: h.digest('hex'), size };
  } finally {
    // (every read was awaited: nothing writes into the buffer any more)
    ioBuffers.give(buf);
    await fh.close();
  }
}

/** A pass-through that hashes what flows through it (to prove the bytes uploaded are the bytes hashed). */
export class HashingStream extends Transform {
  private readonly h = createHash('sha256');
  bytes = 0;
  private result: string | undefined;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.result = this.h.digest('hex');
    cb();
  }
  /** The digest, once the stream has ended; undefined before. */
  get sha256(): string | undefined {
    return this.result;
  }
}
