// Commands that must not say "all good" about nothing (issue #17 item 2): every command but
// serve/demo, pointed at a folder that is not a Triplicate data folder or at one whose engine is not
// running, says so with the next step, exits non-zero and creates nothing; a check that checked
// nothing never says "good".
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, tempDir, writeConfig } from '../helpers/engine';
import { ENGINE_ENTRY, readableBundle, skipUnlessUnprivileged } from '../helpers/unprivileged';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'triplicate.mjs');
const PASSWORD = 'a long enough password\n';

let dirs: string[] = [];
let chmodBack: string[] = [];
afterEach(() => {
  for (const d of chmodBack) chmodSync(d, 0o700);
  cleanup(...dirs);
  dirs = [];
  chmodBack = [];
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as its own process; `env` replaces the data-dir variables so the operator's own ~/.triplicate is never touched. */
function cli(args: string[], opts: { input?: string; home?: string; uid?: number; bin?: string } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  delete env.TRIPLICATE_DATA_DIR;
  if (opts.home) env.HOME = opts.home;
  const child = spawn(process.execPath, [opts.bin ?? BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env, uid: opts.uid, gid: opts.uid, cwd: opts.uid === undefined ? undefined : '/' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve({ code: c ?? -1, stdout, stderr });
    });
  });
}

