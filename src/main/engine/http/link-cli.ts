// `triplicate link create <key> --ttl 1d | list | revoke <id>`: talks to the running engine through
// the admin API (the data dir's engine.json + admin-token, like `triplicate status`).
// JSON lines on stdout; sentences for people on stderr.
import { parseArgs } from 'node:util';
import type { LinkInfo } from '../../../shared/api';
import { requireEngine, type Command } from '../cli-data-dir';
import { parseTtl } from '../../../shared/format';

export const LINK_USAGE = `Usage:
  triplicate link create <key> --ttl 1d [--download] [--note TEXT]   a signed link to a file (or a folder: key ending in "/")
  triplicate link list [--all]                                         links that still work (--all: expired ones too)
  triplicate link revoke <id>                                          turn a link off
Options: --data-dir DIR (default $TRIPLICATE_DATA_DIR or ~/.triplicate), --url URL and --token TOKEN of the admin API.
A key is <folder id>/<path>, for example media/Gallery 2/Colour chart.jpg. --ttl takes 30m, 12h, 1d, 2w or seconds.
`;

const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const say = (text: string) => process.stderr.write(`${text}\n`);

function describe(l: LinkInfo, now = Date.now()): string {
  const state = l.revoked_at ? 'turned off' : l.expires_at <= now ? 'expired' : `works until ${new Date(l.expires_at).toLocaleString()}`;
  return `${l.id}  ${l.key}  (${state}; ${l.downloads ?? 0} download${l.downloads === 1 ? '' : 's'})`;
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
          say(`Give the file key and how long the link should work, for example: triplicate link create "media/Entrance hall.jpg" --ttl 1d\n\n${LINK_USAGE}`);
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
        const link = await api.call('createLink', { body: { key, ttl_seconds: ttl, disposition: values.download ? 'attachment' : undefined, note: values.note } });
        out(link);
        say(`Link to ${link.key}, works until ${new Date(link.expires_at).toLocaleString()}:\n${link.url}`);
        return 0;
      }
      case 'list': {
        const { values } = parseArgs({ args: rest, options: { ...common, all: { type: 'boolean' } }, strict: true });
        const api = await requireEngine(values);
        const links = await api.call('listLinks', { query: { include_expired: values.all ? true : undefined } });
        for (const l of links) out(l);
        say(links.length ? links.map((l) => describe(l)).join('\n') : 'There are no links that still work.');
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
