// What the engine process writes: JSON lines on stdout (`{"event":"ready",…}`, `{"event":"error",…}`,
// `{"event":"stopped"}`), sentences for people on stderr. Pure: the shell feeds the chunks in.
import type { EngineReady } from './supervisor';

/** Splits a stream of text chunks into whole lines. */
export class LineSplitter {
  private buf = '';

  push(chunk: string): string[] {
    this.buf += chunk;
    const parts = this.buf.split(/\r?\n/);
    this.buf = parts.pop() ?? '';
    if (this.buf.length > 1024 * 1024) this.buf = this.buf.slice(-64 * 1024); // a runaway line: keep its end
    return parts.filter((l) => l.trim() !== '');
  }
}

export type EngineLine = { kind: 'ready'; ready: EngineReady } | { kind: 'error'; error: string } | { kind: 'stopped' } | { kind: 'other' };

export function readEngineLine(line: string): EngineLine {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { kind: 'other' };
  }
  if (!j || typeof j !== 'object') return { kind: 'other' };
  if (j.event === 'ready' && typeof j.adminUrl === 'string' && typeof j.tokenFile === 'string') {
    return {
      kind: 'ready',
      ready: {
        adminUrl: j.adminUrl.replace(/\/$/, ''),
        downloadUrl: typeof j.downloadUrl === 'string' ? j.downloadUrl : null,
        tokenFile: j.tokenFile,
        pid: typeof j.pid === 'number' ? j.pid : null,
      },
    };
  }
  if (j.event === 'error' && typeof j.error === 'string') return { kind: 'error', error: j.error };
  if (j.event === 'stopped') return { kind: 'stopped' };
  return { kind: 'other' };
}

/** The last `max` lines written (the technical detail of a crash). */
export class TextTail {
  private lines: string[] = [];
  constructor(private readonly max = 30) {}

  push(lines: string[]): void {
    this.lines.push(...lines);
    if (this.lines.length > this.max) this.lines = this.lines.slice(-this.max);
  }

  text(): string {
    return this.lines.join('\n');
  }
}
