// Secrets kept outside config.json (#18 item 2): the desktop app keeps the S3 keys and the tunnel
// token in the system's password store and hands them to its engine process. Here the store is a
// real one written for the test (a 0600 JSON file: the app's store minus safeStorage, which needs
// Electron), and the engine is real: in this process, and as the compiled engine in a child process
// talking over a Node IPC channel, the way the app's utilityProcess talks over parentPort.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { defaultConfigPath, loadConfig } from '../../src/main/engine/config/config';
import { moveSecretsToStore, withKeptSecrets, type SecretStore } from '../../src/main/engine/config/secrets';
import type { TargetInfo } from '../../src/shared/api';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { ConfigInput } from '../../src/shared/config';
import { KEPT_BY_DESKTOP_APP, type ConfigSecrets, type EngineMessage } from '../../src/shared/secrets';
import { S3RVER_KEY, startS3 } from '../helpers/s3';
import { bytes, startEngine, waitFor, waitForStatus, writeConfig, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const ENGINE = join(import.meta.dirname, '..', '..', 'out', 'engine', 'triplicate.mjs');
const KEPT = { accessKeyId: KEPT_BY_DESKTOP_APP, secretAccessKey: KEPT_BY_DESKTOP_APP };

/** The store the test keeps: a file, as the app keeps its (encrypted) one. */
class FileSecretStore implements SecretStore {
  saves = 0;
  constructor(readonly file: string, initial?: ConfigSecrets) {
    if (initial) writeFileSync(file, JSON.stringify(initial), { mode: 0o600 });
  }
  current(): ConfigSecrets {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as ConfigSecrets;
    } catch {
      return { targets: {} };
    }
  }
  async save(s: ConfigSecrets): Promise<void> {
    this.saves++;
    writeFileSync(this.file, JSON.stringify(s), { mode: 0o600 });
  }
}

const td = useTeardown();

async function setup(credentials: { accessKeyId: string; secretAccessKey: string }, tunnelToken?: string) {
  const base = td.dir('trip-secrets-');
  const s3 = td.add(await startS3());
  const media = join(base, 'media');
  const data = join(base, 'data');
  writeFile(media, 'a.jpg', bytes(40_000, 3));
  const cfg: ConfigInput = {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets: [s3.target('cloud', { label: 'Cloud', credentials })],
    tunnel: tunnelToken ? { mode: 'off', token: tunnelToken } : undefined,
  };
  writeConfig(data, cfg);
  return { base, s3, data, configFile: defaultConfigPath(data), storeFile: join(base, 'kept.json') };
}

const s3rverKeys = { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY };

