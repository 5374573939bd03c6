// Start the engine inside this process, or connect to one that runs as a system service.
//
// - Service: TRIPLICATE_ENGINE_URL=http://127.0.0.1:8765 and the admin token in the file named by
//   TRIPLICATE_TOKEN_FILE (default: <TRIPLICATE_DATA_DIR>/admin-token). The app never starts a
//   second engine on the same data.
// - Embedded (default): the composition root `createEngine({ dataDir, configFile?, webRoot? })` from
//   ../engine/engine, loaded lazily so the window and tray come up first.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineConnection } from '../../preload/bridge';

export interface HostedEngine {
  connection: EngineConnection;
  stop(): Promise<void>;
}

export class EngineStartError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'EngineStartError';
  }
}

export async function startEmbeddedEngine(opts: { dataDir: string; configFile?: string; webRoot: string; adminPort?: number }): Promise<HostedEngine> {
  // Loaded lazily (its own chunk) so the window and the tray come up first.
  const { createEngine } = await import('../engine/engine');
  const make = (adminPort?: number) => {
    try {
      return createEngine({ dataDir: opts.dataDir, configFile: opts.configFile, webRoot: opts.webRoot, adminPort });
    } catch (e) {
      // A config problem names the file, the field and what to do: show it (a folder refused, say).
      if (e instanceof Error && e.constructor.name === 'ConfigError') throw new EngineStartError(e.message, errText(e));
      throw new EngineStartError('The backup engine could not start: its settings or data could not be read. Send the log file to your IT contact.', errText(e));
    }
  };
  let engine = make(opts.adminPort);
  let started: { adminUrl: string; downloadUrl?: string; token: string };
  try {
    try {
      started = await engine.start();
    } catch (e) {
      // The configured admin port is taken (another program, or a second Triplicate on other data):
      // the window does not need that port, so take any free one rather than not starting at all.
      if (opts.adminPort === undefined && e instanceof Error && /already used/i.test(e.message)) {
        await engine.stop().catch(() => undefined);
        engine = make(0);
        started = await engine.start();
      } else throw e;
    }
  } catch (e) {
    await engine.stop().catch(() => undefined);
    throw new EngineStartError(
      e instanceof Error && e.constructor.name === 'ConfigError'
        ? e.message
        : 'The backup engine could not start. Another copy of Triplicate may be running on the same data; otherwise send the log file to your IT contact.',
      errText(e),
    );
  }
  return {
    connection: { baseUrl: started.adminUrl.replace(/\/$/, ''), token: started.token, downloadUrl: started.downloadUrl, mode: 'embedded' },
    stop: () => engine.stop(),
  };
}

export function serviceSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): { url: string; tokenFile: string } | null {
  const url = env.TRIPLICATE_ENGINE_URL?.trim();
  if (!url) return null;
  const dataDir = env.TRIPLICATE_DATA_DIR?.trim() || defaultServiceDataDir();
  return { url: url.replace(/\/$/, ''), tokenFile: env.TRIPLICATE_TOKEN_FILE?.trim() || join(dataDir, 'admin-token') };
}

/** Where the packaged service keeps its data (see docs/SERVICE.md). */
export function defaultServiceDataDir(platform = process.platform): string {
  if (platform === 'win32') return join(process.env.ProgramData ?? 'C:\\ProgramData', 'Triplicate');
  if (platform === 'darwin') return '/Library/Application Support/Triplicate';
  return '/var/lib/triplicate';
}

export async function connectToService(url: string, tokenFile: string): Promise<HostedEngine> {
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (e) {
    throw new EngineStartError(
      `Triplicate runs as a service but this app cannot read its access key (${tokenFile}). Ask your IT contact to let your account read that file.`,
      errText(e),
    );
  }
  if (!token) throw new EngineStartError(`The service's access key file ${tokenFile} is empty. Restart the Triplicate service.`);
  return { connection: { baseUrl: url, token, mode: 'service' }, stop: async () => undefined };
}

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
