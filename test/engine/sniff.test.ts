// sniff.ts: what a file's first bytes say about it (the burst guard's judgement).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entropy, sniff } from '../../src/main/engine/sync/sniff';

const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(5000, 7)]);
const mp4 = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom', 'latin1'), randomBytes(5000)]);

describe('sniff', () => {
  it('knows a format by its magic number, whatever follows', () => {
    expect(sniff('jpg', jpeg)).toBe('ok');
    expect(sniff('mp4', mp4)).toBe('ok');
    expect(sniff('mov', mp4)).toBe('ok');
    expect(sniff('jpg', mp4)).toBe('mismatch');
    expect(sniff('jpg', randomBytes(5000))).toBe('mismatch');
    expect(sniff('mp4', randomBytes(100))).toBe('mismatch');
  });

  it('calls random bytes noise only where no format is known and the sample is big enough', () => {
    expect(entropy(randomBytes(65536))).toBeGreaterThan(7.99);
    expect(sniff('locked', randomBytes(65536))).toBe('noise');
    expect(sniff('locked', randomBytes(4096))).toBe('noise');
    expect(sniff('locked', randomBytes(1000))).toBe('ok');
    expect(sniff('txt', Buffer.alloc(10000, 'hello world '))).toBe('ok');
    // an archive is compressed, not noise
    expect(sniff('bin', Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), randomBytes(10000)]))).toBe('ok');
    expect(sniff('locked', mp4)).toBe('ok');
    expect(sniff('jpg', Buffer.alloc(3))).toBe('ok');
  });
});
