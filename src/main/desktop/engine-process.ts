// The engine in its own process: the compiled engine (out/engine/triplicate.mjs, what `triplicate
// serve` runs) in an Electron utilityProcess, so an engine crash is not an app crash.
// In the packaged app the file is inside app.asar: the utility process reads it and the engine's
// dependencies (app.asar/node_modules) through Electron's asar support, and loads the native
// better-sqlite3 and sharp from app.asar.unpacked (electron-builder.yml: asarUnpack), rebuilt for
// Electron's ABI by electron-builder (npmRebuild).
import { utilityProcess } from 'electron';
import { ENGINE_NODE_FLAGS } from '../../shared/engine-flags';
import { engineArgs, runEngineChild, type EngineChildOptions } from './engine-child';
import type { LaunchEngine } from './logic/supervisor';
import { log } from './log';

export interface EngineProcessOptions extends Omit<EngineChildOptions, 'log'> {
  /** out/engine/triplicate.mjs of this app. */
  modulePath: string;
}

export function engineLauncher(o: EngineProcessOptions): LaunchEngine {
  return ({ adminPort }, events) => {
    const args = engineArgs(o, adminPort);
    log.info(`starting the engine: ${args.filter((a) => a !== o.dataDir).join(' ')}`);
    const p = utilityProcess.fork(o.modulePath, args, { stdio: 'pipe', serviceName: 'Triplicate engine', execArgv: [...ENGINE_NODE_FLAGS] });
    return runEngineChild(
      {
        get pid() {
          return p.pid;
        },
        stdout: p.stdout,
        stderr: p.stderr,
        postMessage: (m) => p.postMessage(m),
        // Only after a stop request went unanswered: the engine is stuck, end it outright (POSIX:
        // SIGKILL, as utilityProcess.kill's SIGTERM would be one more polite request; Windows:
        // utilityProcess.kill terminates). Uploads cut short resume at the next start.
        kill: () => {
          const pid = p.pid;
          if (pid !== undefined && process.platform !== 'win32') {
            try {
              process.kill(pid, 'SIGKILL');
              return;
            } catch {}
          }
          p.kill();
        },
        onSpawn: (fn) => p.once('spawn', fn),
        onMessage: (fn) => p.on('message', fn),
        onExit: (fn) => p.once('exit', fn),
      },
      { ...o, log },
      events,
    );
  };
}
