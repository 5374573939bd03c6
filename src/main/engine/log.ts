// Engine logging: electron-log's Node entry (no Electron needed), a rotating file in the data dir.
// Secrets are never passed to the logger; config objects are logged only through redactConfig().
import logger from 'electron-log/node';
import { join } from 'node:path';
import { PRIVATE_FILE_MODE } from './private-files';

export const log = logger.scope('engine');

let configured = false;

export function configureLogging(dataDir: string, opts: { console?: boolean; level?: 'error' | 'warn' | 'info' | 'debug' } = {}): void {
  logger.transports.file.resolvePathFn = () => join(dataDir, 'logs', 'engine.log');
  logger.transports.file.maxSize = 5 * 1024 * 1024; // rotates to engine.old.log
  logger.transports.file.writeOptions = { ...logger.transports.file.writeOptions, mode: PRIVATE_FILE_MODE };
  logger.transports.file.level = opts.level ?? 'info';
  logger.transports.console.level = opts.console === false ? false : (opts.level ?? 'warn');
  configured = true;
}

export function logFilePath(): string | undefined {
  return configured ? logger.transports.file.getFile().path : undefined;
}

/** Tests and the CLI's JSON output keep the console quiet. */
export function silenceConsole(): void {
  logger.transports.console.level = false;
}
