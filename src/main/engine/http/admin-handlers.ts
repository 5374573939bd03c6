// Handlers for the engine's core routes: status, sync control, roots and targets, queue, events,
// settings. Other services (downloads, links, media, restore) register their own. These call the
// config, the sync service and the admin server's sign-in: the composition root hands them over.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { access, constants, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, parse, resolve, sep } from 'node:path';
import { homedir } from 'node:os';
import { z } from 'zod';
import { isMasked, redactConfig, redactCredentials, rootSchema, targetSchema, type Config, type RootConfig, type TargetConfig } from '../../../shared/config';
import type { FileRecord, Page, QueueQuery, ScanReport, SyncStatus, TargetInfo, TargetStatus, TestConnectionResult } from '../../../shared/api';
import { listPresets } from '../backends/presets';
import { destinationOverlap, folderRefusal } from '../config/folders';
import type { EngineContext } from '../core/context';
import { logFilePath } from '../log';
import { describeLocalError } from '../util';
import { hashPassword } from './admin';
import { HttpError, badRequest, notFound, type Handlers } from './router';

/** "Photos 2024" -> "photos-2024", unique among `taken`. */
export function slugId(label: string, taken: string[]): string {
  const base =
    label
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 32) || 'item';
  let id = base;
  for (let i = 2; taken.includes(id); i++) id = `${base}-${i}`;
  return id;
}

function redactTarget(t: TargetConfig): TargetConfig {
  return t.kind === 's3' ? { ...t, credentials: redactCredentials(t.credentials) } : t;
}

