// `triplicate link create <key> --ttl 1d | list | revoke <id>`: talks to the running engine through
// the admin API (the data dir's engine.json + admin-token, like `triplicate status`).
// JSON lines on stdout; sentences for people on stderr.
import { parseArgs } from 'node:util';
import { LINK_REACH_WORDS, type LinkInfo } from '../../../shared/api';
import { parseTtl } from '../../../shared/format';
import { KeyError, keyWithLabel, resolveKeyForm } from '../../../shared/keys';
import { requireEngine, type Command } from '../cli-data-dir';

export const LINK_USAGE = `Usage:
  triplicate link create <key> --ttl 1d [--download] [--note TEXT]   a signed link to a file (or a folder: key ending in "/")
  triplicate link list [--all]                                         links that still work (--all: expired ones too)
  triplicate link revoke <id>                                          turn a link off
Options: --data-dir DIR (default $TRIPLICATE_DATA_DIR or ~/.triplicate), --url URL and --token TOKEN of the admin API.
A key is <folder name or id>/<path>, for example "Collection photos/Gallery 2/Colour chart.jpg" or
"media/Gallery 2/Colour chart.jpg". --ttl takes 30m, 12h, 1d, 2w or seconds.
`;

const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const say = (text: string) => process.stderr.write(`${text}\n`);

type Roots = { id: string; label: string }[];

/** The key as the operator sees it, with the id form beside it when they differ. */
function shownKey(key: string, roots: Roots): string {
  const named = keyWithLabel(key, roots);
  return named === key ? key : `${named} (${key})`;
}

/** Who can open the link, in words, or why it cannot be opened now. */
function whoCanOpen(l: LinkInfo): string {
  return l.url ? LINK_REACH_WORDS[l.reach] : (l.unavailable ?? 'It cannot be opened now.');
}

function describe(l: LinkInfo, roots: Roots, now = Date.now()): string {
  const state = l.revoked_at ? 'turned off' : l.expires_at <= now ? 'expired' : `works until ${new Date(l.expires_at).toLocaleString()}`;
  return `${l.id}  ${shownKey(l.key, roots)}  ${whoCanOpen(l)}; ${state}; ${l.downloads ?? 0} download${l.downloads === 1 ? '' : 's'}`;
}

export const linkCommand: Command = {
  name: 'link',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    const common = { 'data-dir': { type: 'string' }, url: { type: 'string' }, token: { type: 'string' } } as const;
    switch (sub) {
      case 'create': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: { ...common, ttl: { type: 'string' }, download: { type: 'boolean' }, note: { type: 'string' } },
          allowPositionals: true,
          strict: true,
        });
        const key = positionals.join(' ');
        if (!key || !values.ttl) {
          say(`Give the file (its folder's name or id, then its path) and how long the link should work, for example: triplicate link create "Collection photos/Entrance hall.jpg" --ttl 1d\n\n${LINK_USAGE}`);
          return 1;
        }
        let ttl: number;
        try {
          ttl = parseTtl(values.ttl);
        } catch (e) {
          say(`triplicate: ${(e as Error).message}`);
          return 1;
        }
        const api = await requireEngine(values);
        const roots = await api.call('listRoots');
        let idKey: string;
        try {
          idKey = resolveKeyForm(key, roots);
        } catch (e) {
          if (!(e instanceof KeyError)) throw e;
          say(`triplicate: ${e.message}`);
          return 1;
        }
        const link = await api.call('createLink', { body: { key: idKey, ttl_seconds: ttl, disposition: values.download ? 'attachment' : undefined, note: values.note } });
        out(link);
        say(`Link to ${shownKey(link.key, roots)}, works until ${new Date(link.expires_at).toLocaleString()}. Who can open it: ${whoCanOpen(link)}.\n${link.url}`);
        return 0;
      }
      case 'list': {
        const { values } = parseArgs({ args: rest, options: { ...common, all: { type: 'boolean' } }, strict: true });
        const api = await requireEngine(values);
        const links = await api.call('listLinks', { query: { include_expired: values.all ? true : undefined } });
        const roots = links.length ? await api.call('listRoots') : [];
        for (const l of links) out(l);
        say(links.length ? links.map((l) => describe(l, roots)).join('\n') : 'There are no links that still work.');
        return 0;
      }
      case 'revoke': {
        const { values, positionals } = parseArgs({ args: rest, options: common, allowPositionals: true, strict: true });
        const id = positionals[0];
        if (!id) {
          say(`Give the id of the link to turn off (see: triplicate link list).\n\n${LINK_USAGE}`);
          return 1;
        }
        const api = await requireEngine(values);
        const link = await api.call('revokeLink', { params: { id } });
        out(link);
        say(`The link ${link.id} to ${link.key} is turned off; it no longer opens anything.`);
        return 0;
      }
      default:
        say(sub ? `Unknown link command "${sub}".\n\n${LINK_USAGE}` : LINK_USAGE);
        return 1;
    }
  },
};
