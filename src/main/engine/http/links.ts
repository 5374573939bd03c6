// Signed, revocable download links: HS256 JWTs (jose) whose `sub` is a file key or a prefix
// ending in "/", with `exp`, `nbf`, `iat` and a `jti` that names a row of the `links` table.
// The signing secret (32 random bytes) lives in the catalog's kv table, made on first start;
// rotating it makes every link ever issued invalid and marks them all revoked.
//
// Verification accepts HS256 only (no `alg: none`, no other algorithm, no other key) and then
// checks the row: a token whose row is missing or revoked does not open anything, even if its
// signature is good. Verified signatures are cached by token string (signature checks are the
// expensive part); expiry, not-before and revocation are checked on every request.
import { randomBytes } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Statement } from 'better-sqlite3';
import type { CreateLinkRequest, LinkInfo, LinkReach } from '../../../shared/api';
import { KeyError, normalizeRelPath, parseFileKey } from '../../../shared/keys';
import type { RootConfig } from '../../../shared/config';
import type { EngineContext } from '../core/context';
import type { PathFilter } from '../sync/filter';
import { HttpError, badRequest, notFound } from './router';
import { randomToken } from '../util';

const SECRET_KV = 'links.secret';
const DISPOSITION_KV = (id: string) => `links.disposition.${id}`;
/** Longest link lifetime: a year. */
export const MAX_TTL_SECONDS = 366 * 24 * 3600;
const MAX_TOKEN_CHARS = 4096;
const CACHE_MAX = 4096;
const ROW_CACHE_MS = 5_000;

export interface LinkRow {
  id: string;
  scope: string;
  is_prefix: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  note: string | null;
  downloads: number;
  last_used_at: number | null;
}

/** Where links point now and who can open them; no `url` when no link would work (`problem` says why). */
export interface LinkBase {
  reach: LinkReach;
  url?: string;
  problem?: string;
}

/** What a good token grants. Times in ms. */
export interface Grant {
  id: string;
  scope: string;
  prefix: boolean;
  expiresAt: number;
  disposition?: 'inline' | 'attachment';
}

interface CachedClaims {
  sub: string;
  jti: string;
  exp: number;
  nbf: number;
  disp?: 'inline' | 'attachment';
  gen: number;
}

/** A new link id: 16 URL-safe characters, never starting with '-' or '_' (see randomToken). */
export function newLinkId(): string {
  return randomToken(12);
}

/** A refused token: status 401 (not a valid link) or 403 (valid but not for this, or revoked). */
export class LinkError extends HttpError {}

const invalid = (why: string) =>
  new LinkError(401, 'invalid_link', 'This download link is not valid. Check that it was copied completely, or ask the sender for a new link.', why);

export { parseTtl } from '../../../shared/format';

/**
 * Check a link scope: a file key (`root/path/file.jpg`) or a folder prefix ending in "/"
 * (`root/`, `root/some/folder/`). Returns the canonical form.
 */
export function parseScope(key: string): { scope: string; prefix: boolean; rootId: string; relPath: string } {
  if (typeof key !== 'string' || key.length === 0) throw new KeyError('the key is empty');
  if (key.endsWith('/')) {
    const slash = key.indexOf('/');
    const rootId = key.slice(0, slash);
    const { rootId: r } = parseFileKey(`${rootId}/x`);
    if (key.length === slash + 1) return { scope: `${r}/`, prefix: true, rootId: r, relPath: '' };
    const rest = key.slice(slash + 1, -1);
    const rel = normalizeRelPath(rest);
    if (rel !== rest.normalize('NFC')) throw new KeyError(`"${key}" is not a canonical folder key`);
    return { scope: `${r}/${rel}/`, prefix: true, rootId: r, relPath: rel };
  }
  const { rootId, relPath } = parseFileKey(key);
  return { scope: `${rootId}/${relPath}`, prefix: false, rootId, relPath };
}

/** Does a grant open this (canonical) file key? */
export function grantCovers(g: Pick<Grant, 'scope' | 'prefix'>, key: string): boolean {
  return g.prefix ? key.startsWith(g.scope) && key.length > g.scope.length : key === g.scope;
}

/**
 * The one rule for what a link opens: a file of the catalog (a row of `files` in that root) whose
 * path the root's current include/exclude rules still take, the scanner's own filter (so OS litter
 * and temp files, never cataloged, are out too). A rule added later hides the files it excludes
 * at once, though their rows and backups stay for restores. Returns the test of a cataloged path.
 */
