// Numbered migrations, applied in order inside one transaction; the version lives in `user_version`.
// Append only: never edit a migration that has shipped. Each one has a test in test/catalog/migrations.test.ts.
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  up(db: Database.Database): void;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'catalog, copies, job queue, events, target state, links, media, versions',
    up(db) {
      db.exec(`
        CREATE TABLE files (
          id INTEGER PRIMARY KEY,
          root_id TEXT NOT NULL,
          rel_path TEXT NOT NULL,
          -- the name on disk when it differs from rel_path (an NFD name: rel_path is always NFC)
          disk_rel TEXT,
          size INTEGER NOT NULL,
          mtime_ms INTEGER NOT NULL,
          sha256 TEXT,
          kind TEXT NOT NULL CHECK (kind IN ('image','video','other')),
          local_state TEXT NOT NULL DEFAULT 'present' CHECK (local_state IN ('present','missing')),
          derived_from INTEGER REFERENCES files(id) ON DELETE SET NULL,
          first_seen INTEGER NOT NULL,
          last_seen INTEGER NOT NULL,
          UNIQUE (root_id, rel_path)
        );
        CREATE INDEX files_local_state ON files(local_state);
        CREATE INDEX files_sha ON files(sha256);

        CREATE TABLE copies (
          file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
          target_id TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('pending','uploading','synced','failed','skipped')),
          sha256 TEXT,
          size INTEGER,
          attempts INTEGER NOT NULL DEFAULT 0,
          last_error TEXT,
          error_detail TEXT,
          next_attempt_at INTEGER,
          synced_at INTEGER,
          verified_at INTEGER,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (file_id, target_id)
        ) WITHOUT ROWID;
        CREATE INDEX copies_target_state ON copies(target_id, state, size);
        CREATE INDEX copies_state ON copies(state);

        -- The durable work queue. A lane is what one pool of workers claims from:
        -- 'upload:<target id>', 'transcode', 'restore', 'verify:<target id>'.
        -- Done jobs are deleted; history lives in events.
        CREATE TABLE jobs (
          id INTEGER PRIMARY KEY,
          lane TEXT NOT NULL,
          kind TEXT NOT NULL,
          file_id INTEGER NOT NULL DEFAULT 0,
          state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','running')),
          priority INTEGER NOT NULL DEFAULT 0,
          run_after INTEGER NOT NULL DEFAULT 0,
          attempts INTEGER NOT NULL DEFAULT 0,
          rerun INTEGER NOT NULL DEFAULT 0,
          lease_owner TEXT,
          lease_until INTEGER,
          fence INTEGER NOT NULL DEFAULT 0,
          payload TEXT,
          last_error TEXT,
          created_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX jobs_one_per_file ON jobs(lane, kind, file_id);
        CREATE INDEX jobs_claim ON jobs(lane, state, priority DESC, run_after, id);
        CREATE INDEX jobs_lease ON jobs(state, lease_until);

        CREATE TABLE events (
          id INTEGER PRIMARY KEY,
          ts INTEGER NOT NULL,
          level TEXT NOT NULL,
          kind TEXT NOT NULL,
          message TEXT NOT NULL,
          file_key TEXT,
          target_id TEXT,
          detail TEXT
        );
        CREATE INDEX events_ts ON events(ts);

        CREATE TABLE target_state (
          target_id TEXT PRIMARY KEY,
          paused INTEGER NOT NULL DEFAULT 0,
          offline_since INTEGER,
          failures INTEGER NOT NULL DEFAULT 0,
          next_try_at INTEGER,
          reason TEXT,
          detail TEXT,
          updated_at INTEGER NOT NULL
        );

        CREATE TABLE kv (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );

        CREATE TABLE links (
          id TEXT PRIMARY KEY,
          scope TEXT NOT NULL,
          is_prefix INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL,
          expires_at INTEGER NOT NULL,
          revoked_at INTEGER,
          note TEXT,
          downloads INTEGER NOT NULL DEFAULT 0,
          last_used_at INTEGER
        );

        CREATE TABLE media (
          file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
          duration_s REAL,
          width INTEGER,
          height INTEGER,
          video_codec TEXT,
          audio_codec TEXT,
          captured_at INTEGER,
          transcode_state TEXT NOT NULL DEFAULT 'none',
          transcode_reason TEXT,
          mp4_file_id INTEGER,
          poster_file_id INTEGER,
          updated_at INTEGER NOT NULL
        );

        CREATE TABLE versions (
          id INTEGER PRIMARY KEY,
          target_id TEXT NOT NULL,
          root_id TEXT NOT NULL,
          rel_path TEXT NOT NULL,
          object_key TEXT NOT NULL,
          sha256 TEXT NOT NULL,
          size INTEGER NOT NULL,
          mtime_ms INTEGER,
          saved_at INTEGER NOT NULL,
          reason TEXT NOT NULL CHECK (reason IN ('overwritten','deleted')),
          UNIQUE (target_id, object_key)
        );
        CREATE INDEX versions_file ON versions(root_id, rel_path, saved_at);
      `);
    },
  },
];

export const LATEST_VERSION = migrations[migrations.length - 1]!.version;
