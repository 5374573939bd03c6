// The engine's buffer pool (buffers.ts): size classes, reuse, the idle bound and the idle release.
import { describe, expect, it } from 'vitest';
import { BufferPool, bufferClass } from '../../src/main/engine/buffers';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('BufferPool', () => {
  it('hands out power-of-two classes from 64 KiB to 8 MiB, exact sizes above', () => {
    expect(bufferClass(1)).toBe(64 * KiB);
    expect(bufferClass(64 * KiB)).toBe(64 * KiB);
    expect(bufferClass(64 * KiB + 1)).toBe(128 * KiB);
    expect(bufferClass(256 * KiB + 1)).toBe(512 * KiB);
    expect(bufferClass(8 * MiB)).toBe(8 * MiB);
    expect(bufferClass(10 * MiB)).toBe(10 * MiB);
    const pool = new BufferPool(64 * MiB, 10_000);
    expect(pool.take(300 * KiB).length).toBe(512 * KiB);
    expect(pool.take(10 * MiB).length).toBe(10 * MiB);
  });

  it('reuses a buffer given back, of the same class only', () => {
    const pool = new BufferPool(64 * MiB, 10_000);
    const a = pool.take(200 * KiB);
    a[0] = 42;
    pool.give(a);
    expect(pool.idle).toBe(256 * KiB);
    expect(pool.take(100 * KiB)).not.toBe(a); // 128 KiB class: a new one
    expect(pool.take(250 * KiB)).toBe(a);
    expect(pool.idle).toBe(0);
    expect(pool.take(250 * KiB)).not.toBe(a); // taken already
    pool.clear();
  });

  it('keeps at most maxIdleBytes idle, dropping the biggest first; ignores buffers not of a class', () => {
    const pool = new BufferPool(1 * MiB, 10_000);
    const small = [pool.take(64 * KiB), pool.take(64 * KiB)];
    const big = pool.take(1 * MiB);
    for (const b of small) pool.give(b);
    pool.give(big);
    expect(pool.idle).toBe(128 * KiB); // the 1 MiB one went
    expect(pool.take(64 * KiB)).toBe(small[1]);
    pool.give(Buffer.alloc(100 * KiB)); // not a class size: not kept
    expect(pool.idle).toBe(64 * KiB);
    pool.clear();
  });

  it('holds nothing once nothing was given back for idleMs', async () => {
    const pool = new BufferPool(64 * MiB, 100);
    pool.give(pool.take(1 * MiB));
    expect(pool.idle).toBe(1 * MiB);
    await new Promise((r) => setTimeout(r, 250));
    expect(pool.idle).toBe(0);
  });
});
