// Shared pieces of the backend tests: bodies, hashing, reading streams, harnesses per backend.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FolderTargetConfig, S3TargetConfig } from '../../src/shared/config';
import type { BodySource } from '../../src/main/engine/backends/types';

export const MiB = 1024 * 1024;

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function bufferBody(b: Buffer): BodySource {
  return { size: b.length, open: () => Readable.from(b.length ? [b] : []) };
}

/**
 * A body that can also be read block by block (BodySource.openReader), as the uploader's local
 * files are: a multipart upload of it reads each part straight into its buffer. `size` may lie
 * (a file that shrank or grew); `delayMs` pauses each read; `failAfter` bytes make a read fail
 * like a dying disk. `opened` counts the readers opened (one per attempt).
 */
export function blockBody(data: Buffer, opts: { size?: number; delayMs?: number; failAfter?: number } = {}): BodySource & { opened: number; readers: { closed: boolean }[] } {
  const src = {
    size: opts.size ?? data.length,
    opened: 0,
    readers: [] as { closed: boolean }[],
    open: () =>
      Readable.from(
        (async function* () {
          const end = opts.failAfter ?? data.length;
          for (let off = 0; off < end; off += MiB) {
            if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
            yield data.subarray(off, Math.min(end, off + MiB));
          }
          if (opts.failAfter !== undefined) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        })(),
      ),
    openReader: async () => {
      src.opened++;
      const state = { closed: false };
      src.readers.push(state);
      let pos = 0;
      return {
        async read(buf: Buffer): Promise<number> {
          if (state.closed) throw new Error('read after close');
          if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
          if (opts.failAfter !== undefined && pos + buf.length > opts.failAfter) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
          const n = data.copy(buf, 0, pos, Math.min(data.length, pos + buf.length));
          pos += n;
          return n;
        },
        async close(): Promise<void> {
          state.closed = true;
        },
      };
    },
  };
  return src;
}

/**
 * A body that trickles out `size` bytes in `chunk`-sized pieces with a pause between them:
 * long enough to abort mid-upload. Bounded by size/chunk iterations.
 */
export function slowBody(data: Buffer, chunk: number, pauseMs: number): BodySource {
  return {
    size: data.length,
    open: () =>
      Readable.from(
        (async function* () {
          for (let off = 0; off < data.length; off += chunk) {
            yield data.subarray(off, Math.min(data.length, off + chunk));
            await new Promise((r) => setTimeout(r, pauseMs));
          }
        })(),
      ),
  };
}

export async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function randomData(n: number): Buffer {
  return randomBytes(n);
}

export function tempDir(tag: string): { path: string; dispose: () => void } {
  const path = mkdtempSync(join(tmpdir(), `trip-${tag}-`));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

export function folderTarget(path: string, extra: Partial<FolderTargetConfig> = {}): FolderTargetConfig {
  return {
    id: 'usb',
    label: 'USB disk',
    kind: 'folder',
    path,
    prefix: '',
    priority: 10,
    enabled: true,
    concurrency: 4,
    versionsPrefix: '.triplicate/versions/',
    ...extra,
  };
}

/** Small multipart settings so a ~12 MiB file goes up in 3 parts. */
export const SMALL_MULTIPART: Partial<S3TargetConfig> = { multipartThreshold: 5 * MiB, partSize: 5 * MiB };
