// Config version 2: `targets[].concurrency` and `restore.concurrency` are caps ("at most"), under
// which the engine chooses. A version 1 config holds the old fixed defaults (4 and 6), written
// into every config: they go, and the ceilings apply; any other number stays, as the cap.
import { describe, expect, it } from 'vitest';
import { concurrencyCeiling, START_CONCURRENCY } from '../../src/main/engine/backends/presets';
import { ConfigError, parseConfig } from '../../src/main/engine/config/config';
import { CONFIG_VERSION, RESTORE_CEILING, restoreCeiling } from '../../src/shared/config';

const s3 = (id: string, preset: string, extra: Record<string, unknown> = {}) => ({
  id,
  label: id,
  kind: 's3',
  preset,
  endpoint: 'http://127.0.0.1:9000',
  bucket: 'media',
  credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
  ...extra,
});

describe('config version 2', () => {
  it('a version 1 config loses the old fixed defaults and keeps the numbers someone chose', () => {
    const cfg = parseConfig({
      version: 1,
      targets: [s3('nas', 'minio', { concurrency: 4 }), s3('cloud', 'r2', { concurrency: 4 }), s3('slow', 'b2', { concurrency: 2 }), { id: 'usb', label: 'USB', kind: 'folder', path: '/mnt/usb', concurrency: 12 }],
      restore: { concurrency: 6 },
    });
    expect(cfg.version).toBe(CONFIG_VERSION);
    expect(cfg.targets.map((t) => [t.id, t.concurrency, concurrencyCeiling(t)])).toEqual([
      ['nas', undefined, 8],
      ['cloud', undefined, 32],
      ['slow', 2, 2],
      ['usb', 12, 12],
    ]);
    expect(cfg.restore.concurrency).toBeUndefined();
    expect(restoreCeiling(cfg.restore)).toBe(RESTORE_CEILING);
    expect(restoreCeiling(parseConfig({ version: 1, restore: { concurrency: 3 } }).restore)).toBe(3);
  });

  it('a version 2 config keeps a 4 (chosen now, not an old default); the start is never above the cap', () => {
    const cfg = parseConfig({ version: 2, targets: [s3('nas', 'minio', { concurrency: 4 }), s3('one', 'aws', { concurrency: 1 })] });
    expect(cfg.targets.map((t) => t.concurrency)).toEqual([4, 1]);
    expect(Math.min(START_CONCURRENCY, concurrencyCeiling(cfg.targets[1]!))).toBe(1);
  });

  it('a config from a newer Triplicate is refused with a sentence', () => {
    expect(() => parseConfig({ version: CONFIG_VERSION + 1 })).toThrow(ConfigError);
    expect(() => parseConfig({ version: CONFIG_VERSION + 1 })).toThrow(/written by a newer Triplicate/);
  });
});
