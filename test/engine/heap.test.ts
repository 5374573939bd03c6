import { describe, expect, it } from 'vitest';
import { tuneHeap } from '../../src/main/engine/heap';

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