describe('an engine with a secret store (in this process)', () => {
  it('puts the kept keys in place of the placeholders at load, and copies reach S3 with them', { timeout: 120_000 }, async () => {
    const { data, configFile, storeFile } = await setup(KEPT);
    const before = readFileSync(configFile, 'utf8');
    const store = new FileSecretStore(storeFile, { targets: { cloud: s3rverKeys } });
    const engine = td.add(await startEngine(data, undefined, { secrets: store }));
    const t = engine.cfg.targets[0]!;
    expect(t.kind === 's3' && t.credentials).toEqual(s3rverKeys);
    // s3rver refuses any other key: the copy arrives only with the kept one
    await waitForStatus(engine, (s) => s.synced === 1, 60_000, 'the file copied with the kept keys');
    expect(readFileSync(configFile, 'utf8')).toBe(before);
    expect(store.saves).toBe(0);
  });

  it('writes placeholders to config.json on save and gives the new secrets to the store', async () => {
    const { data, configFile, storeFile } = await setup(KEPT);
    const store = new FileSecretStore(storeFile, { targets: { cloud: s3rverKeys } });
    const engine = td.add(await startEngine(data, undefined, { secrets: store, watch: false, scanOnStart: false }));
    const next = structuredClone(engine.cfg);
    next.tunnel = { mode: 'off', token: 'tunnel-token-XYZ' };
    const t = next.targets[0]!;
    if (t.kind === 's3') t.credentials = { accessKeyId: 'AKIA-NEW-0001', secretAccessKey: 'new-secret-QWERTY' };
    await engine.applyConfig(next, { base: engine.cfg });

    const text = readFileSync(configFile, 'utf8');
    for (const secret of ['tunnel-token-XYZ', 'AKIA-NEW-0001', 'new-secret-QWERTY', S3RVER_KEY]) expect(text).not.toContain(secret);
    const onDisk = loadConfig(configFile);
    expect(onDisk.tunnel.token).toBe(KEPT_BY_DESKTOP_APP);
    expect(onDisk.targets[0]!.kind === 's3' && onDisk.targets[0]!.credentials).toEqual(KEPT);
    expect(store.current()).toEqual({ targets: { cloud: { accessKeyId: 'AKIA-NEW-0001', secretAccessKey: 'new-secret-QWERTY' } }, tunnelToken: 'tunnel-token-XYZ' });
    // the engine uses the real values
    expect(engine.cfg.tunnel.token).toBe('tunnel-token-XYZ');

    // a save that changes no secret does not ask the store again
    const saves = store.saves;
    await engine.applyConfig({ ...engine.cfg, sync: { ...engine.cfg.sync, hashConcurrency: 1 } }, { base: engine.cfg });
    expect(store.saves).toBe(saves);
    // removing the destination removes its keys from the store
    await engine.applyConfig({ ...engine.cfg, targets: [] }, { base: engine.cfg });
    expect(store.current()).toEqual({ targets: {}, tunnelToken: 'tunnel-token-XYZ' });
  });

  it('refuses a save the store cannot keep, and config.json stays as it was', async () => {
    const { data, configFile, storeFile } = await setup(KEPT);
    const store = new FileSecretStore(storeFile, { targets: { cloud: s3rverKeys } });
    store.save = async () => {
      throw new Error('the password store is locked');
    };
    const engine = td.add(await startEngine(data, undefined, { secrets: store, watch: false, scanOnStart: false }));
    const before = readFileSync(configFile, 'utf8');
    await expect(engine.applyConfig({ ...engine.cfg, tunnel: { mode: 'off', token: 'tok-2' } }, { base: engine.cfg })).rejects.toThrow(/locked/);
    expect(readFileSync(configFile, 'utf8')).toBe(before);
    expect(engine.cfg.tunnel.token).toBeUndefined();
  });

  it('lets a key typed into config.json by hand win over the kept one', async () => {
    const { configFile, storeFile } = await setup({ accessKeyId: 'typed-by-hand', secretAccessKey: KEPT_BY_DESKTOP_APP });
    const store = new FileSecretStore(storeFile, { targets: { cloud: s3rverKeys } });
    const cfg = withKeptSecrets(loadConfig(configFile), store);
    expect(cfg.targets[0]!.kind === 's3' && cfg.targets[0]!.credentials).toEqual({ accessKeyId: 'typed-by-hand', secretAccessKey: S3RVER_KEY });
  });

  it('moves plain keys from an existing config.json into the store once, and strips the file', { timeout: 120_000 }, async () => {
    const { data, configFile, storeFile } = await setup(s3rverKeys, 'tunnel-token-OLD');
    const store = new FileSecretStore(storeFile);
    expect(await moveSecretsToStore(configFile, store)).toBe(2);
    expect(store.current()).toEqual({ targets: { cloud: s3rverKeys }, tunnelToken: 'tunnel-token-OLD' });
    const text = readFileSync(configFile, 'utf8');
    expect(text).not.toContain(S3RVER_KEY);
    expect(text).not.toContain('tunnel-token-OLD');
    expect(text).toContain(KEPT_BY_DESKTOP_APP);
    // once: nothing left to move, the store is not asked again
    expect(await moveSecretsToStore(configFile, store)).toBe(0);
    expect(store.saves).toBe(1);
    const engine = td.add(await startEngine(data, undefined, { secrets: store }));
    await waitForStatus(engine, (s) => s.synced === 1, 60_000, 'the file copied with the moved keys');
  });

  it('keeps config.json as it is without a store (the service)', async () => {
    const { data, configFile } = await setup(s3rverKeys);
    const engine = td.add(await startEngine(data, undefined, { watch: false, scanOnStart: false }));
    await engine.applyConfig({ ...engine.cfg, tunnel: { mode: 'off', token: 'tok-plain' } }, { base: engine.cfg });
    const text = readFileSync(configFile, 'utf8');
    expect(text).toContain('tok-plain');
    expect(text).toContain(S3RVER_KEY);
    expect(text).not.toContain(KEPT_BY_DESKTOP_APP);
  });
});

// ---------------------------------------------------------------------------------------------

interface Parent {
  child: ChildProcess;
  ready: Promise<{ adminUrl: string; tokenFile: string }>;
  lines: string[];
  received: ConfigSecrets[];
  exited: Promise<number | null>;
  /** What the parent answers to the next change: kept, or refused with this sentence. */
  refuse: string | null;
  kept: ConfigSecrets;
}

