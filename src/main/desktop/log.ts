// electron-log to a rotating file: main.log, then main.1.log ... main.4.log (5 MB each).
import { existsSync, renameSync, rmSync } from 'node:fs';
import log from 'electron-log/main';

const KEEP = 4;

export function setupLogging(): typeof log {
  log.initialize();
  log.transports.file.maxSize = 5 * 1024 * 1024;
  log.transports.file.format = '{iso} [{level}] {scope} {text}';
  log.transports.file.archiveLogFn = (oldLog) => {
    const file = oldLog.toString();
    const base = file.replace(/\.log$/, '');
    try {
      rmSync(`${base}.${KEEP}.log`, { force: true });
      for (let i = KEEP - 1; i >= 1; i--) {
        if (existsSync(`${base}.${i}.log`)) renameSync(`${base}.${i}.log`, `${base}.${i + 1}.log`);
      }
      renameSync(file, `${base}.1.log`);
    } catch (e) {
      console.error('could not rotate the log', e);
    }
  };
  log.transports.console.level = process.env.NODE_ENV === 'development' ? 'debug' : 'info';
  log.errorHandler.startCatching({ showDialog: false });
  return log;
}

export function logFilePath(): string {
  return log.transports.file.getFile().path;
}

export { log };