async function checkFolder(path: string, what: string): Promise<string> {
  if (!path || typeof path !== 'string') throw badRequest(`Choose the folder ${what}.`, ['path: required']);
  if (!isAbsolute(path)) throw badRequest(`"${path}" is not a full folder path. Use the folder picker or type the whole path, for example /srv/media/photos or D:\\Photos.`, ['path: must be absolute']);
  const abs = resolve(path);
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    throw badRequest(describeLocalError(e, `The folder "${abs}"`).replace('is no longer there (moved or deleted)', 'does not exist. Check the spelling, or plug in the disk'), ['path']);
  }
  if (!st.isDirectory()) throw badRequest(`"${abs}" is a file, not a folder.`, ['path']);
  try {
    await access(abs, constants.R_OK | constants.X_OK);
  } catch (e) {
    throw badRequest(describeLocalError(e, `the folder "${abs}"`), ['path']);
  }
  return abs;
}

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** The deepest folder that holds every one of these paths. */
function commonParent(paths: string[]): string {
  const split = paths.map((p) => p.split(sep));
  const first = split[0]!;
  let n = 0;
  while (n < first.length - 1 && split.every((s) => s.length > n + 1 && s[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || parse(paths[0]!).root;
}

/**
 * Where the web console's folder picker opens: beside the folders already backed up, else the
 * home folder, unless that is Triplicate's own data folder (a service user such as
 * /var/lib/triplicate), then the usual places for shared media.
 */
function pickerStart(ctx: EngineContext): string {
  const roots = ctx.config.get().roots.map((r) => resolve(r.path)).filter(isDir);
  if (roots.length) return commonParent(roots);
  const home = homedir();
  let ownHome = false;
  try {
    ownHome = ctx.ownData.covers(realpathSync(home));
  } catch {}
  if (home && isDir(home) && !ownHome) return home;
  const media = ['/srv', '/mnt', '/media', '/home'].find((p) => {
    try {
      return readdirSync(p, { withFileTypes: true }).some((d) => d.isDirectory() && !d.name.startsWith('.'));
    } catch {
      return false;
    }
  });
  return media ?? parse(resolve(home || '.')).root;
}

/** Merge a target edit over the stored one; a masked secret keeps the stored value. */
function mergeTarget(stored: TargetConfig | undefined, patch: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...(stored ?? {}), ...patch };
  // A setting sent as null goes back to its default (an "at most" of files at once cleared: automatic).
  for (const [k, v] of Object.entries(patch)) if (v === null) delete merged[k];
  if (stored?.kind === 's3' && patch.credentials && typeof patch.credentials === 'object') {
    const c = patch.credentials as { accessKeyId?: string; secretAccessKey?: string };
    merged.credentials = {
      accessKeyId: !c.accessKeyId || isMasked(c.accessKeyId) ? stored.credentials.accessKeyId : c.accessKeyId,
      secretAccessKey: !c.secretAccessKey || isMasked(c.secretAccessKey) ? stored.credentials.secretAccessKey : c.secretAccessKey,
    };
  }
  return merged;
}

/** What the core routes ask of the sync service (SyncService has it). */
export interface SyncControl {
  status(): SyncStatus;
  initialSync(root?: string): Promise<{ queued: number; reports: ScanReport[] }>;
  retryFailed(target?: string): number;
  retryFile(key: string, target?: string): number;
  scanAll(opts: { dryRun?: boolean; root?: string }): Promise<ScanReport[]>;
  pauseTarget(id: string, paused: boolean): TargetStatus;
  setPausedAll(paused: boolean): void;
  readonly rootProblems: ReadonlyMap<string, string>;
}

export interface CoreDeps {
  sync: SyncControl;
  /** The catalog's files as the API shows them. */
  records: { queue(q: QueueQuery): Page<FileRecord>; file(key: string): FileRecord | undefined };
  /** Try a destination's settings (saved or not). */
  testTarget(t: TargetConfig, signal?: AbortSignal): Promise<TestConnectionResult>;
  /** The admin server's sign-in. */
  login(password: string, client: string): { token: string };
}

export function coreHandlers(ctx: EngineContext, deps: CoreDeps): Handlers {
  const { sync, records } = deps;
  const cfg = () => ctx.config.get();
  // `base`: the config the change was made on (a hand edit of config.json since then refuses the save).
  const save = (next: Config | Record<string, unknown>, base: Config) => ctx.config.apply(next, { base });
  /** A folder that may not be backed up or receive copies: 400 with the sentence. */
  const refuseFolder = (path: string, c: Config, destination = false) => {
    const why = folderRefusal(path, { own: ctx.ownData, destination }) ?? (destination ? destinationOverlap(path, c) : null);
    if (why) throw badRequest(why, ['path']);
  };

  const targetInfo = (t: TargetConfig): TargetInfo => ({ ...redactTarget(t), status: sync.status().targets[t.id] });

  return {
    status: () => sync.status(),
    initialSync: ({ body }) => sync.initialSync(body?.root),
    retryFailed: ({ body }) => ({ requeued: sync.retryFailed(body?.target) }),
    dryRun: async ({ body }) => ({ reports: await sync.scanAll({ dryRun: true, root: body?.root }) }),

    getConfig: () => redactConfig(cfg()),

    listRoots: () => {
      const totals = ctx.catalog.db.prepare('SELECT root_id, count(*) AS n, sum(size) AS b FROM files GROUP BY root_id').all() as { root_id: string; n: number; b: number | null }[];
      return cfg().roots.map((r) => {
        const t = totals.find((x) => x.root_id === r.id);
        const info = { ...r, files: t?.n ?? 0, bytes: t?.b ?? 0 } as RootConfig & { files: number; bytes: number; problem?: string };
        const p = sync.rootProblems.get(r.id);
        if (p) info.problem = p;
        return info;
      });
    },
    addRoot: async ({ body }) => {
      const abs = await checkFolder(body.path, 'to back up');
      const c = cfg();
      refuseFolder(abs, c);
      const dup = c.roots.find((r) => resolve(r.path) === abs);
      if (dup) throw new HttpError(409, 'conflict', `"${abs}" is already backed up as "${dup.label}".`);
      const nested = c.roots.find((r) => abs.startsWith(resolve(r.path) + '/') || resolve(r.path).startsWith(abs + '/'));
      if (nested) throw new HttpError(409, 'conflict', `"${abs}" is inside, or contains, the folder "${nested.label}" (${nested.path}). Back up each file only once: choose another folder or remove "${nested.label}" first.`);
      const label = (body.label ?? parse(abs).base) || abs;
      const root = rootSchema.parse({ ...body, path: abs, label, id: body.id ?? slugId(label, c.roots.map((r) => r.id)) });
      await save({ ...c, roots: [...c.roots, root] }, c);
      return root;
    },
    updateRoot: async ({ params, body }) => {
      const c = cfg();
      const cur = c.roots.find((r) => r.id === params.id);
      if (!cur) throw notFound(`There is no folder with the id "${params.id}".`);
      const next = { ...cur, ...body, id: cur.id };
      if (body.path !== undefined && body.path !== cur.path) {
        next.path = await checkFolder(body.path, 'to back up');
        refuseFolder(next.path, c);
      }
      const root = rootSchema.parse(next);
      await save({ ...c, roots: c.roots.map((r) => (r.id === cur.id ? root : r)) }, c);
      return root;
    },
    removeRoot: async ({ params }) => {
      const c = cfg();
      if (!c.roots.some((r) => r.id === params.id)) throw notFound(`There is no folder with the id "${params.id}".`);
      // The catalog keeps its files: their backups stay restorable. Nothing is deleted anywhere.
      await save({ ...c, roots: c.roots.filter((r) => r.id !== params.id) }, c);
      return { removed: true as const };
    },

    listTargets: () => cfg().targets.map(targetInfo),
    addTarget: async ({ body }) => {
      const c = cfg();
      const label = typeof body.label === 'string' && body.label ? body.label : typeof body.kind === 'string' && body.kind === 'folder' ? 'Folder' : 'Destination';
      const id = typeof body.id === 'string' && body.id ? body.id : slugId(label, c.targets.map((t) => t.id));
      if (c.targets.some((t) => t.id === id)) throw new HttpError(409, 'conflict', `A destination with the id "${id}" exists already.`);
      const t = targetSchema.parse({ ...body, id, label });
      if (t.kind === 'folder') refuseFolder(await checkFolder(t.path, 'for the copies'), c, true);
      const saved = await save({ ...c, targets: [...c.targets, t] }, c);
      return redactTarget(saved.targets.find((x) => x.id === id)!);
    },
    updateTarget: async ({ params, body }) => {
      const c = cfg();
      const cur = c.targets.find((t) => t.id === params.id);
      if (!cur) throw notFound(`There is no destination with the id "${params.id}".`);
      const t = targetSchema.parse({ ...mergeTarget(cur, body), id: cur.id });
      if (t.kind === 'folder' && cur.kind === 'folder' && t.path !== cur.path) refuseFolder(await checkFolder(t.path, 'for the copies'), c, true);
      const saved = await save({ ...c, targets: c.targets.map((x) => (x.id === cur.id ? t : x)) }, c);
      return redactTarget(saved.targets.find((x) => x.id === cur.id)!);
    },
    removeTarget: async ({ params }) => {
      const c = cfg();
      if (!c.targets.some((t) => t.id === params.id)) throw notFound(`There is no destination with the id "${params.id}".`);
      // Objects on the target stay where they are: removing a destination never deletes backups.
      await save({ ...c, targets: c.targets.filter((t) => t.id !== params.id) }, c);
      ctx.catalog.deleteLane(`upload:${params.id}`);
      return { removed: true as const };
    },
    testTarget: async ({ body, signal }) => {
      const stored = typeof body.id === 'string' ? cfg().targets.find((t) => t.id === body.id) : undefined;
      const parsed = targetSchema.safeParse({ id: 'test', label: 'Test', ...mergeTarget(stored, body) });
      if (!parsed.success) throw badRequest(`Fill in the destination first: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
      return deps.testTarget(parsed.data, signal);
    },
    testTargetById: ({ params, signal }) => deps.testTarget(ctx.targets.require(params.id), signal),
    pauseTarget: ({ params }) => sync.pauseTarget(params.id, true),
    resumeTarget: ({ params }) => sync.pauseTarget(params.id, false),
    presets: () => listPresets(),

    pauseAll: () => {
      sync.setPausedAll(true);
      return { paused: true as const };
    },
    resumeAll: () => {
      sync.setPausedAll(false);
      return { paused: false as const };
    },

    queue: ({ query }) => records.queue(query),
    file: ({ query }) => {
      if (!query.key) throw badRequest('Say which file: ?key=<folder id>/<path>.');
      const f = records.file(query.key);
      if (!f) throw notFound(`Triplicate does not know the file "${query.key}".`);
      return f;
    },
    retryFile: ({ body }) => {
      if (!body?.key) throw badRequest('Say which file to retry (key).');
      return { requeued: sync.retryFile(body.key, body.target) };
    },
    events: ({ query }) => ctx.catalog.events(Number(query.after ?? 0) || 0, Math.min(Number(query.limit ?? 200) || 200, 1000)),

    login: ({ body, req }) => deps.login((body as { password: string }).password, (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')),
    setAdminPassword: async ({ body }) => {
      const pw = z.string().min(8, 'use at least 8 characters').safeParse(body?.password);
      if (!pw.success) throw badRequest('The console password needs at least 8 characters.', ['password: at least 8 characters']);
      const c = cfg();
      await save({ ...c, server: { ...c.server, adminPasswordHash: hashPassword(pw.data) } }, c);
      return { ok: true as const };
    },
    updateSettings: async ({ body }) => {
      const c = cfg();
      const next = {
        ...c,
        ...(body.siteName !== undefined ? { siteName: body.siteName } : {}),
        sync: { ...c.sync, ...(body.sync ?? {}) },
        media: { ...c.media, ...(body.media ?? {}) },
        notifications: {
          ...c.notifications,
          ...(body.notifications?.desktop !== undefined ? { desktop: body.notifications.desktop } : {}),
          // the masked address sent back by a form keeps the stored one
          ...(body.notifications?.webhookUrl !== undefined && !isMasked(body.notifications.webhookUrl ?? undefined, true) ? { webhookUrl: body.notifications.webhookUrl ?? undefined } : {}),
        },
      };
      return redactConfig(await save(next, c));
    },
    logs: async ({ query }) => {
      const file = logFilePath() ?? join(ctx.dataDir, 'logs', 'engine.log');
      const limit = Math.min(Math.max(Number(query.limit ?? 500) || 500, 1), 5000);
      let text = '';
      try {
        text = await readFile(file, 'utf8');
      } catch {}
      const lines = text.split('\n').filter(Boolean).slice(-limit);
      return { file, lines };
    },
    listDirs: ({ query }) => {
      const path = resolve(query.path || pickerStart(ctx));
      let entries: string[];
      try {
        entries = readdirSync(path, { withFileTypes: true })
          .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
          .map((d) => d.name)
          .sort((a, b) => a.localeCompare(b));
      } catch (e) {
        throw badRequest(describeLocalError(e, `the folder "${path}"`));
      }
      const parent = dirname(path);
      return { path, ...(parent !== path ? { parent } : {}), dirs: entries };
    },
  };
}
