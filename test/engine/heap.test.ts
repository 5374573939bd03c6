import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, RESTORE_HEAP_GROWING_PERCENT, UPLOAD_HEAP_GROWING_PERCENT, boostHeapGrowth, heapGrowingPercent, tuneHeap } from '../../src/main/engine/heap';

describe('tuneHeap', () => {
  it('sets the engine GC policy when the operator gave no heap flags', () => {
    expect(tuneHeap({}, [])).toBe(true);
  });
  it("keeps the operator's own heap flags from NODE_OPTIONS or node arguments", () => {
    expect(tuneHeap({ NODE_OPTIONS: '--max-old-space-size=512' }, [])).toBe(false);
    expect(tuneHeap({}, ['--heap-growing-percent=50'])).toBe(false);
    expect(tuneHeap({}, ['--optimize-for-size'])).toBe(false);
  });
  it('can be switched off with TRIPLICATE_DEFAULT_GC=1', () => {
    expect(tuneHeap({ TRIPLICATE_DEFAULT_GC: '1' }, [])).toBe(false);
  });
});

describe('boostHeapGrowth (restores)', () => {
  it('raises the growing percent while any boost lasts, then puts back the engine policy', () => {
    expect(tuneHeap({}, [])).toBe(true);
    expect(heapGrowingPercent()).toBe(HEAP_GROWING_PERCENT);
    const a = boostHeapGrowth({}, []);
    const b = boostHeapGrowth({}, []);
    expect(a.applied && b.applied).toBe(true);
    expect(heapGrowingPercent()).toBe(RESTORE_HEAP_GROWING_PERCENT);
    a.end();
    a.end(); // twice counts once
    expect(heapGrowingPercent()).toBe(RESTORE_HEAP_GROWING_PERCENT);
    // tuneHeap during a boost does not cut it short
    tuneHeap({}, []);
    expect(heapGrowingPercent()).toBe(RESTORE_HEAP_GROWING_PERCENT);
    b.end();
    expect(heapGrowingPercent()).toBe(HEAP_GROWING_PERCENT);
  });
  it('nested boosts of different sizes: the biggest in force applies (an upload boost under a restore)', () => {
    tuneHeap({}, []);
    const up = boostHeapGrowth({}, [], UPLOAD_HEAP_GROWING_PERCENT);
    expect(heapGrowingPercent()).toBe(UPLOAD_HEAP_GROWING_PERCENT);
    const restore = boostHeapGrowth({}, []);
    expect(heapGrowingPercent()).toBe(RESTORE_HEAP_GROWING_PERCENT);
    restore.end();
    expect(heapGrowingPercent()).toBe(UPLOAD_HEAP_GROWING_PERCENT);
    const restore2 = boostHeapGrowth({}, []);
    up.end();
    expect(heapGrowingPercent()).toBe(RESTORE_HEAP_GROWING_PERCENT);
    restore2.end();
    expect(heapGrowingPercent()).toBe(HEAP_GROWING_PERCENT);
  });
  it("leaves the operator's heap flags alone", () => {
    const before = heapGrowingPercent();
    const x = boostHeapGrowth({ NODE_OPTIONS: '--max-old-space-size=512' }, []);
    expect(x.applied).toBe(false);
    expect(heapGrowingPercent()).toBe(before);
    x.end();
    expect(boostHeapGrowth({ TRIPLICATE_DEFAULT_GC: '1' }, []).applied).toBe(false);
  });
});
