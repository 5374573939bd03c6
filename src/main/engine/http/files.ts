// Routes for files the operator moves by hand: drops into a storage root (Electron: paths the
// engine copies; browser: streamed uploads), browsing a destination like a folder (list, get,
// delete, copy between destinations), and "Save diagnostics".
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { copyFile, lstat, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { STREAM_ROUTES, type BrowseObject, type BrowseResult, type ImportResult, type SyncStatus, type UploadResult } from '../../../shared/api';
import { redactConfig, type RootConfig } from '../../../shared/config';
import { KeyError, contentTypeOf, fileKey, normalizeRelPath, parseFileKey } from '../../../shared/keys';
import { isStorageError } from '../backends/types';
import type { EngineContext } from '../core/context';
import type { Ingestor } from '../sync/ingest';
import { logFilePath } from '../log';
import { realPath } from '../config/folders';
import { sha256File } from '../sync/hash';
import { describeLocalError, errnoOf, errorText } from '../util';
import { HttpError, badRequest, conflict, notFound, sendJson, type ApiRegistry, type Handlers } from './router';

/** Files a single import or browse page looks at, at most. */
const IMPORT_MAX_FILES = 100_000;
const BROWSE_SCAN_MAX = 10_000;

/** What these routes ask of the sync service (wired by the composition root). */
export interface FileRoutesDeps {
  /** The one path into the catalog. */
  ingestor: Pick<Ingestor, 'ingest'>;
  /** A file still being written: looked at again once it stops changing. */
  touch(root: RootConfig, rel: string): void;
  status(): SyncStatus;
  wakeLanes(): void;
}

type Env = { ctx: EngineContext } & FileRoutesDeps;

function rootOf(env: Env, id: string | undefined): RootConfig {
  const root = env.ctx.config.get().roots.find((r) => r.id === id);
  if (!root) throw badRequest(`Choose the folder to put the files in (there is no folder with the id "${id ?? ''}").`);
  return root;
}

/** Resolve a relative path inside a root; never outside it. */
function inside(root: RootConfig, rel: string): { rel: string; abs: string } {
  if (/^([/\\]|[a-zA-Z]:)/.test(rel)) throw new KeyError(`"${rel}" is an absolute path; give a path inside the folder ${root.label}.`);
  const norm = normalizeRelPath(rel);
  const abs = resolve(root.path, ...norm.split('/'));
  if (!abs.startsWith(resolve(root.path) + sep)) throw new KeyError(`"${rel}" leaves the folder ${root.label}.`);
  return { rel: norm, abs };
}

function tempName(abs: string): string {
  return join(dirname(abs), `.triplicate-${randomBytes(6).toString('hex')}.part`);
}

async function existingSha(abs: string): Promise<string | null> {
  try {
    const st = await lstat(abs);
    if (!st.isFile()) return 'not-a-file';
    return (await sha256File(abs)).sha256;
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return null;
    throw e;
  }
}

function diskFull(e: unknown, where: string): HttpError {
  return new HttpError(507, 'no_space', `The disk of ${where} is full. Free some space and try again; nothing was changed.`, errorText(e));
}

/** Streamed upload from the web console: raw body -> temp file -> rename -> ingest. */
async function handleUpload(env: Env, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  if (req.method !== 'PUT' && req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'Upload files with PUT.');
  const root = rootOf(env, url.searchParams.get('root') ?? undefined);
  const rawPath = url.searchParams.get('path');
  if (!rawPath) throw badRequest('Say where the file goes: ?path=<folder/name.jpg>.');
  const { rel, abs } = inside(root, rawPath);
  const mtime = Number(url.searchParams.get('mtime') ?? '');
  mkdirSync(dirname(abs), { recursive: true });
  const tmp = tempName(abs);
  const h = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      req,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          h.update(c);
          size += c.length;
          yield c;
        }
      },
      createWriteStream(tmp, { flags: 'wx' }),
    );
  } catch (e) {
    await rm(tmp, { force: true });
    if (errnoOf(e) === 'ENOSPC') throw diskFull(e, root.label);
    if (req.destroyed || req.aborted) return; // the browser went away; nothing was changed
    throw e;
  }
  const sha = h.digest('hex');
  const have = await existingSha(abs);
  if (have !== null && have !== sha) {
    await rm(tmp, { force: true });
    throw conflict(`A different file named "${rel}" is already in ${root.label}. Rename one of them and drop it again.`);
  }
  if (have === sha) {
    await rm(tmp, { force: true });
  } else {
    if (Number.isFinite(mtime) && mtime > 0) await utimes(tmp, new Date(), new Date(mtime));
    await rename(tmp, abs);
    env.ingestor
      .ingest(root, rel)
      .then((r) => {
        if (r === 'unstable') env.touch(root, rel);
      })
      .catch(() => undefined); // the env is stopping: the next scan takes the file
  }
  const out: UploadResult = { key: fileKey(root.id, rel), size };
  sendJson(res, 200, out);
}