export function linkablePaths(roots: RootConfig[], filterFor: (root: RootConfig) => PathFilter, rootId: string): PathFilter {
  const root = roots.find((r) => r.id === rootId);
  return root ? filterFor(root) : () => false;
}

/** Path part of a download URL for a key or prefix: each segment percent-encoded. */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

export class Links {
  private secret!: Uint8Array;
  /** Bumped by rotation: cached verifications of an older secret are void. */
  private gen = 0;
  /** Verified signatures by token: the signature check costs more than the rest of serving a small file. */
  private readonly cache = new Map<string, CachedClaims>();
  /** Link rows for ROW_CACHE_MS (see row()): a SQLite read per request is a good share of a small download. */
  private readonly rows = new Map<string, { row: LinkRow | undefined; at: number }>();
  private readonly s: {
    insert: Statement;
    byId: Statement<[string], LinkRow>;
    all: Statement<[], LinkRow>;
    revoke: Statement<[number, string]>;
    revokeAll: Statement<[number]>;
    use: Statement<[number, number, string]>;
  };
  /** Uses counted here and written every 2 s (flush()): a SQLite write per request would be a small download's dearest step. */
  private readonly uses = new Map<string, { n: number; last: number }>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: EngineContext,
    /** Where links point now (sharing.ts): the tunnel, the local network or this computer. */
    private readonly base: () => LinkBase,
    /** The scanner's include/exclude filter of a root (the ingestor's). */
    private readonly filterFor: (root: RootConfig) => PathFilter,
  ) {
    const db = ctx.catalog.db;
    this.s = {
      insert: db.prepare(
        'INSERT INTO links (id, scope, is_prefix, created_at, expires_at, revoked_at, note, downloads, last_used_at) VALUES (@id, @scope, @is_prefix, @created_at, @expires_at, NULL, @note, 0, NULL)',
      ),
      byId: db.prepare<[string], LinkRow>('SELECT * FROM links WHERE id = ?'),
      all: db.prepare<[], LinkRow>('SELECT * FROM links ORDER BY created_at DESC, id'),
      revoke: db.prepare<[number, string]>('UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeAll: db.prepare<[number]>('UPDATE links SET revoked_at = ? WHERE revoked_at IS NULL'),
      use: db.prepare<[number, number, string]>('UPDATE links SET downloads = downloads + ?, last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?'),
    };
    this.loadSecret();
  }

  /** The files of a root that a link opens (see linkablePaths). */
  linkable(rootId: string): PathFilter {
    return linkablePaths(this.ctx.config.get().roots, this.filterFor, rootId);
  }

  private loadSecret(): void {
    const stored = this.ctx.catalog.kvGet(SECRET_KV);
    const buf = stored ? Buffer.from(stored, 'base64url') : null;
    if (buf && buf.length >= 32) {
      this.secret = new Uint8Array(buf);
      return;
    }
    const fresh = randomBytes(32);
    this.ctx.catalog.kvSet(SECRET_KV, fresh.toString('base64url'));
    this.secret = new Uint8Array(fresh);
  }

  // ---- create / list / revoke / rotate ---------------------------------------------------------

  async create(req: CreateLinkRequest, now = Date.now()): Promise<LinkInfo> {
    if (!req || typeof req !== 'object') throw badRequest('Send the file key and how long the link should work.', ['key', 'ttl_seconds']);
    let parsed;
    try {
      parsed = parseScope(req.key);
    } catch (e) {
      throw badRequest(`The key "${String(req.key).slice(0, 200)}" is not a file or folder of Triplicate: ${(e as Error).message}.`, ['key']);
    }
    const ttl = Number(req.ttl_seconds);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
      throw badRequest('A link must work for at least 1 second and at most a year; give ttl_seconds as a whole number.', ['ttl_seconds']);
    }
    if (req.disposition !== undefined && req.disposition !== 'inline' && req.disposition !== 'attachment') {
      throw badRequest('disposition is "inline" (open in the browser) or "attachment" (save as a file).', ['disposition']);
    }
    if (req.note !== undefined && (typeof req.note !== 'string' || req.note.length > 500)) throw badRequest('The note is text of at most 500 characters.', ['note']);
    const root = this.ctx.config.get().roots.find((r) => r.id === parsed.rootId);
    if (!root) throw notFound(`There is no folder with the id "${parsed.rootId}". Check the key; it starts with the folder id.`);
    if (!parsed.prefix && !this.ctx.catalog.fileByPath(parsed.rootId, parsed.relPath)) {
      throw notFound(`Triplicate does not know the file "${parsed.scope}". Check the spelling, or wait until the file has been scanned.`);
    }
    if (!parsed.prefix && !this.linkable(parsed.rootId)(parsed.relPath)) {
      throw badRequest(`"${parsed.scope}" is left out of the backups by the include/exclude rules of the folder ${root.label}, so a link would not open it. Change the folder's rules first if it should be shared.`, ['key']);
    }
    const base = this.base();
    // Before anything is stored: a link that could not open is never handed out.
    if (!base.url) throw new HttpError(503, 'no_link', `No link was made. ${base.problem ?? ''}`.trim());
    const nowS = Math.floor(now / 1000);
    const row: LinkRow = {
      id: newLinkId(),
      scope: parsed.scope,
      is_prefix: parsed.prefix ? 1 : 0,
      created_at: nowS * 1000,
      expires_at: (nowS + ttl) * 1000,
      revoked_at: null,
      note: req.note ?? null,
      downloads: 0,
      last_used_at: null,
    };
    this.ctx.catalog.transaction(() => {
      this.s.insert.run(row);
      this.rows.delete(row.id);
      if (req.disposition === 'attachment') this.ctx.catalog.kvSet(DISPOSITION_KV(row.id), 'attachment');
    });
    this.ctx.bus.record({
      level: 'info',
      kind: 'link-created',
      message: `A download link to ${parsed.prefix ? `the folder "${parsed.scope}"` : `"${parsed.scope}"`} was made; it works until ${new Date(row.expires_at).toISOString()}.`,
      file_key: parsed.prefix ? undefined : parsed.scope,
    });
    return this.info(row);
  }

  async list(includeExpired = false, now = Date.now()): Promise<LinkInfo[]> {
    this.flush();
    const rows = this.s.all.all().filter((r) => includeExpired || r.expires_at > now);
    return Promise.all(rows.map((r) => this.info(r)));
  }

  get(id: string): LinkRow | undefined {
    return this.s.byId.get(id);
  }

  async revoke(id: string, now = Date.now()): Promise<LinkInfo> {
    const row = typeof id === 'string' ? this.s.byId.get(id) : undefined;
    if (!row) throw notFound(`There is no link with the id "${String(id).slice(0, 100)}". List the links to see their ids.`);
    this.rows.delete(id);
    if (this.s.revoke.run(now, id).changes === 1) {
      this.ctx.bus.record({ level: 'info', kind: 'link-revoked', message: `The download link ${id} to "${row.scope}" was turned off; it no longer opens anything.` });
    }
    this.flush();
    return this.info(this.s.byId.get(id)!);
  }

  /** New secret; every link issued so far stops working and is marked revoked. */
  rotate(now = Date.now()): { revoked: number } {
    const fresh = randomBytes(32);
    const revoked = this.ctx.catalog.transaction(() => {
      this.ctx.catalog.kvSet(SECRET_KV, fresh.toString('base64url'));
      return this.s.revokeAll.run(now).changes;
    });
    this.secret = new Uint8Array(fresh);
    this.gen++;
    this.cache.clear();
    this.rows.clear();
    this.ctx.bus.record({
      level: 'warn',
      kind: 'links-rotated',
      message: `The link signing key was replaced: all ${revoked} active download link${revoked === 1 ? '' : 's'} stopped working. Make new links for the people who still need files.`,
    });
    return { revoked };
  }

  private async info(row: LinkRow): Promise<LinkInfo> {
    const base = this.base();
    const out: LinkInfo = {
      id: row.id,
      key: row.scope,
      url: base.url ? `${base.url.replace(/\/+$/, '')}/files/${encodeKeyPath(row.scope)}?token=${await this.tokenFor(row)}` : '',
      reach: base.reach,
      created_at: row.created_at,
      expires_at: row.expires_at,
      downloads: row.downloads + (this.uses.get(row.id)?.n ?? 0),
    };
    if (!base.url) out.unavailable = `This link cannot be opened now. ${base.problem ?? ''}`.trim();
    if (row.revoked_at) out.revoked_at = row.revoked_at;
    if (row.note) out.note = row.note;
    return out;
  }

  /** The token of a link; HS256 is deterministic, so the same row gives the same token again. */
  private tokenFor(row: LinkRow): Promise<string> {
    const disp = this.ctx.catalog.kvGet(DISPOSITION_KV(row.id)) === 'attachment' ? 'attachment' : undefined;
    const claims: JWTPayload = disp ? { disp } : {};
    const iat = Math.floor(row.created_at / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(row.scope)
      .setJti(row.id)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(Math.floor(row.expires_at / 1000))
      .sign(this.secret);
  }

  // ---- verify ----------------------------------------------------------------------------------

  /** Check a token; throws LinkError (401/403) with a sentence for the person holding the link. */
  async verify(token: string | null | undefined, now = Date.now()): Promise<Grant> {
    const known = this.cachedGrant(token, now);
    if (known) return known;
    const c = await this.verifySignature(token!, now);
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token!, c);
    return this.grantOf(c, now);
  }

  /**
   * verify() without waiting, for a token whose signature was checked before: its grant, or
   * undefined when the signature still has to be checked (then call verify()). Expiry, not-before,
   * revocation and the link's row are checked here on every call, and it throws the same LinkErrors.
   */
  cachedGrant(token: string | null | undefined, now = Date.now()): Grant | undefined {
    if (!token) throw new LinkError(401, 'no_token', 'This address needs a download link with a token. Ask the sender for the full link.');
    if (token.length > MAX_TOKEN_CHARS) throw invalid('token too long');
    const c = this.cache.get(token);
    if (!c || c.gen !== this.gen) return undefined;
    return this.grantOf(c, now);
  }

  private grantOf(c: CachedClaims, now: number): Grant {
    const nowS = now / 1000;
    if (c.exp <= nowS) throw expired(c.exp);
    if (c.nbf > nowS) throw notYet(c.nbf);
    const row = this.row(c.jti, now);
    if (!row || row.scope !== c.sub) throw invalid('no such link');
    if (row.revoked_at !== null) {
      throw new LinkError(403, 'link_revoked', 'This download link was turned off by the person who shared it. Ask them for a new link if you still need the file.');
    }
    // The row is the authority on expiry: a token re-signed with a later `exp` (by someone who read
    // the signing key) does not outlive the link that was made.
    if (row.expires_at <= now) throw expired(row.expires_at / 1000);
    return { id: row.id, scope: row.scope, prefix: row.is_prefix === 1, expiresAt: Math.min(row.expires_at, c.exp * 1000), disposition: c.disp };
  }

  /**
   * The link's row, from memory for up to ROW_CACHE_MS: every change to a link (revoke, rotate)
   * goes through this class and drops the cached row, so a revocation still takes effect at once.
   */
  private row(id: string, now: number): LinkRow | undefined {
    const c = this.rows.get(id);
    if (c && now - c.at < ROW_CACHE_MS) return c.row;
    const row = this.s.byId.get(id);
    if (this.rows.size >= CACHE_MAX) this.rows.clear();
    this.rows.set(id, { row, at: now });
    return row;
  }

  private async verifySignature(token: string, now: number): Promise<CachedClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], currentDate: new Date(now), requiredClaims: ['sub', 'jti', 'exp', 'nbf'] }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw expired(Number((e.payload as JWTPayload).exp));
      if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'nbf') throw notYet(Number((e.payload as JWTPayload).nbf));
      throw invalid(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
    const { sub, jti, exp, nbf } = payload;
    if (typeof sub !== 'string' || typeof jti !== 'string' || typeof exp !== 'number' || typeof nbf !== 'number') throw invalid('claims of the wrong type');
    const disp = payload.disp === 'attachment' || payload.disp === 'inline' ? payload.disp : undefined;
    return { sub, jti, exp, nbf, disp, gen: this.gen };
  }

  // ---- use counting ----------------------------------------------------------------------------

  /** Note a use of a link: `download` counts a fresh download (not every range of a video). */
  recordUse(id: string, download: boolean, now = Date.now()): void {
    const u = this.uses.get(id) ?? { n: 0, last: 0 };
    if (download) u.n++;
    u.last = now;
    this.uses.set(id, u);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), 2000);
      this.flushTimer.unref?.();
    }
  }

  /** Write the counted uses (batched: one transaction every 2 s, not one write per request). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.uses.size === 0 || !this.ctx.catalog.db.open) return;
    const batch = [...this.uses.entries()];
    this.uses.clear();
    this.ctx.catalog.transaction(() => {
      for (const [id, u] of batch) this.s.use.run(u.n, u.last, id);
    });
  }
}

function expired(expS: number): LinkError {
  const when = Number.isFinite(expS) ? ` on ${new Date(expS * 1000).toISOString().replace('T', ' ').slice(0, 16)} UTC` : '';
  return new LinkError(401, 'link_expired', `This download link expired${when}. Ask the sender for a new link.`);
}

function notYet(nbfS: number): LinkError {
  const when = Number.isFinite(nbfS) ? ` before ${new Date(nbfS * 1000).toISOString().replace('T', ' ').slice(0, 16)} UTC` : ' yet';
  return new LinkError(401, 'link_not_yet_valid', `This download link does not work${when}. Try again later, or check the clock of this computer.`);
}