/** The desktop app's side, as a Node parent: it hands the kept secrets over and keeps every change. */
function startAsApp(data: string, kept: ConfigSecrets): Parent {
  const child = fork(ENGINE, ['serve', '--data-dir', data, '--admin-port', '0', '--secrets-from-parent'], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  td.add(child);
  const p: Parent = { child, lines: [], received: [], refuse: null, kept, ready: null!, exited: null! };
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('message', (raw) => {
    const m = raw as EngineMessage;
    if (m.type !== 'secrets') return;
    p.received.push(m.secrets);
    if (p.refuse) child.send({ type: 'secrets-not-kept', id: m.id, error: p.refuse });
    else {
      p.kept = m.secrets;
      child.send({ type: 'secrets-kept', id: m.id });
    }
  });
  child.send({ type: 'secrets', secrets: kept });
  p.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  p.ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      p.lines.push(l);
      const j = JSON.parse(l) as { event: string; adminUrl: string; tokenFile: string };
      if (j.event === 'ready') resolve(j);
    });
    child.once('exit', (code) => reject(new Error(`the engine exited ${code} before ready: ${stderr}`)));
  });
  return p;
}

/** The key id the console shows for the destination "cloud" (masked but for its last 4 characters). */
function cloudKeyId(targets: TargetInfo[]): string | undefined {
  const t = targets.find((x) => x.id === 'cloud');
  return t?.kind === 's3' ? t.credentials.accessKeyId : undefined;
}

async function clientOf(p: Parent): Promise<ApiClient> {
  const r = await p.ready;
  return new ApiClient({ baseUrl: r.adminUrl, token: readFileSync(r.tokenFile, 'utf8').trim() });
}

describe('the compiled engine started by an app that keeps its secrets', () => {
  it('takes the secrets over its parent channel, moves plain ones out of config.json, and gives changes back', { timeout: 180_000 }, async () => {
    const { data, configFile } = await setup(s3rverKeys, 'tunnel-token-OLD');
    const app = startAsApp(data, { targets: {} });
    const api = await clientOf(app);

    // the plain keys of the existing config.json went to the app, once, and left the file
    expect(app.received).toEqual([{ targets: { cloud: s3rverKeys }, tunnelToken: 'tunnel-token-OLD' }]);
    let text = readFileSync(configFile, 'utf8');
    expect(text).not.toContain(S3RVER_KEY);
    expect(text).not.toContain('tunnel-token-OLD');
    await waitFor(async () => (await api.call('status')).synced === 1, 60_000, 'the file copied with the keys the app holds');

    // a new key from the console: to the app, not to the file
    await api.call('updateTarget', { params: { id: 'cloud' }, body: { credentials: { accessKeyId: 'AKIA-NEW-0001', secretAccessKey: 'new-secret-QWERTY' } } });
    expect(app.kept.targets.cloud).toEqual({ accessKeyId: 'AKIA-NEW-0001', secretAccessKey: 'new-secret-QWERTY' });
    text = readFileSync(configFile, 'utf8');
    expect(text).not.toContain('AKIA-NEW-0001');
    expect(text).not.toContain('new-secret-QWERTY');

    // the app cannot keep the next one: the console hears why, nothing changes
    app.refuse = 'The password store is locked.';
    const err = await api.call('updateTarget', { params: { id: 'cloud' }, body: { credentials: { accessKeyId: 'AKIA-OTHER-002', secretAccessKey: 'other' } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toMatch(/could not keep the new keys.*nothing was saved.*The password store is locked\./s);
    expect(readFileSync(configFile, 'utf8')).toBe(text);
    expect(cloudKeyId(await api.call('listTargets'))).toMatch(/0001$/);

    // the app asks it to stop (what it does on quit): a clean stop
    app.child.send({ type: 'stop' });
    expect(await app.exited).toBe(0);
    expect(app.lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['ready', 'stopped']);

    // started again with what the app kept: the changed key is in use
    const again = startAsApp(data, app.kept);
    const api2 = await clientOf(again);
    expect(cloudKeyId(await api2.call('listTargets'))).toMatch(/0001$/);
    expect(again.received).toEqual([]);
    again.child.send({ type: 'stop' });
    expect(await again.exited).toBe(0);
  });

  it('refuses --secrets-from-parent without a parent channel, with a sentence', async () => {
    const { data } = await setup(s3rverKeys);
    const child = spawn(process.execPath, [ENGINE, 'serve', '--data-dir', data, '--admin-port', '0', '--secrets-from-parent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    td.add(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/--secrets-from-parent is for the Triplicate desktop app/);
    // nothing was changed: the keys are still in config.json
    expect(readFileSync(defaultConfigPath(data), 'utf8')).toContain(S3RVER_KEY);
  });
});
