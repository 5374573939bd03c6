import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** SHA-256 (hex) and byte count of a file, streamed (no whole-file buffer). */
export async function sha256File(path: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
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
