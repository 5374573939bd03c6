// Smoke test of the packaged desktop app (`electron-builder --dir`), with Playwright's Electron
// driver. Run by .github/workflows/ci.yml on Linux (under xvfb-run), Windows and macOS:
//
//   npx tsx test/electron/smoke.ts [the app's executable]   (default: found under release/)
//
// Not part of `npm test`, and not named *.test.ts (so vitest leaves it out): it needs the Electron
// binary and a packaged app, and the machine this project is developed on cannot download Electron
// (ELECTRON_SKIP_BINARY_DOWNLOAD=1). It has not run there; GitHub Actions is where it runs.
//
// What it shows: the window opens on the Overview; the engine runs in its own process (not the
// app's) and its admin URL answers; a folder added through the API appears in the window; the
// engine process loads better-sqlite3 and sharp (from app.asar.unpacked); an engine killed
// outright is started again on the same address and the window reconnects; quitting stops the
// engine cleanly and leaves no process behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { _electron as electron, type ElectronApplication, type Page } from 'playwright-core';
import { STREAM_ROUTES } from '../../src/shared/api';
import { ApiClient } from '../../src/shared/client';

const root = resolve(import.meta.dirname, '..', '..');
/** A real picture: its thumbnail needs sharp, loaded by the engine process from app.asar.unpacked. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const LONG = 120_000;

function findApp(): string {
  if (process.argv[2]) return resolve(process.argv[2]);
  const release = join(root, 'release');
  const names =
    process.platform === 'win32'
      ? [['win-unpacked', 'Triplicate.exe'], ['win-arm64-unpacked', 'Triplicate.exe']]
      : process.platform === 'darwin'
        ? [[process.arch === 'arm64' ? 'mac-arm64' : 'mac', 'Triplicate.app/Contents/MacOS/Triplicate'], ['mac-universal', 'Triplicate.app/Contents/MacOS/Triplicate']]
        : [['linux-unpacked', 'triplicate'], ['linux-unpacked', 'Triplicate'], ['linux-arm64-unpacked', 'triplicate']];
  for (const v of existsSync(release) ? readdirSync(release) : []) {
    for (const [dir, exe] of names) {
      const p = join(release, v, dir!, exe!);
      if (existsSync(p)) return p;
    }
  }
  throw new Error(`No unpacked app under ${release}: run "npx electron-builder --dir" first, or give the executable's path.`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = LONG): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ''}`);
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/).slice(-lines).join('\n');
  } catch {
    return `(no ${path})`;
  }
}

interface RunFile {
  pid: number;
  adminUrl: string;
}

async function main(): Promise<void> {
  const executablePath = findApp();
  const base = mkdtempSync(join(tmpdir(), 'trip-smoke-'));
  const dataDir = join(base, 'data');
  const photos = join(base, 'Smoke photos');
  mkdirSync(photos, { recursive: true });
  writeFileSync(join(photos, 'first.png'), Buffer.from(PNG_1X1, 'base64'));
  const runFile = join(dataDir, 'engine.json');
  const readRun = (): RunFile | undefined => (existsSync(runFile) ? (JSON.parse(readFileSync(runFile, 'utf8')) as RunFile) : undefined);
  let app: ElectronApplication | null = null;
  let win: Page | null = null;
  let userData = '';
  const step = (s: string) => console.log(`[smoke] ${s}`);

  try {
    step(`launching ${executablePath}`);
    app = await electron.launch({
      executablePath,
      // GitHub's Ubuntu runners do not let Chromium's sandbox start (no user namespaces for it).
      args: process.platform === 'linux' ? ['--no-sandbox'] : [],
      env: {
        ...(process.env as Record<string, string>),
        TRIPLICATE_DATA_DIR: dataDir,
        // Linux: the app's settings and its autostart entry go to the test's folder, not the runner's
        XDG_CONFIG_HOME: join(base, 'config'),
      },
      timeout: LONG,
    });
    const appPid = app.process().pid!;
    userData = await app.evaluate(({ app: a }) => a.getPath('userData'));

    step('the window shows the Overview');
    win = await app.firstWindow({ timeout: LONG });
    const title = win.locator('#page-title');
    const errorPage = win.locator('h1', { hasText: 'Triplicate could not start' });
    await Promise.race([title.waitFor({ timeout: LONG }), errorPage.waitFor({ timeout: LONG })]);
    if (await errorPage.count()) throw new Error(`the app shows its error page: ${await win.locator('body').innerText()}`);
    const heading = await title.innerText();
    if (heading.trim() !== 'Overview') throw new Error(`the first page is "${heading}", not the Overview`);

    step('the engine runs in its own process and its admin URL answers');
    const run = await waitFor('the engine run file', readRun, 30_000);
    if (run.pid === appPid) throw new Error('the engine runs inside the app process');
    if (!isRunning(run.pid)) throw new Error(`the engine process ${run.pid} is not running`);
    const api = new ApiClient({ baseUrl: run.adminUrl, token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() });
    await api.call('status');
    if (new URL(win.url()).origin !== new URL(run.adminUrl).origin) throw new Error(`the window shows ${win.url()}, not the engine at ${run.adminUrl}`);

    step('a folder can be added, and the window shows it');
    const folder = await api.call('addRoot', { body: { path: photos, label: 'Smoke photos' } });
    await win.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Folders' }).click();
    await win.locator('.root-card', { hasText: 'Smoke photos' }).waitFor({ timeout: 60_000 });
    await waitFor('the file in the catalog', async () => (await api.call('status')).total_files >= 1, 60_000);

    step('the engine process loads its native modules (better-sqlite3 above; sharp for a thumbnail)');
    const thumb = await fetch(`${run.adminUrl}${STREAM_ROUTES.thumbnail}?key=${encodeURIComponent(`${folder.id}/first.png`)}&size=64`, { headers: api.headers() });
    if (thumb.status !== 200 || thumb.headers.get('content-type') !== 'image/jpeg') throw new Error(`the thumbnail answered ${thumb.status}: ${(await thumb.text()).slice(0, 300)}`);

    // Where the keys go: the system's password store when there is a real one (macOS, Windows; a
    // Linux runner has no keyring, so config.json keeps them there, as a service's does).
    const protectedStore = await app.evaluate(
      ({ safeStorage }) => safeStorage.isEncryptionAvailable() && (process.platform !== 'linux' || safeStorage.getSelectedStorageBackend() !== 'basic_text'),
    );
    step(`a destination's keys are kept ${protectedStore ? 'in the system password store' : 'in config.json (no password store here)'}`);
    const keyId = 'AKIASMOKETEST0001';
    await api.call('addTarget', { body: { id: 'cloud', kind: 's3', label: 'Smoke cloud', endpoint: 'http://127.0.0.1:9', bucket: 'smoke', credentials: { accessKeyId: keyId, secretAccessKey: 'smoke-secret-0001' } } });
    const configText = readFileSync(join(dataDir, 'config.json'), 'utf8');
    const vaultFile = join(userData, 'engine-secrets.json');
    if (protectedStore) {
      if (configText.includes(keyId) || !configText.includes('kept in the system password store')) throw new Error('config.json holds the key, not the placeholder');
      if (!existsSync(vaultFile) || readFileSync(vaultFile, 'utf8').includes(keyId)) throw new Error(`${vaultFile} is missing or holds the key in plain text`);
    } else if (!configText.includes(keyId)) throw new Error('config.json lost the key');
    const keyInUse = async () => {
      const t = (await api.call('listTargets')).find((x) => x.id === 'cloud');
      return t?.kind === 's3' && t.credentials.accessKeyId.endsWith('0001');
    };

    step('an engine killed outright is started again on the same address, with the keys');
    process.kill(run.pid, 'SIGKILL');
    const again = await waitFor('a new engine process', async () => {
      const r = readRun();
      if (!r || r.pid === run.pid) return undefined;
      await api.call('status');
      return r;
    });
    if (again.adminUrl !== run.adminUrl) throw new Error(`the engine came back at ${again.adminUrl}, not ${run.adminUrl}`);
    await win.getByRole('alert').filter({ hasText: 'The backup engine is not answering' }).waitFor({ state: 'detached', timeout: 60_000 });
    await win.locator('.root-card', { hasText: 'Smoke photos' }).waitFor({ timeout: 60_000 });
    if (!(await keyInUse())) throw new Error('the restarted engine does not have the destination key');

    step('quitting stops the engine and leaves no process');
    const child = app.process();
    const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
    await app.evaluate(({ app: a }) => a.quit()).catch(() => undefined); // the app may be gone before it answers
    await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error('the app did not quit within 60 s')), 60_000))]);
    app = null;
    await waitFor('the engine process to end', () => !isRunning(again.pid), 30_000);
    await waitFor('the app process to end', () => !isRunning(appPid), 30_000);
    if (existsSync(runFile)) throw new Error('the engine did not stop cleanly (its run file is still there)');
    step('passed');
  } catch (e) {
    console.error(`[smoke] FAILED: ${e instanceof Error ? e.stack : String(e)}`);
    if (win) {
      mkdirSync(join(root, 'test-results'), { recursive: true });
      await win.screenshot({ path: join(root, 'test-results', 'electron-smoke.png') }).catch(() => undefined);
    }
    console.error(`--- the app's log\n${tail(join(userData || join(base, 'config', 'Triplicate'), 'logs', 'main.log'))}`);
    console.error(`--- the engine's log\n${tail(join(dataDir, 'logs', 'engine.log'))}`);
    process.exitCode = 1;
  } finally {
    await app?.close().catch(() => undefined);
    const left = readRun();
    if (left && isRunning(left.pid)) {
      console.error(`[smoke] an engine process (${left.pid}) was left running; ending it`);
      process.kill(left.pid, 'SIGKILL');
      process.exitCode = 1;
    }
    rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 500 });
  }
}

await main();
