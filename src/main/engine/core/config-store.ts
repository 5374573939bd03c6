// The config in use: read at start, saved from the app (validated, 0600), and read again when
// config.json is edited by hand while the engine runs. Changes run one at a time; whoever follows
// the config (the targets registry, the sync service) is told of each change before the 'config'
// event goes out.
import { watch as fsWatch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { configSchema, type Config, type RootConfig } from '../../../shared/config';
import { formatClock } from '../../../shared/format';
import { ConfigChangedError, ConfigError, parseConfig, parseConfigText, problemsError, programPathChanges, programPathError, readConfigFile, type ConfigReadWhen } from '../config/config';
import { withKeptSecrets, writeConfigKeepingSecrets, type SecretStore } from '../config/secrets';
import { configFolderProblems, type OwnData } from '../config/folders';
import type { EventBus } from '../events';
import { log } from '../log';
import { errorText } from '../util';

/** config.json is looked at this often (ms) besides the folder watch, which may miss events. */
const CONFIG_POLL_MS = 2000;
/** An editor writes a file in several steps: read it once they stop (ms). */
const CONFIG_SETTLE_MS = 250;

/** Told of a config put in use, in the order registered; awaited before the next one. */
export type ConfigListener = (prev: Config, next: Config) => Promise<void> | void;

export interface ApplyOptions {
  /** The config the change was made on: a hand edit of config.json since then refuses the save. */
  base?: Config;
  /** Program paths may change (the desktop shell, tests); never from the admin API. */
  programPaths?: boolean;
}

export class ConfigStore {
  private cfg: Config;
  /** Hash of config.json as Triplicate last read or wrote it (null: no file). */
  private hash: string | null;
  /** Hash of an invalid config.json already reported. */
  private badHash: string | null = null;
  private stat = '';
  private watcher: FSWatcher | null = null;
  private settle: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  /** Config changes (saves from the app, hand edits) run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Each config in use gets a number; a save based on one older than the last hand edit is refused. */
  private readonly gens = new WeakMap<Config, number>();
  private gen = 0;
  private handEdit = { gen: 0, at: 0 };
  private readonly listeners: ConfigListener[] = [];
  /** Running: changes reach the listeners and the bus, and the file is watched. */
  private live = false;

  /** Read and check config.json (a missing file: the defaults); one that cannot be used throws a ConfigError. */
  static read(path: string, ownData: OwnData, secrets?: SecretStore): { cfg: Config; hash: string | null } {
    const file = readConfigFile(path);
    const cfg = withKeptSecrets(file ? parseConfigText(file.text, path) : configSchema.parse({}), secrets);
    const problems = configFolderProblems(cfg, ownData);
    if (problems.length) throw problemsError(`The config file ${path}`, problems, 'start');
    return { cfg, hash: file?.hash ?? null };
  }

  constructor(
    readonly path: string,
    private readonly ownData: OwnData,
    private readonly bus: EventBus,
    initial: { cfg: Config; hash: string | null } = ConfigStore.read(path, ownData),
    /** Where the S3 keys and the tunnel token are kept instead of config.json (the desktop app's password store). */
    private readonly secrets?: SecretStore,
  ) {
    this.cfg = initial.cfg;
    this.hash = initial.hash;
    this.gens.set(this.cfg, 0);
  }

  /** The config in use now (a new object after every change: keep the function, not the value). */
  get(): Config {
    return this.cfg;
  }

  /** Tests: a config in use as it is, unchecked, unsaved, and followed by nobody. */
  replaceUnchecked(cfg: Config): void {
    this.cfg = cfg;
    this.gens.set(cfg, ++this.gen);
  }

  enabledRoots(): RootConfig[] {
    return this.cfg.roots.filter((r) => r.enabled);
  }

  /** An enabled root by id. */
  root(id: string): RootConfig | undefined {
    return this.cfg.roots.find((r) => r.id === id && r.enabled);
  }

  onChange(fn: ConfigListener): void {
    this.listeners.push(fn);
  }

  /** Follow hand edits of config.json, and tell the listeners of changes from now on. */
  start(): void {
    this.live = true;
    this.poll = setInterval(() => this.pollFile(), CONFIG_POLL_MS);
    this.poll.unref?.();
    this.watchFile();
  }

  async stop(): Promise<void> {
    this.live = false;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    this.watcher?.close();
    this.watcher = null;
    if (this.settle) clearTimeout(this.settle);
    await this.queue.catch(() => undefined);
  }

  /**
   * Validate, save (0600) and apply a new config: the listeners follow. When config.json was
   * changed by hand since `base` (or is now), nothing is written and a ConfigChangedError says so.
   * The hand edit is loaded, when valid, so the operator sees it and makes the change again on top
   * of it: merging the two could silently combine edits nobody saw together. Program paths change
   * only when the caller may set them (`programPaths`: the desktop shell, tests).
   */
  apply(next: unknown, opts: ApplyOptions = {}): Promise<Config> {
    const { base } = opts;
    return this.serial(async () => {
      const handEdit = await this.takeHandEdit();
      if (handEdit) throw handEdit;
      if (base && (this.gens.get(base) ?? 0) < this.handEdit.gen) throw this.changedByHand(this.handEdit.at);
      const valid = this.checkFolders(parseConfig(next, 'This change', 'save'), 'This change', 'save');
      if (!opts.programPaths) {
        const changed = programPathChanges(this.cfg, valid);
        if (changed.length) throw programPathError(changed);
      }
      const { cfg, hash } = await writeConfigKeepingSecrets(this.path, valid, this.secrets);
      this.hash = hash;
      this.badHash = null;
      return this.install(cfg);
    });
  }

  /** Roots and folder destinations that may not be used (the data folder, system folders...): a ConfigError. */
  private checkFolders(cfg: Config, source: string, when: ConfigReadWhen = 'start'): Config {
    const problems = configFolderProblems(cfg, this.ownData);
    if (problems.length) throw problemsError(source, problems, when);
    return cfg;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private changedByHand(at: number, problem?: ConfigError): ConfigChangedError {
    const name = basename(this.path);
    return problem
      ? new ConfigChangedError(`${name} was changed by hand at ${formatClock(at)} and Triplicate cannot use it, so your change was not saved. ${problem.message}`, problem.fields)
      : new ConfigChangedError(`${name} was changed by hand at ${formatClock(at)}; Triplicate loaded it. Check the page and save again.`);
  }

  /**
   * Has config.json changed on disk since Triplicate last read or wrote it? A valid file is applied
   * (not written back) and an info event says so; an invalid one is reported once as an error event
   * and left as it is, and the running config stays. Returns the refusal for a save made meanwhile.
   */
  private async takeHandEdit(): Promise<ConfigChangedError | null> {
    let file;
    try {
      file = readConfigFile(this.path);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.reportBad('unreadable', e.message);
      return this.changedByHand(Date.now(), e);
    }
    // Removed: nothing to lose; the next save writes it again.
    if (!file || file.hash === this.hash) return null;
    const name = basename(this.path);
    try {
      const cfg = this.checkFolders(withKeptSecrets(parseConfigText(file.text, this.path, 'reload'), this.secrets), `The config file ${this.path}`, 'reload');
      this.hash = file.hash;
      this.badHash = null;
      await this.install(cfg);
      this.handEdit = { gen: this.gen, at: file.mtimeMs };
      this.bus.record({ level: 'info', kind: 'config-reloaded', message: `${name} was changed outside Triplicate at ${formatClock(file.mtimeMs)}; the new settings are in use.` });
      return this.changedByHand(file.mtimeMs);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.reportBad(file.hash, `${name} was changed at ${formatClock(file.mtimeMs)} but Triplicate cannot use it. ${e.message}`);
      return this.changedByHand(file.mtimeMs, e);
    }
  }

  /** Once per content of the file: the error event the operator sees. */
  private reportBad(hash: string, message: string): void {
    if (this.badHash === hash) return;
    this.badHash = hash;
    this.bus.record({ level: 'error', kind: 'config-invalid', message });
  }

  /** Look at config.json when its folder reports a change to it (once the writes settle). */
  private watchFile(): void {
    const name = basename(this.path);
    try {
      // The folder, not the file: editors and our own save replace the file by renaming over it.
      this.watcher = fsWatch(dirname(this.path), { persistent: false }, (_ev, f) => {
        if (f !== null && f !== name) return;
        if (this.settle) clearTimeout(this.settle);
        this.settle = setTimeout(() => this.checkFile(), CONFIG_SETTLE_MS);
        this.settle.unref?.();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null; // the poll still notices
      });
    } catch (e) {
      log.warn(`cannot watch ${this.path} for changes (${errorText(e)}); it is looked at every ${CONFIG_POLL_MS / 1000} s`);
    }
  }

  /** The fallback: a stat; the file is read only when it looks different. */
  private pollFile(): void {
    let key = '';
    try {
      const st = statSync(this.path);
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {}
    if (key === this.stat) return;
    this.stat = key;
    this.checkFile();
  }

  private checkFile(): void {
    if (!this.live) return;
    void this.serial(() => this.takeHandEdit()).catch((e) => log.warn(`reading ${this.path} again: ${errorText(e)}`));
  }

  /** Put a validated config in use: the listeners follow, then the 'config' event goes out. */
  private async install(cfg: Config): Promise<Config> {
    const prev = this.cfg;
    this.cfg = cfg;
    this.gens.set(cfg, ++this.gen);
    if (!this.live) return cfg;
    for (const fn of this.listeners) await fn(prev, cfg);
    this.bus.emit({ type: 'config' });
    return cfg;
  }
}
