// What the app does with one engine process, whatever started it: read the JSON ready line from
// stdout, keep the end of stderr for the technical detail, hand the kept secrets over the parent
// channel (never argv or env: other users can read those), keep every change the engine sends
// back, and ask it to stop. No electron import: ./engine-process.ts adapts utilityProcess to
// EngineChild, and the tests adapt a Node child process running the same compiled engine.
import type { ShellMessage } from '../../shared/secrets';
import { LineSplitter, readEngineLine, TextTail } from './logic/engine-output';
import { answerEngineMessage } from './logic/secrets';
import type { EngineRun, RunEvents } from './logic/supervisor';
import type { SecretVault } from './secret-vault';

export interface EngineChild {
  readonly pid: number | undefined;
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
  postMessage(m: ShellMessage): void;
  kill(): void;
  onSpawn(fn: () => void): void;
  onMessage(fn: (m: unknown) => void): void;
  onExit(fn: (code: number) => void): void;
}

export interface EngineChildOptions {
  dataDir: string;
  /** The app keeps the secrets (a real password store); null: config.json keeps them, as a service's does. */
  vault: SecretVault | null;
  /** A sentence for the operator when the kept secrets could not be read. */
  onSecretsProblem?: (text: string) => void;
  log?: { info(...a: unknown[]): void; warn(...a: unknown[]): void };
}

/** `triplicate serve` as the app runs it. */
export function engineArgs(o: EngineChildOptions, adminPort: number | undefined): string[] {
  const args = ['serve', '--data-dir', o.dataDir];
  if (adminPort !== undefined) args.push('--admin-port', String(adminPort));
  if (o.vault) args.push('--secrets-from-parent');
  return args;
}

export function runEngineChild(child: EngineChild, o: EngineChildOptions, events: RunEvents): EngineRun {
  const log = o.log ?? { info: () => undefined, warn: () => undefined };
  const out = new LineSplitter();
  const err = new LineSplitter();
  const tail = new TextTail();
  let error: string | null = null;

  child.stdout?.on('data', (d: Buffer) => {
    for (const line of out.push(d.toString('utf8'))) {
      const ev = readEngineLine(line);
      if (ev.kind === 'ready') events.ready(ev.ready);
      else if (ev.kind === 'error') error = ev.error;
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    const lines = err.push(d.toString('utf8'));
    tail.push(lines);
    for (const l of lines) log.info(`engine: ${l}`);
  });
  child.onSpawn(() => {
    log.info(`engine process ${child.pid} started`);
    if (!o.vault) return;
    const { secrets, problem } = o.vault.loadOrSetAside();
    if (problem) {
      log.warn(problem);
      o.onSecretsProblem?.(problem);
    }
    child.postMessage({ type: 'secrets', secrets });
  });
  child.onMessage((raw) => {
    const answer = answerEngineMessage(raw, (s) => {
      if (!o.vault) throw new Error('this app does not keep the keys');
      o.vault.save(s);
    });
    if (!answer) return;
    if (answer.type === 'secrets-not-kept') log.warn(`the engine's new keys were not kept: ${answer.error}`);
    child.postMessage(answer);
  });
  child.onExit((code) => {
    log.info(`engine process ended (exit code ${code})`);
    events.exit({ code, error, detail: tail.text() });
  });
  return {
    stop: () => child.postMessage({ type: 'stop' }),
    kill: () => child.kill(),
  };
}