/** Everything under dir, recursively (what a command may have created). */
function contents(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const COMMANDS: { name: string; args: string[]; input?: string; needsEngine: boolean }[] = [
  { name: 'verify', args: ['verify'], needsEngine: true },
  { name: 'prune', args: ['prune', '--dry-run'], needsEngine: true },
  { name: 'restore', args: ['restore'], needsEngine: true },
  { name: 'link list', args: ['link', 'list'], needsEngine: true },
  { name: 'status', args: ['status'], needsEngine: true },
  { name: 'password', args: ['password'], input: PASSWORD, needsEngine: false },
];

describe('commands on a folder that is not a working data folder', () => {
  it('say what is wrong and what to do, exit 3, and create nothing', async () => {
    const base = tempDir('trip-truth-');
    dirs.push(base);
    const home = join(base, 'home');
    mkdirSync(home);
    const target = { id: 'shelf', label: 'Shelf disk', kind: 'folder' as const, path: join(base, 'shelf') };
    // a live pid (this test) and a port nothing listens on: an engine.json left by a crash whose pid was reused
    const deadUrl = `http://127.0.0.1:${await closedPort()}`;

    interface Case {
      what: string;
      dir: string;
      args: string[];
      input?: string;
      expect: RegExp[];
      /** What is in the folder afterwards, and what must be. */
      left: () => unknown;
      want: unknown;
    }
    const cases: Case[] = [];
    for (const c of COMMANDS) {
      const missing = join(base, `missing-${c.name.replace(' ', '-')}`);
      cases.push({
        what: `${c.name}: a data dir that does not exist`,
        dir: missing,
        args: [...c.args, '--data-dir', missing],
        input: c.input,
        expect: [/does not exist/, /Check --data-dir/, /triplicate serve --data-dir/],
        left: () => existsSync(missing),
        want: false,
      });
      const empty = join(base, `empty-${c.name.replace(' ', '-')}`);
      mkdirSync(empty);
      cases.push({
        what: `${c.name}: a folder without config.json`,
        dir: empty,
        args: [...c.args, '--data-dir', empty],
        input: c.input,
        expect: [/is not a Triplicate data folder: it has no config\.json/, /Check --data-dir/, /triplicate serve --data-dir/],
        left: () => contents(empty),
        want: [],
      });
      if (!c.needsEngine) continue;
      const configured = join(base, `configured-${c.name.replace(' ', '-')}`);
      writeConfig(configured, { targets: [target] });
      cases.push({
        what: `${c.name}: a data dir with a config and no engine`,
        dir: configured,
        args: [...c.args, '--data-dir', configured],
        expect: [/The Triplicate engine is not running for/, /Start it with: triplicate serve --data-dir/],
        left: () => contents(configured),
        want: ['config.json'],
      });
      if (c.name === 'status' || c.name === 'verify') {
        const stale = join(base, `stale-${c.name}`);
        writeConfig(stale, { targets: [target] });
        writeFileSync(join(stale, 'engine.json'), JSON.stringify({ pid: process.pid, adminUrl: deadUrl }));
        cases.push({
          what: `${c.name}: an engine.json whose engine does not answer`,
          dir: stale,
          args: [...c.args, '--data-dir', stale],
          expect: [/The Triplicate engine is not running for/, /nothing answers at http:\/\/127\.0\.0\.1:\d+/, /Start it with: triplicate serve --data-dir/],
          left: () => contents(stale),
          want: ['config.json', 'engine.json'],
        });
      }
    }
    // no --data-dir and no $TRIPLICATE_DATA_DIR: ~/.triplicate, which is not there
    for (const c of [COMMANDS[0]!, COMMANDS[5]!]) {
      cases.push({
        what: `${c.name}: no --data-dir, and no ~/.triplicate`,
        dir: join(home, '.triplicate'),
        args: c.args,
        input: c.input,
        expect: [/does not exist/, /Check --data-dir/],
        left: () => contents(home),
        want: [],
      });
    }

    const runs = await Promise.all(cases.map((c) => cli(c.args, { input: c.input, home })));
    // every assertion of every case is reported (soft), so one run shows all that is wrong
    cases.forEach((c, i) => {
      const r = runs[i]!;
      const where = `${c.what} (stderr: ${r.stderr.trim()})`;
      expect.soft(r.code, `${where}: exit code`).toBe(3);
      expect.soft(r.stderr, `${where}: names the folder`).toContain(c.dir);
      for (const re of c.expect) expect.soft(r.stderr, where).toMatch(re);
      expect.soft(r.stderr, where).not.toMatch(/all good/i);
      expect.soft(c.left(), `${c.what}: left in the folder`).toEqual(c.want);
    });
  }, 300_000);

  it('a data dir or token this user may not read: a sentence about permissions, not "no config"', async (t) => {
    skipUnlessUnprivileged(t);
    const base = tempDir('trip-truth-perm-');
    dirs.push(base);
    chmodSync(base, 0o755);
    // a folder this user may not look into (the service's own data dir, 0700)
    const locked = join(base, 'locked');
    writeConfig(locked, { targets: [] });
    writeFileSync(join(locked, 'admin-token'), 'x'.repeat(43), { mode: 0o600 });
    chmodSync(locked, 0o700);
    // a folder it may read, with an engine that answers, but a token file it may not read
    const server = createHttpServer((_req, res) => res.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const tokenLocked = join(base, 'token-locked');
    writeConfig(tokenLocked, { targets: [] });
    chmodSync(tokenLocked, 0o755);
    writeFileSync(join(tokenLocked, 'engine.json'), JSON.stringify({ pid: process.pid, adminUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}` }), { mode: 0o644 });
    writeFileSync(join(tokenLocked, 'admin-token'), 'x'.repeat(43), { mode: 0o600 });
    // as root, run the CLI as nobody; otherwise take away our own access
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) {
      chmodSync(locked, 0o000);
      chmodBack.push(locked);
      chmodSync(join(tokenLocked, 'admin-token'), 0o000);
    }
    const uid = asRoot ? 65534 : undefined; // nobody
    // nobody may not reach the checkout (a clone in root's home, 0700): the CLI runs from a bundle it can read
    const bundle = asRoot ? await readableBundle({ triplicate: ENGINE_ENTRY }) : undefined;
    const bin = bundle?.path('triplicate');
    try {
      const runs = await Promise.all([
        cli(['status', '--data-dir', locked], { uid, bin }),
        cli(['verify', '--data-dir', locked], { uid, bin }),
        cli(['status', '--data-dir', tokenLocked], { uid, bin }),
      ]);
      for (const [i, r] of runs.entries()) {
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).toContain(i < 2 ? locked : join(tokenLocked, 'admin-token'));
        expect(r.stderr).toMatch(/permission denied/);
        expect(r.stderr).toMatch(/run it as the user the service runs as, or with sudo/);
        expect(r.stderr).not.toMatch(/no config\.json|not running/);
      }
    } finally {
      server.close();
      bundle?.dispose();
    }
    if (!asRoot) chmodSync(locked, 0o700);
    expect(contents(locked)).toEqual(['admin-token', 'config.json']);
  }, 120_000);

  it('password on a data folder with a config sets the password (the refusals above are not about the password)', async () => {
    const base = tempDir('trip-truth-pw-');
    dirs.push(base);
    const data = join(base, 'data');
    writeConfig(data, { targets: [] });
    const r = await cli(['password', '--data-dir', data], { input: PASSWORD });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(data, 'config.json'), 'utf8')).server.adminPasswordHash).toMatch(/\S{20}/);
  }, 120_000);
});

describe('a check that checked nothing', () => {
  it('verify and prune with no destination: "Nothing was checked", exit 2, with the engine running and without it', async () => {
    const base = tempDir('trip-truth-none-');
    dirs.push(base);
    const data = join(base, 'data');
    writeConfig(data, { roots: [], targets: [] });
    const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', data, '--no-scan', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
    let serveErr = '';
    child.stderr.on('data', (d) => (serveErr += String(d)));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (l) => {
          if ((JSON.parse(l) as { event: string }).event === 'ready') resolve();
        });
        child.once('exit', (c) => reject(new Error(`serve exited ${c} before ready: ${serveErr}`)));
      });
      const [verify, prune, status, links] = await Promise.all([
        cli(['verify', '--data-dir', data]),
        cli(['prune', '--data-dir', data]),
        cli(['status', '--data-dir', data]),
        cli(['link', 'list', '--data-dir', data]),
      ]);
      // the running engine is reached (status and link list work) ...
      expect(status.code, status.stderr).toBe(0);
      expect(links.code, links.stderr).toBe(0);
      // ... and its verify checked nothing, so it is not good
      expect(verify.code, verify.stderr).toBe(2);
      expect(verify.stderr).not.toMatch(/all good/i);
      expect(verify.stderr).toMatch(/Nothing was checked: no destination is set up/);
      expect((JSON.parse(verify.stdout.trim().split('\n')[0]!) as { ok: boolean }).ok).toBe(false);
      expect(prune.code, prune.stderr).toBe(2);
      expect(prune.stderr).toMatch(/Nothing was pruned: no destination is set up/);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    // without the engine (its catalog is there now): the same, and with a destination that holds no copy yet
    const offline = await cli(['verify', '--data-dir', data]);
    expect(offline.code, offline.stderr).toBe(2);
    expect(offline.stderr).toMatch(/Nothing was checked: no destination is set up/);
    writeConfig(data, { roots: [], targets: [{ id: 'shelf', label: 'Shelf disk', kind: 'folder', path: join(base, 'shelf') }] });
    const empty = await cli(['verify', '--data-dir', data]);
    expect(empty.code, empty.stderr).toBe(2);
    expect(empty.stderr).not.toMatch(/all good/i);
    expect(empty.stderr).toMatch(/Nothing was checked: there is no copy on Shelf disk yet/);
    expect(statSync(data).isDirectory()).toBe(true);
  }, 300_000);
});