/** Electron drops: copy files and folders (by path on this machine) into a root. */
async function importPaths(env: Env, rootId: string, paths: string[], destDir: string | undefined, signal: AbortSignal): Promise<ImportResult> {
  const root = rootOf(env, rootId);
  if (!Array.isArray(paths) || paths.length === 0) throw badRequest('Drop at least one file or folder.');
  const base = destDir ? inside(root, destDir).rel : '';
  const result: ImportResult = { copied: 0, bytes: 0, skipped: [] };
  const rootAbs = resolve(root.path);
  let seen = 0;
  const copyOne = async (src: string, rel: string): Promise<void> => {
    if (signal.aborted) return;
    if (++seen > IMPORT_MAX_FILES) {
      result.skipped.push({ path: src, reason: `More than ${IMPORT_MAX_FILES} files at once: drop the rest in a second go.` });
      return;
    }
    let st;
    try {
      st = await lstat(src);
    } catch (e) {
      result.skipped.push({ path: src, reason: describeLocalError(e, `"${basename(src)}"`) });
      return;
    }
    if (st.isSymbolicLink()) {
      result.skipped.push({ path: src, reason: 'It is a link, not a file: drop the file it points to.' });
      return;
    }
    // Secrets never leave the data folder, not even by way of a backed-up folder.
    if (env.ctx.ownData.covers(realPath(src))) {
      result.skipped.push({ path: src, reason: "It is Triplicate's own data (settings, keys, catalog), which is never copied into a backed-up folder." });
      return;
    }
    if (st.isDirectory()) {
      if (resolve(src) === rootAbs || rootAbs.startsWith(resolve(src) + sep) || resolve(src).startsWith(rootAbs + sep)) {
        result.skipped.push({ path: src, reason: `This folder is, or is inside, ${root.label} already.` });
        return;
      }
      let names: string[];
      try {
        names = await readdir(src);
      } catch (e) {
        result.skipped.push({ path: src, reason: describeLocalError(e, `the folder "${basename(src)}"`) });
        return;
      }
      for (const n of names) await copyOne(join(src, n), `${rel}/${n}`);
      return;
    }
    if (!st.isFile()) return;
    let dest;
    try {
      dest = inside(root, base ? `${base}/${rel}` : rel);
    } catch (e) {
      result.skipped.push({ path: src, reason: errorText(e) });
      return;
    }
    try {
      const have = await existingSha(dest.abs);
      if (have !== null) {
        const mine = (await sha256File(src)).sha256;
        if (have !== mine) result.skipped.push({ path: src, reason: `A different file named "${dest.rel}" is already in ${root.label}.` });
        return; // identical: already there
      }
      mkdirSync(dirname(dest.abs), { recursive: true });
      const tmp = tempName(dest.abs);
      await copyFile(src, tmp);
      await utimes(tmp, st.atime, st.mtime);
      await rename(tmp, dest.abs);
      result.copied++;
      result.bytes += st.size;
      env.ingestor.ingest(root, dest.rel).catch(() => undefined);
    } catch (e) {
      if (errnoOf(e) === 'ENOSPC') throw diskFull(e, root.label);
      result.skipped.push({ path: src, reason: describeLocalError(e, `"${basename(src)}"`) });
    }
  };
  for (const p of paths) await copyOne(p, basename(p));
  if (result.copied) env.ctx.bus.record({ level: 'info', kind: 'import', message: `${result.copied} file${result.copied === 1 ? '' : 's'} added to ${root.label}.` });
  return result;
}

