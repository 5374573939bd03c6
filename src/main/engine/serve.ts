// `triplicate serve` and `triplicate demo` run an engine the same way: start it, write
// `<data dir>/engine.json` (where it listens), print the ready line, stop on SIGTERM / SIGINT.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from './engine';
import type { ParentLink } from './parent-link';

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

export function runFile(dataDir: string): string {
  return join(dataDir, 'engine.json');
}

/**
 * Run an engine until SIGTERM/SIGINT (or a stop request from the desktop app that started it:
 * `parent`); prints the ready line. Returns the exit code.
 */
export async function serveEngine(engine: Engine, extra: Record<string, unknown> = {}, parent?: ParentLink | null): Promise<number> {
  let stopping: Promise<void> | null = null;
  const stop = (signal: string) => {
    if (stopping) return;
    say(`triplicate: ${signal} received, stopping (in-flight uploads are aborted and resumed next start)…`);
    stopping = engine.stop().then(() => {
      rmSync(runFile(engine.dataDir), { force: true });
      out({ event: 'stopped' });
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  parent?.onStop(() => stop('a stop request from the Triplicate app'));
  const ep = await engine.start();
  writeFileSync(runFile(engine.dataDir), JSON.stringify({ pid: process.pid, adminUrl: ep.adminUrl, downloadUrl: ep.downloadUrl }), { mode: 0o600 });
  // Never the token itself: a service's stdout goes to the journal, which other users may read.
  out({ event: 'ready', adminUrl: ep.adminUrl, downloadUrl: ep.downloadUrl ?? null, tokenFile: engine.tokenFile, dataDir: engine.dataDir, pid: process.pid, ...extra });
  await new Promise<void>((resolveWait) => {
    const t = setInterval(() => {
      if (stopping) {
        clearInterval(t);
        void stopping.then(() => resolveWait());
      }
    }, 100);
  });
  return 0;
}
