// Opening the catalog: WAL, foreign keys, numbered migrations in one transaction,
// and a refusal to touch a database written by a newer Triplicate.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { privateFile } from '../private-files';
import { migrations as allMigrations, type Migration } from './migrations';

export type DB = Database.Database;

export class CatalogVersionError extends Error {
  constructor(found: number, known: number) {
    super(
      `The catalog was written by a newer version of Triplicate (schema ${found}; this version knows up to ${known}). ` +
        'Install the newer Triplicate again, or move the data folder aside to start a fresh catalog (your files and backups are not affected).',
    );
    this.name = 'CatalogVersionError';
  }
}

export function openCatalog(path: string, opts: { migrations?: Migration[]; readonly?: boolean } = {}): DB {
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    // it holds the link signing key: private from its first byte (its WAL and SHM take its mode)
    if (!opts.readonly) privateFile(path);
  }
  const db = new Database(path, { readonly: opts.readonly ?? false });
  try {
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      // NORMAL is durable across application crashes in WAL mode; a power cut may lose the last
      // transactions, which a rescan recovers (the catalog is an index, the files are the truth).
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -16000');
    if (!opts.readonly) migrate(db, opts.migrations ?? allMigrations);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export function schemaVersion(db: DB): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Apply every migration above the current version, all in one transaction. */
export function migrate(db: DB, list: Migration[] = allMigrations): number {
  const known = list.length ? list[list.length - 1]!.version : 0;
  const current = schemaVersion(db);
  if (current > known) throw new CatalogVersionError(current, known);
  const todo = list.filter((m) => m.version > current);
  if (todo.length === 0) return current;
  db.transaction(() => {
    for (const m of todo) {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }
  })();
  return known;
}