/** A folder view of a destination: immediate sub-folders and objects under `prefix`. */
async function browse(env: Env, targetId: string, prefix: string, cursor: string | undefined, limit: number, signal: AbortSignal): Promise<BrowseResult> {
  const t = env.ctx.targets.require(targetId);
  const backend = env.ctx.targets.backend(targetId);
  if (!backend) throw badRequest(`${t.label} is switched off in Triplicate; switch it on to browse it.`);
  if (prefix && !prefix.endsWith('/')) prefix += '/';
  if (prefix.includes('..') || prefix.startsWith('/')) throw badRequest('That folder name is not allowed.');
  const full = t.prefix + prefix;
  const folders = new Set<string>();
  const objects: BrowseObject[] = [];
  let scanned = 0;
  let next: string | undefined;
  for await (const o of backend.list(full, { signal, startAfter: cursor })) {
    scanned++;
    const rest = o.key.slice(full.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) folders.add(prefix + rest.slice(0, slash + 1));
    else {
      const b: BrowseObject = { key: o.key, name: rest, size: o.size };
      if (o.lastModified) b.last_modified = o.lastModified;
      const fk = o.key.slice(t.prefix.length);
      try {
        const { rootId, relPath } = parseFileKey(fk);
        if (env.ctx.catalog.fileByPath(rootId, relPath)) b.file_key = fk;
      } catch {}
      objects.push(b);
    }
    if (objects.length >= limit || scanned >= BROWSE_SCAN_MAX) {
      next = o.key;
      break;
    }
  }
  const out: BrowseResult = { target_id: targetId, prefix, folders: [...folders].sort(), objects };
  if (next) out.next_cursor = next;
  return out;
}

async function handleTargetObject(env: Env, _req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const id = decodeURIComponent(url.pathname.split('/')[4] ?? '');
  const t = env.ctx.targets.require(id);
  const key = url.searchParams.get('key');
  if (!key || !key.startsWith(t.prefix)) throw badRequest('Say which object: ?key=<object key>.');
  const backend = env.ctx.targets.backend(id);
  if (!backend) throw badRequest(`${t.label} is switched off in Triplicate.`);
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  let got;
  try {
    got = await backend.get(key, { signal: ac.signal });
  } catch (e) {
    if ((e as { kind?: string }).kind === 'not_found') throw notFound(`"${key}" is not on ${t.label}.`);
    throw e;
  }
  const name = key.slice(key.lastIndexOf('/') + 1);
  res.writeHead(200, {
    'content-type': contentTypeOf(name),
    'content-length': got.contentLength,
    'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
    'cache-control': 'no-store',
  });
  await pipeline(got.body, res).catch(() => res.destroy());
}

async function handleDiagnostics(env: Env, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const zip = new yazl.ZipFile();
  const logs = join(env.ctx.dataDir, 'logs');
  try {
    for (const n of await readdir(logs)) {
      const p = join(logs, n);
      const st = await stat(p);
      // the last 20 MB of logs is plenty; never the whole history
      if (st.isFile() && st.size < 20 * 1024 * 1024) zip.addFile(p, `logs/${n}`);
    }
  } catch {}
  const main = logFilePath();
  if (main && !main.startsWith(logs)) {
    try {
      zip.addBuffer(await readFile(main), 'logs/engine.log');
    } catch {}
  }
  zip.addBuffer(Buffer.from(JSON.stringify(redactConfig(env.ctx.config.get()), null, 2)), 'config.redacted.json');
  zip.addBuffer(Buffer.from(JSON.stringify(env.status(), null, 2)), 'status.json');
  zip.addBuffer(Buffer.from(JSON.stringify(env.ctx.catalog.events(0, 1000), null, 2)), 'events.json');
  zip.addBuffer(
    Buffer.from(JSON.stringify({ node: process.version, platform: process.platform, arch: process.arch, pid: process.pid, uptime_s: Math.round(process.uptime()), memory: process.memoryUsage() }, null, 2)),
    'system.json',
  );
  zip.end();
  res.writeHead(200, { 'content-type': 'application/zip', 'content-disposition': 'attachment; filename="triplicate-diagnostics.zip"', 'cache-control': 'no-store' });
  await pipeline(zip.outputStream, res).catch(() => res.destroy());
}

