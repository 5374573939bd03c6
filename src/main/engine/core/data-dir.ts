// The data folder's lock (one engine per data folder) and the admin token's file.
import { chmodSync, closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EngineLockedError, isAlive, randomToken } from '../util';

export class DataDirLock {
  private readonly path: string;
  constructor(private readonly dataDir: string) {
    this.path = join(dataDir, 'engine.lock');
  }

  acquire(): void {
    for (let i = 0; i < 2; i++) {
      try {
        const fd = openSync(this.path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number(readFileSync(this.path, 'utf8').trim());
        if (pid && pid !== process.pid && isAlive(pid)) {
          throw new EngineLockedError(
            `Another Triplicate engine (process ${pid}) is already running with the data folder ${this.dataDir}. ` + 'Stop it first, or use another data folder.',
          );
        }
        rmSync(this.path, { force: true }); // left by a crash
      }
    }
  }

  release(): void {
    try {
      if (existsSync(this.path) && readFileSync(this.path, 'utf8').trim() === String(process.pid)) rmSync(this.path);
    } catch {}
  }
}

/** The admin token's file (0600): the one place the token is written. */
export function tokenFileOf(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

export function loadOrCreateToken(dataDir: string): string {
  const p = tokenFileOf(dataDir);
  if (existsSync(p)) {
    const t = readFileSync(p, 'utf8').trim();
    if (t.length >= 32) return t;
  }
  const t = randomToken(32);
  writeFileSync(p, `${t}\n`, { mode: 0o600 });
  chmodSync(p, 0o600);
  return t;
}
