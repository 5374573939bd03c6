// A folder link opened in a browser: a plain HTML list of the files it opens (linkablePaths,
// links.ts) and of the sub-folders, each a link with the same token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EngineContext } from '../../core/context';
import { encodeKeyPath, parseScope, type Grant, type Links } from '../links';
import type { AccessEntry } from './access-log';
import { SECURITY_HEADERS, sendError } from './answer';

/** A folder link opened in a browser: the files and sub-folders in it, each a link with the same token. */
export function serveListing(core: EngineContext, links: Links, req: IncomingMessage, res: ServerResponse, grant: Grant, dirKey: string, token: string | null, entry: AccessEntry): void {
  let scope;
  try {
    scope = parseScope(dirKey);
  } catch {
    return sendError(req, res, 400, 'bad_key', 'This address does not name a folder that can be shared.');
  }
  if (!grant.prefix || !scope.scope.startsWith(grant.scope)) {
    entry.error = 'out_of_scope';
    return sendError(req, res, 403, 'out_of_scope', 'This link does not open this folder.');
  }
  // The files a link opens (linkablePaths): a listing never shows what a link would refuse.
  const opens = links.linkable(scope.rootId);
  const rows: { rel_path: string; size: number }[] = [];
  const all = core.catalog.db
    .prepare<[string, number, string], { rel_path: string; size: number }>('SELECT rel_path, size FROM files WHERE root_id = ? AND substr(rel_path, 1, ?) = ? ORDER BY rel_path')
    .iterate(scope.rootId, scope.relPath ? scope.relPath.length + 1 : 0, scope.relPath ? `${scope.relPath}/` : '');
  for (const r of all) {
    if (!opens(r.rel_path)) continue;
    rows.push(r);
    if (rows.length > 5000) break;
  }
  const base = scope.relPath ? `${scope.relPath}/` : '';
  const dirs = new Set<string>();
  const files: { name: string; size: number }[] = [];
  for (const r of rows.slice(0, 5000)) {
    const rest = r.rel_path.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) dirs.add(rest.slice(0, slash));
    else files.push({ name: rest, size: r.size });
  }
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const href = (k: string) => `/files/${encodeKeyPath(k)}${q}`;
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const items = [
    ...[...dirs].map((d) => `<li><a href="${esc(href(`${scope.scope}${d}/`))}">${esc(d)}/</a></li>`),
    ...files.map((fl) => `<li><a href="${esc(href(`${scope.scope}${fl.name}`))}">${esc(fl.name)}</a> <small>${fl.size.toLocaleString('en')} bytes</small></li>`),
  ];
  const up = scope.scope !== grant.scope ? `<p><a href="${esc(href(scope.scope.slice(0, scope.scope.slice(0, -1).lastIndexOf('/') + 1)))}">↑ up</a></p>` : '';
  const more = rows.length > 5000 ? '<p>Only the first 5,000 files are listed.</p>' : '';
  const html =
    `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(scope.scope)}</title>` +
    `<body style="font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em"><h1>${esc(scope.scope)}</h1>${up}<ul>${items.join('') || '<li>No files here.</li>'}</ul>${more}</body>`;
  const body = Buffer.from(html);
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'private, no-cache',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  links.recordUse(grant.id, false);
}