export function installFileRoutes(ctx: EngineContext, admin: ApiRegistry, deps: FileRoutesDeps): void {
  const env: Env = { ctx, ...deps, ingestor: deps.ingestor };
  admin.registerRaw(STREAM_ROUTES.uploadFile, (req, res, url) => handleUpload(env, req, res, url));
  admin.registerRaw(STREAM_ROUTES.targetObject, (req, res, url) => handleTargetObject(env, req, res, url));
  admin.registerRaw(STREAM_ROUTES.diagnostics, (req, res) => handleDiagnostics(env, req, res));
  const handlers: Handlers = {
    importFiles: ({ body, signal }) => importPaths(env, body.root, body.paths, body.dest_dir, signal),
    browseTarget: ({ params, query, signal }) => browse(env, params.id, query.prefix ?? '', query.cursor || undefined, Math.min(Math.max(Number(query.limit ?? 200) || 200, 1), 1000), signal),
    deleteObject: async ({ params, body, signal }) => {
      const t = env.ctx.targets.require(params.id);
      const backend = env.ctx.targets.backend(params.id);
      if (!backend) throw badRequest(`${t.label} is switched off in Triplicate.`);
      if (!body?.key || !body.key.startsWith(t.prefix)) throw badRequest('Say which object to delete.');
      try {
        await backend.delete(body.key, signal);
      } catch (e) {
        // A key that may not delete, or a locked object: the operator's request, refused, said as such.
        if (isStorageError(e) && e.kind === 'refused') throw new HttpError(403, 'delete_refused', e.message, e.detail);
        throw e;
      }
      // Only this copy goes. A file still in its folder is copied again (exclude it to stop that);
      // a file that is gone locally keeps its other copies.
      let fileNote = '';
      try {
        const { rootId, relPath } = parseFileKey(body.key.slice(t.prefix.length));
        const f = env.ctx.catalog.fileByPath(rootId, relPath);
        if (f) {
          if (f.local_state === 'present') {
            env.ctx.catalog.queueUpload(f.id, t.id, f.size);
            env.wakeLanes();
            fileNote = ' It is still in its folder, so Triplicate copies it again; exclude it from the folder to stop that.';
          } else {
            env.ctx.catalog.setCopyState(f.id, t.id, 'skipped', { last_error: `Deleted from ${t.label} by the operator.` });
          }
        }
      } catch {}
      env.ctx.bus.record({ level: 'warn', kind: 'object-deleted', message: `"${body.key}" was deleted from ${t.label} by the operator.${fileNote}`, target_id: t.id });
      return { deleted: true as const };
    },
    copyObject: async ({ params, body, signal }) => {
      const from = env.ctx.targets.require(params.id);
      const to = env.ctx.targets.require(body?.to);
      const src = env.ctx.targets.backend(from.id);
      const dst = env.ctx.targets.backend(to.id);
      if (!src || !dst) throw badRequest('Both destinations must be switched on to copy between them.');
      if (!body.key?.startsWith(from.prefix)) throw badRequest('Say which object to copy.');
      const head = await src.head(body.key, signal);
      if (!head) throw notFound(`"${body.key}" is not on ${from.label}.`);
      const key = to.prefix + body.key.slice(from.prefix.length);
      // our sha256 travels with the object; an object without one gets it computed on the way
      let sha = head.sha256;
      if (!sha) {
        const g = await src.get(body.key, { signal });
        const h = createHash('sha256');
        for await (const c of g.body) h.update(c as Buffer);
        sha = h.digest('hex');
      }
      const open = () => {
        // BodySource.open() is synchronous; the source's stream arrives a moment later
        const out = new PassThrough();
        src.get(body.key, { signal }).then(
          (g) => g.body.on('error', (e) => out.destroy(e)).pipe(out),
          (e) => out.destroy(e),
        );
        return out;
      };
      await dst.put(key, { size: head.size, open }, { sha256: sha, mtimeMs: head.mtimeMs ?? head.lastModified ?? Date.now(), contentType: contentTypeOf(key), signal });
      const check = await dst.head(key, signal);
      if (!check || check.size !== head.size || check.sha256 !== sha) throw new HttpError(502, 'integrity', `The copy on ${to.label} does not match the original; it was not counted. Try again.`);
      env.ctx.bus.record({ level: 'info', kind: 'object-copied', message: `"${body.key}" was copied from ${from.label} to ${to.label}.`, target_id: to.id });
      return { copied: true as const, key };
    },
  };
  admin.register(handlers);
}
