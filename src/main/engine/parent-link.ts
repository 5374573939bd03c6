// The engine started by the desktop app: Electron's utilityProcess gives it `process.parentPort`;
// a Node parent that forks it with an IPC channel gives it `process.send` (the tests do). Over that
// channel, never argv or the environment (other users of the computer can read those), the app
// hands over the secrets it keeps, takes back every change, and asks the engine to stop (a signal
// would be a hard kill on Windows). No electron import: parentPort is a property of `process`.
import { parseConfigSecrets, sameSecrets, type ConfigSecrets, type EngineMessage, type ShellMessage } from '../../shared/secrets';
import { ConfigError } from './config/config';
import type { SecretStore } from './config/secrets';

interface Channel {
  post(m: EngineMessage): void;
  on(fn: (m: unknown) => void): void;
  /** The parent went away (Node IPC only). */
  onClose(fn: () => void): void;
}

interface ParentPortLike {
  postMessage(m: unknown): void;
  on(ev: 'message', fn: (e: { data: unknown }) => void): void;
}

function parentChannel(): Channel | null {
  const port = (process as unknown as { parentPort?: ParentPortLike }).parentPort;
  if (port) return { post: (m) => port.postMessage(m), on: (fn) => port.on('message', (e) => fn(e.data)), onClose: () => undefined };
  const send = process.send?.bind(process);
  if (send && process.connected) {
    return { post: (m) => void send(m), on: (fn) => process.on('message', fn), onClose: (fn) => process.once('disconnect', fn) };
  }
  return null;
}

/** How long the engine waits for the app's secrets at start, and for the app to say it kept a change. */
const HANDOVER_MS = 30_000;
const KEEP_MS = 15_000;

export class ParentLink implements SecretStore {
  private secrets: ConfigSecrets | null = null;
  private secretsArrived: (() => void) | null = null;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private readonly stopHandlers: (() => void)[] = [];
  private stopRequested = false;

  private constructor(private readonly channel: Channel) {
    channel.on((m) => this.receive(m));
    channel.onClose(() => this.requestStop());
  }

  /** The link to the parent process, or null when the engine was started some other way. */
  static connect(): ParentLink | null {
    const ch = parentChannel();
    return ch ? new ParentLink(ch) : null;
  }

  /** Call fn when the app asks the engine to stop (or, with Node IPC, goes away). */
  onStop(fn: () => void): void {
    this.stopHandlers.push(fn);
    if (this.stopRequested) fn();
  }

  private requestStop(): void {
    this.stopRequested = true;
    this.stopHandlers.forEach((fn) => fn());
  }

  /** Wait for the secrets the app keeps; then this link is the engine's secret store. */
  async receiveSecrets(timeoutMs = HANDOVER_MS): Promise<SecretStore> {
    if (!this.secrets) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new ConfigError('The backup engine was started to take its keys from the Triplicate app, but the app did not hand them over. Quit Triplicate and start it again.')),
          timeoutMs,
        );
        this.secretsArrived = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this;
  }

  current(): ConfigSecrets {
    return this.secrets ?? { targets: {} };
  }

  save(secrets: ConfigSecrets): Promise<void> {
    if (this.secrets && sameSecrets(secrets, this.secrets)) return Promise.resolve();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ConfigError('The Triplicate app did not confirm that it kept the new keys, so nothing was saved. Try again; if it happens again, restart Triplicate.'));
      }, KEEP_MS);
      this.pending.set(id, {
        resolve: () => {
          this.secrets = structuredClone(secrets);
          resolve();
        },
        reject,
        timer,
      });
      this.channel.post({ type: 'secrets', id, secrets });
    });
  }

  private receive(raw: unknown): void {
    const m = raw as ShellMessage | null;
    if (!m || typeof m !== 'object') return;
    if (m.type === 'stop') {
      this.requestStop();
    } else if (m.type === 'secrets') {
      const s = parseConfigSecrets(m.secrets);
      if (!s || this.secrets) return; // handed over once, at start; changes come from this side
      this.secrets = s;
      this.secretsArrived?.();
    } else if (m.type === 'secrets-kept' || m.type === 'secrets-not-kept') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.type === 'secrets-kept') p.resolve();
      else p.reject(new ConfigError(`The Triplicate app could not keep the new keys in the system password store, so nothing was saved. ${m.error}`));
    }
  }
}
