// The tests' one teardown: last started closed first, everything closed even when one fails.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Teardown } from './teardown';

describe('Teardown', () => {
  it('closes the last added first, each the way it closes', async () => {
    const td = new Teardown();
    const done: string[] = [];
    const dir = td.dir('trip-teardown-');
    writeFileSync(join(dir, 'x'), 'x');
    td.add({ dispose: async () => void done.push('s3rver') });
    td.add({ stop: async () => void done.push('engine') });
    td.add({ close: () => void done.push('server') });
    td.add(() => void done.push('function'));
    await td.run();
    expect(done).toEqual(['function', 'server', 'engine', 's3rver']);
    expect(existsSync(dir)).toBe(false);
    await td.run(); // nothing left: a second run does nothing
    expect(done).toHaveLength(4);
  });

  it('closes everything when one fails, then throws the first failure; a failing stop() is let pass', async () => {
    const td = new Teardown();
    const done: string[] = [];
    td.add(() => void done.push('first added'));
    td.add({ dispose: async () => Promise.reject(new Error('dispose failed')) });
    td.add({ stop: async () => Promise.reject(new Error('already stopped')) });
    td.add(() => {
      throw new Error('close failed');
    });
    await expect(td.run()).rejects.toThrow('close failed');
    expect(done).toEqual(['first added']);
  });

  it('kills a child that still runs, and leaves alone what the test forgot', async () => {
    const td = new Teardown();
    const child = td.add(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
    const exited = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
    let closed = false;
    const kept = td.add(() => void (closed = true));
    td.forget(kept);
    await td.run();
    expect(await exited).toBe('SIGKILL');
    expect(closed).toBe(false);
  });
});
