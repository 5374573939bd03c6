// Start the engine in its own process, or connect to one that runs as a system service. Either
// way the app then talks to it as the browser console does: its admin URL and its token file.
//
// - Service: TRIPLICATE_ENGINE_URL=http://127.0.0.1:8765 and the admin token in the file named by
//   TRIPLICATE_TOKEN_FILE (default: <TRIPLICATE_DATA_DIR>/admin-token). The app never starts a
//   second engine on the same data.
// - App (default): out/engine/triplicate.mjs in a utilityProcess (./engine-process.ts), supervised
//   by ./logic/supervisor.ts (restarts with backoff, stops on quit).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineConnection } from '../../preload/bridge';
import { engineLauncher, type EngineProcessOptions } from './engine-process';
import { EngineStartError, EngineSupervisor, type EngineState } from './logic/supervisor';

export { EngineStartError };

export interface HostedEngine {
  connection: EngineConnection;
}

/** How long the engine has to stop on quit before it is ended. */
export const STOP_TIMEOUT_MS = 30_000;

/**
 * The engine process and its supervisor. `supervisor` exists at once, so that a quit during the
 * start stops the process too; `start()` resolves when the engine is ready.
 */
export function engineProcessHost(opts: EngineProcessOptions & { adminPort?: number; onState: (s: EngineState) => void; devHint?: boolean }): {
  supervisor: EngineSupervisor;
  start(): Promise<HostedEngine>;
} {
  const supervisor = new EngineSupervisor({ launch: engineLauncher(opts), adminPort: opts.adminPort, onState: opts.onState });
  const start = async (): Promise<HostedEngine> => {
    if (!existsSync(opts.modulePath)) {
      throw new EngineStartError(
        opts.devHint
          ? `The compiled engine ${opts.modulePath} is missing. Run "npm run build:engine" and start again.`
          : 'The backup engine is missing from this installation. Install Triplicate again.',
        opts.modulePath,
      );
    }
    const ready = await supervisor.start();
    const token = await readToken(ready.tokenFile, 'engine');
    return { connection: { baseUrl: ready.adminUrl, token, downloadUrl: ready.downloadUrl ?? undefined, mode: 'embedded' } };
  };
  return { supervisor, start };
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
  const token = await readToken(tokenFile, 'service');
  return { connection: { baseUrl: url, token, mode: 'service' } };
}

async function readToken(tokenFile: string, who: 'engine' | 'service'): Promise<string> {
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (e) {
    throw new EngineStartError(
      who === 'service'
        ? `Triplicate runs as a service but this app cannot read its access key (${tokenFile}). Ask your IT contact to let your account read that file.`
        : `The backup engine started but its access key (${tokenFile}) cannot be read. Check that the data folder belongs to you, then start Triplicate again.`,
      errText(e),
    );
  }
  if (!token) throw new EngineStartError(`The access key file ${tokenFile} is empty. ${who === 'service' ? 'Restart the Triplicate service.' : 'Start Triplicate again.'}`);
  return token;
}

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
