// What every service receives: the engine's shared state, and nothing else. Anything more a
// service needs from another (a callback, a query) is handed to it by the composition root
// (engine.ts) as a function or a small interface, never the whole engine.
import type { Catalog } from '../catalog/catalog';
import type { OwnData } from '../config/folders';
import type { EventBus } from '../events';
import type { ConfigStore } from './config-store';
import type { TargetRegistry } from './targets';

export interface EngineContext {
  /** The data folder (catalog, logs, token, thumbnails). */
  readonly dataDir: string;
  /** Triplicate's own files (data folder, config file): never backed up, never served. */
  readonly ownData: OwnData;
  readonly catalog: Catalog;
  readonly bus: EventBus;
  /** The config in use: get(), apply(), hand edits. */
  readonly config: ConfigStore;
  /** The destinations and their backends. */
  readonly targets: TargetRegistry;
}

/** Something with a lifecycle that the composition root starts and stops in order. */
export interface EngineService {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}
