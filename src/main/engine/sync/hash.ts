import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Files up to this size (by the caller's stat) are read in one call instead of streamed. */
const SMALL_FILE = 256 * 1024;

/**
 * SHA-256 (hex) and byte count of a file, streamed (no whole-file buffer). With `sizeHint` (a stat
 * the caller just made) a small file is read in one call: a stream allocates a 1 MiB buffer per
 * file, which for 100,000 photos of a few KB is gigabytes of garbage.
 */
export async function sha256File(path: string, signal?: AbortSignal, sizeHint?: number): Promise<{ sha256: string; size: number }> {
  if (sizeHint !== undefined && sizeHint <= SMALL_FILE) {
    signal?.throwIfAborted();
    const buf = await readFile(path, { signal });
    // grown past the hint since: hash what was read all the same (the caller compares sizes)
    return { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length };
  }
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        h.update(chunk);
        size += chunk.length;
      }
      yield* [];
    },
    { signal },
  );
  return { sha256: h.digest('hex'), size };
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
