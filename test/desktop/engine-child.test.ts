// The app's side of the engine process with a real engine: the supervisor, the wiring around the
// process (ready line, secrets handed over and kept, stop request) and the kept-secrets file,
// around the compiled engine (out/engine/triplicate.mjs). Electron's utilityProcess cannot run
// here, so a Node child process with an IPC channel stands in for it (the engine speaks to either:
// src/main/engine/parent-link.ts), and safeStorage is a stand-in with real AES-GCM (fixtures.ts).
// What only Electron can show (utilityProcess, asar, the packaged app) is in test/electron/.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { engineArgs, runEngineChild, type EngineChildOptions } from '../../src/main/desktop/engine-child';
import { EngineSupervisor, RESTART_POLICY, type EngineState, type LaunchEngine } from '../../src/main/desktop/logic/supervisor';
import { SecretVault } from '../../src/main/desktop/secret-vault';
import type { TargetInfo } from '../../src/shared/api';
import { ApiClient } from '../../src/shared/client';
import { KEPT_BY_DESKTOP_APP } from '../../src/shared/secrets';
import { cleanup, tempDir, waitFor, writeConfig } from '../helpers/engine';
import { fakeSafeStorage } from './fixtures';

const ENGINE = join(import.meta.dirname, '..', '..', 'out', 'engine', 'triplicate.mjs');

let dirs: string[] = [];
let children: ChildProcess[] = [];
let supervisors: EngineSupervisor[] = [];
afterEach(async () => {
  for (const s of supervisors) await s.stop(10_000, 5_000).catch(() => undefined);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  cleanup(...dirs);
  dirs = [];
  children = [];
  supervisors = [];
});

