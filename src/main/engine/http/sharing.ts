// Sharing = signed links + the public download server + the Cloudflare tunnel, wired into an
// engine: the services, the admin API handlers (links, tunnel) and the console's own download
// route `/api/admin/download?key=` (same source chain, admin-token auth).
import { STREAM_ROUTES } from '../../../shared/api';
import type { Engine } from '../engine';
import { TunnelSupervisor, type TunnelOptions } from '../tunnel/supervisor';
import { DownloadServer, type DownloadServerOptions } from './download';
import { Links } from './links';

export interface SharingOptions {
  download?: DownloadServerOptions;
  tunnel?: Omit<TunnelOptions, 'localUrl'>;
}

export interface Sharing {
  links: Links;
  downloads: DownloadServer;
  tunnel: TunnelSupervisor;
}

export function installSharing(engine: Engine, opts: SharingOptions = {}): Sharing {
  // Links point at the tunnel while it is up, else server.publicBaseUrl, else the LAN address.
  const links: Links = new Links(engine, () => tunnel.publicUrl() ?? engine.cfg.server.publicBaseUrl ?? downloads.lanUrl());
  const downloads = new DownloadServer(links, opts.download);
  const tunnel = new TunnelSupervisor({
    ...opts.tunnel,
    localUrl: () => downloads.localUrl(),
  });
  engine.use(downloads).use(tunnel);
  engine.admin.register({
    createLink: ({ body }) => links.create(body),
    listLinks: ({ query }) => links.list(['1', 'true', 'yes'].includes(String(query?.include_expired ?? ''))),
    revokeLink: ({ params }) => links.revoke(params.id),
    rotateLinkSecret: () => links.rotate(),
    tunnelStatus: () => tunnel.status(),
    setTunnel: ({ body }) => tunnel.set(body),
  });
  engine.admin.registerRaw(STREAM_ROUTES.download, (req, res, url) => downloads.serveAdmin(req, res, url));
  return { links, downloads, tunnel };
}
