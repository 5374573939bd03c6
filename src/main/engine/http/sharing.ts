// Sharing = signed links + the public download server + the Cloudflare tunnel, wired into an
// engine: the services, the admin API handlers (links, tunnel, who can open links) and the
// console's own download route `/api/admin/download?key=` (same source chain, admin-token auth).
//
// Who can open a link follows from two settings (linkReachOf): the tunnel on means the internet
// (links use its public address, and none is made while it is not up); else the download server
// listening beyond loopback means the local network (links use server.publicBaseUrl, else this
// computer's LAN address); else this computer only (links use 127.0.0.1, and say so).
import { LINK_REACHES, STREAM_ROUTES, type LinkReach, type SetLinkReachRequest, type SharingStatus } from '../../../shared/api';
import { isLoopback, linkReachOf, type RootConfig } from '../../../shared/config';
import type { EngineContext } from '../core/context';
import type { PathFilter } from '../sync/filter';
import { TunnelSupervisor, type TunnelOptions } from '../tunnel/supervisor';
import { errorText } from '../util';
import { DownloadServer, type DownloadDeps, type DownloadServerOptions } from './download/server';
import { Links, type LinkBase } from './links';
import { HttpError, badRequest, type ApiRegistry } from './router';

export interface SharingOptions {
  download?: DownloadServerOptions;
  tunnel?: Omit<TunnelOptions, 'localUrl'>;
}

export interface Sharing {
  links: Links;
  downloads: DownloadServer;
  tunnel: TunnelSupervisor;
}

/** What sharing needs from the rest of the engine (wired by the composition root). */
export interface SharingDeps extends DownloadDeps {
  /** The scanner's include/exclude filter of a root: a link opens only what it takes. */
  filterFor(root: RootConfig): PathFilter;
}

/** Builds the three sharing services and registers their routes; the caller starts them (downloads, then tunnel). */
export function createSharing(ctx: EngineContext, api: ApiRegistry, deps: SharingDeps, opts: SharingOptions = {}): Sharing {
  const links: Links = new Links(ctx, () => linkBase(), (root) => deps.filterFor(root));
  const downloads = new DownloadServer(ctx, links, deps, opts.download);
  const tunnel = new TunnelSupervisor(ctx, {
    ...opts.tunnel,
    localUrl: () => downloads.localUrl(),
  });
  downloads.onRebound = () => void tunnel.refresh();

  /** Where links point now; the reach is that of the listener as it is, not only as configured. */
  function linkBase(): LinkBase {
    const cfg = ctx.config.get();
    const host = downloads.host;
    if (host === undefined) {
      return { reach: linkReachOf(cfg), problem: 'Downloads are off, so a link would not open: the download server could not start. The Activity page says why.' };
    }
    const reach = linkReachOf({ server: { downloadHost: host }, tunnel: cfg.tunnel });
    if (reach === 'internet') {
      const url = tunnel.publicUrl();
      if (url) return { reach, url };
      const st = tunnel.status();
      return {
        reach,
        problem:
          st.state === 'running'
            ? 'The tunnel is connected but has no public address, so a link would not open. Set its public hostname on the Sharing page.'
            : `The tunnel to the internet is not up, so a link would not open. ${st.message ?? 'Turn it on on the Sharing page, or choose there who can open links.'}`,
      };
    }
    if (reach === 'local-network') {
      const url = cfg.server.publicBaseUrl ?? downloads.lanUrl();
      if (url) return { reach, url };
      // This computer has no LAN address now: the link works here only, and says so.
    }
    return { reach: 'this-computer', url: downloads.localUrl() };
  }

  function sharingStatus(): SharingStatus {
    const b = linkBase();
    return { reach: b.reach, listening: downloads.listening(), link_base: b.url, problem: b.problem };
  }

  /** `POST /api/admin/sharing`: listen where the choice needs (at once, no restart), then save it. */
  async function setLinkReach(body: SetLinkReachRequest): Promise<SharingStatus> {
    const reach = body?.reach;
    if (!LINK_REACHES.includes(reach)) throw badRequest('Choose who can open links: this computer only, the local network, or the internet (through the tunnel).', ['reach']);
    const c = ctx.config.get();
    const nextTunnel = reach === 'internet' ? tunnel.settingsFrom({ ...(body.tunnel ?? {}), mode: body.tunnel?.mode ?? (c.tunnel.mode === 'off' ? 'quick' : c.tunnel.mode) }) : { ...c.tunnel, mode: 'off' as const };
    const cur = c.server.downloadHost;
    // The local network: every address (or the LAN address already chosen by hand). Otherwise
    // loopback, where the tunnel reaches the server too.
    const host = reach === 'local-network' ? (isLoopback(cur) ? '0.0.0.0' : cur) : isLoopback(cur) ? cur : '127.0.0.1';
    try {
      await downloads.rebind({ host });
    } catch (e) {
      throw listenRefusal(e, reach, host, downloads.port);
    }
    await ctx.config.apply({ ...c, server: { ...c.server, downloadHost: host }, tunnel: nextTunnel }, { base: c });
    await tunnel.refresh();
    return sharingStatus();
  }

  api.register({
    createLink: ({ body }) => links.create(body),
    listLinks: ({ query }) => links.list(['1', 'true', 'yes'].includes(String(query?.include_expired ?? ''))),
    revokeLink: ({ params }) => links.revoke(params.id),
    rotateLinkSecret: () => links.rotate(),
    tunnelStatus: () => tunnel.status(),
    setTunnel: ({ body }) => tunnel.set(body),
    sharingStatus: () => sharingStatus(),
    setLinkReach: ({ body }) => setLinkReach(body),
  });
  api.registerRaw(STREAM_ROUTES.download, (req, res, url) => downloads.serveAdmin(req, res, url));
  return { links, downloads, tunnel };
}

const REFUSED_AS: Record<LinkReach, string> = {
  'this-computer': 'Links cannot be limited to this computer',
  'local-network': 'Links cannot be opened on the local network',
  internet: 'Links cannot go through the tunnel',
};

/** The download server could not listen where a choice needs it: 409 with a sentence; nothing changed. */
function listenRefusal(e: unknown, reach: LinkReach, host: string, current: number): HttpError {
  const err = e as NodeJS.ErrnoException & { port?: number };
  const port = err.port || current;
  const head = REFUSED_AS[reach];
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${port} is already used by another program on this computer. Close that program, or choose another download port (server.downloadPort in config.json; 0 picks a free one)`
      : err.code === 'EADDRNOTAVAIL'
        ? `this computer has no address ${host}. Set server.downloadHost in config.json to 0.0.0.0 (every network) or to one of this computer's addresses`
        : err.code === 'EACCES'
          ? `Triplicate may not use port ${port}. Choose a port above 1024 (server.downloadPort in config.json)`
          : `the download server could not listen there (${errorText(e)})`;
  return new HttpError(409, 'listen_refused', `${head}: ${why}. Nothing was changed; links work as before.`, errorText(e));
}
