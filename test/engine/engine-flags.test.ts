// The engine's Node options (src/shared/engine-flags.ts): every launcher passes the same ones, and
// they take effect (the engine as `triplicate serve` reports a young generation of 16 MiB).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../src/shared/engine-flags';
import { ROOT, ServeChild } from '../robustness/lib';
import { useTeardown } from '../helpers/teardown';

const launchers = [
  'build/linux/triplicate.service',
  'build/macos/org.triplicate.engine.plist',
  'docs/SERVICE.md',
  'README.md',
  'package.json',
  'test/e2e/lib.mjs',
  'bench/run.mjs',
  'src/main/desktop/engine-process.ts',
];

describe('the engine process is started with its Node options', () => {
  const td = useTeardown();
  it.each(launchers)('%s passes them', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    if (file.endsWith('.ts')) expect(text).toMatch(/execArgv: \[\.\.\.ENGINE_NODE_FLAGS\]/);
    else for (const flag of ENGINE_NODE_FLAGS) expect(text).toContain(flag);
    if (file === 'package.json') {
      const scripts = JSON.parse(text).scripts as Record<string, string>;
      for (const name of ['serve', 'demo']) for (const flag of ENGINE_NODE_FLAGS) expect(scripts[name]).toContain(`node ${flag}`);
    }
  });

  it('`triplicate serve` started with them has a young generation of 16 MiB (/metrics)', async () => {
    const child = td.add(new ServeChild(join(td.dir('trip-flags-'), 'data')));
    {
      const ready = await child.waitReady();
      const text = await (await fetch(`${ready.adminUrl.replace(/\/$/, '')}/metrics`, { headers: { authorization: `Bearer ${ready.token}` } })).text();
      const m = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
      expect(m, text).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    }
  });
});