/** What engine-process.ts does with utilityProcess.fork, with a Node child process. */
function nodeLauncher(o: EngineChildOptions): LaunchEngine {
  return ({ adminPort }, events) => {
    const p = fork(ENGINE, engineArgs(o, adminPort), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
    children.push(p);
    return runEngineChild(
      {
        get pid() {
          return p.pid;
        },
        stdout: p.stdout,
        stderr: p.stderr,
        postMessage: (m) => {
          if (p.connected) p.send(m);
        },
        kill: () => void p.kill('SIGKILL'),
        onSpawn: (fn) => p.once('spawn', fn),
        onMessage: (fn) => p.on('message', fn),
        onExit: (fn) => p.once('exit', (code, signal) => fn(code ?? (signal ? 137 : 1))),
      },
      o,
      events,
    );
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const keyIdOf = (targets: TargetInfo[]) => {
  const t = targets.find((x) => x.id === 'cloud');
  return t?.kind === 's3' ? t.credentials.accessKeyId : undefined;
};

describe('the engine process as the app runs it', () => {
  it('hands over the kept keys, restarts a crashed engine on the same address, keeps a changed key, and stops it cleanly', { timeout: 180_000 }, async () => {
    const base = tempDir('trip-app-engine-');
    dirs.push(base);
    const data = join(base, 'data');
    const keys = { accessKeyId: 'AKIAEXAMPLE0001', secretAccessKey: 'secret-EXAMPLE-0001' };
    writeConfig(data, {
      targets: [{ id: 'cloud', label: 'Cloud', kind: 's3', endpoint: 'http://127.0.0.1:9', bucket: 'photos', credentials: keys }],
      tunnel: { mode: 'off', token: 'tunnel-token-0001' },
    });
    const vault = new SecretVault(join(base, 'engine-secrets.json'), fakeSafeStorage());
    const states: EngineState[] = [];
    const sup = new EngineSupervisor({
      launch: nodeLauncher({ dataDir: data, vault }),
      onState: (s) => states.push(s),
      policy: { ...RESTART_POLICY, delaysMs: [200] },
    });
    supervisors.push(sup);

    const ready = await sup.start();
    const api = new ApiClient({ baseUrl: ready.adminUrl, token: readFileSync(ready.tokenFile, 'utf8').trim() });
    // the keys of the existing config.json are now kept (encrypted) by the app, and out of config.json
    expect(vault.load()).toEqual({ targets: { cloud: keys }, tunnelToken: 'tunnel-token-0001' });
    const configText = readFileSync(join(data, 'config.json'), 'utf8');
    expect(configText).not.toContain('AKIAEXAMPLE0001');
    expect(configText).not.toContain('tunnel-token-0001');
    expect(configText).toContain(KEPT_BY_DESKTOP_APP);
    expect(readFileSync(vault.file, 'utf8')).not.toContain('AKIAEXAMPLE0001');

    // the engine crashes: the app starts it again, on the same address, with the kept keys
    const firstPid = ready.pid!;
    process.kill(firstPid, 'SIGKILL');
    await waitFor(() => states.some((s) => s.state === 'restarting'), 30_000, 'the restart');
    await waitFor(() => sup.state.state === 'running' && sup.state.ready.pid !== firstPid, 60_000, 'the engine running again');
    const again = sup.state.state === 'running' ? sup.state.ready : null;
    expect(again!.adminUrl).toBe(ready.adminUrl);
    expect(isRunning(firstPid)).toBe(false);
    expect(keyIdOf(await api.call('listTargets'))).toMatch(/0001$/);

    // a key changed in the console is kept by the app (encrypted), not in config.json
    await api.call('updateTarget', { params: { id: 'cloud' }, body: { credentials: { accessKeyId: 'AKIAEXAMPLE0002', secretAccessKey: 'secret-EXAMPLE-0002' } } });
    expect(vault.load().targets.cloud).toEqual({ accessKeyId: 'AKIAEXAMPLE0002', secretAccessKey: 'secret-EXAMPLE-0002' });
    expect(readFileSync(join(data, 'config.json'), 'utf8')).not.toContain('AKIAEXAMPLE0002');

    // quit: the engine is asked to stop and stops cleanly (it removes its run file); no process is left
    await sup.stop(30_000, 5_000);
    expect(sup.state.state).toBe('stopped');
    expect(isRunning(again!.pid!)).toBe(false);
    expect(existsSync(join(data, 'engine.json'))).toBe(false);
  });

  it('starts without handing over keys when the app has no password store: config.json keeps them', { timeout: 120_000 }, async () => {
    const base = tempDir('trip-app-engine-');
    dirs.push(base);
    const data = join(base, 'data');
    writeConfig(data, { targets: [{ id: 'cloud', label: 'Cloud', kind: 's3', endpoint: 'http://127.0.0.1:9', bucket: 'photos', credentials: { accessKeyId: 'AKIAEXAMPLE0003', secretAccessKey: 's3' } }] });
    expect(engineArgs({ dataDir: data, vault: null }, undefined)).toEqual(['serve', '--data-dir', data]);
    const sup = new EngineSupervisor({ launch: nodeLauncher({ dataDir: data, vault: null }) });
    supervisors.push(sup);
    const ready = await sup.start();
    expect(readFileSync(join(data, 'config.json'), 'utf8')).toContain('AKIAEXAMPLE0003');
    await sup.stop(30_000, 5_000);
    expect(isRunning(ready.pid!)).toBe(false);
  });

  it('shows the sentence of an engine that cannot start, without restarting it', { timeout: 120_000 }, async () => {
    const base = tempDir('trip-app-engine-');
    dirs.push(base);
    const data = join(base, 'data');
    writeConfig(data, {});
    // a second engine on the same data: the first holds the lock
    const first = new EngineSupervisor({ launch: nodeLauncher({ dataDir: data, vault: null }) });
    supervisors.push(first);
    await first.start();
    const launches: number[] = [];
    const launch = nodeLauncher({ dataDir: data, vault: null });
    const second = new EngineSupervisor({ launch: (o, ev) => (launches.push(1), launch(o, ev)) });
    supervisors.push(second);
    await expect(second.start()).rejects.toThrow(/Another Triplicate engine \(process \d+\) is already running with the data folder/);
    expect(launches).toHaveLength(1);
  });
});
