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
  {
    version: 2,
    name: 'restore runs, deletion history in versions, read-verification time of copies',
    up(db) {
      db.exec(`
        -- One row per restore request; its files are jobs in lane 'restore' whose kind is the run id.
        -- Counters are updated in the same transaction that completes a job, so they survive a crash.
        CREATE TABLE restores (
          id TEXT PRIMARY KEY,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          finished_at INTEGER,
          state TEXT NOT NULL CHECK (state IN ('planning','running','done','cancelled','failed')),
          request TEXT NOT NULL,
          files_total INTEGER NOT NULL DEFAULT 0,
          files_done INTEGER NOT NULL DEFAULT 0,
          files_failed INTEGER NOT NULL DEFAULT 0,
          files_skipped INTEGER NOT NULL DEFAULT 0,
          bytes_total INTEGER NOT NULL DEFAULT 0,
          bytes_done INTEGER NOT NULL DEFAULT 0,
          message TEXT
        );
        CREATE INDEX restores_created ON restores(created_at);

        -- A 'deleted' row marks when a local file went missing; its content is still the file's
        -- current object on that target (deletes never cascade). gone_until: when the file came back.
        ALTER TABLE versions ADD COLUMN gone_until INTEGER;
        -- the content the file came back with (differs from sha256 when a new file took its name)
        ALTER TABLE versions ADD COLUMN back_sha256 TEXT;
        CREATE INDEX versions_target_file ON versions(target_id, root_id, rel_path, saved_at);

        -- Last time the copy's bytes were downloaded and re-hashed (verified_at: last HEAD check).
        ALTER TABLE copies ADD COLUMN read_at INTEGER;
        CREATE INDEX copies_read ON copies(target_id, state, read_at);

        -- Deletion history, whatever code path marks a file missing (scanner, watcher, uploader):
        -- one 'deleted' row per target that holds a copy. object_key is a unique placeholder.
        CREATE TRIGGER files_went_missing AFTER UPDATE OF local_state ON files
        WHEN old.local_state = 'present' AND new.local_state = 'missing'
        BEGIN
          INSERT OR IGNORE INTO versions (target_id, root_id, rel_path, object_key, sha256, size, mtime_ms, saved_at, reason)
          SELECT c.target_id, new.root_id, new.rel_path, '#deleted/' || new.last_seen || '/' || new.root_id || '/' || new.rel_path,
                 c.sha256, coalesce(c.size, new.size), new.mtime_ms, new.last_seen, 'deleted'
          FROM copies c WHERE c.file_id = new.id AND c.sha256 IS NOT NULL AND c.synced_at IS NOT NULL;
        END;
        CREATE TRIGGER files_came_back AFTER UPDATE OF local_state ON files
        WHEN old.local_state = 'missing' AND new.local_state = 'present'
        BEGIN
          UPDATE versions SET gone_until = new.last_seen, back_sha256 = new.sha256
          WHERE root_id = new.root_id AND rel_path = new.rel_path AND reason = 'deleted' AND gone_until IS NULL;
        END;
      `);
    },
  },
  {
    version: 3,
    name: 'job queue: partial indexes (queued jobs for claiming, running jobs for leases)',
    up(db) {
      db.exec(`
        -- A claim only looks at queued jobs and the lease reaper only at running ones: index each
        -- state alone. A job then sits in one of the two (not both, with a changing state key), so
        -- enqueue, claim and complete each touch fewer index entries (bench/queue.mjs).
        DROP INDEX jobs_claim;
        DROP INDEX jobs_lease;
        CREATE INDEX jobs_claim ON jobs(lane, priority DESC, run_after, id) WHERE state = 'queued';
        CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'running';
      `);
    },
  },
  {
    version: 4,
    name: 'status totals kept by triggers (copies per target and state, files), synced-copies index',
    up(db) {
      db.exec(`
        -- The overview's counts, kept up to date by triggers instead of counted on every status
        -- request (200,000 copies took tens of milliseconds to count). No "OR IGNORE" in the
        -- triggers: an upsert on copies would override it (conflict handling of the outer statement).
        CREATE TABLE copy_totals (
          target_id TEXT NOT NULL,
          state TEXT NOT NULL,
          n INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          PRIMARY KEY (target_id, state)
        ) WITHOUT ROWID;
        INSERT INTO copy_totals (target_id, state, n, bytes)
          SELECT target_id, state, count(*), coalesce(sum(size), 0) FROM copies GROUP BY target_id, state;
        CREATE TRIGGER copies_totals_insert AFTER INSERT ON copies
        BEGIN
          INSERT INTO copy_totals (target_id, state, n, bytes) SELECT new.target_id, new.state, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM copy_totals WHERE target_id = new.target_id AND state = new.state);
          UPDATE copy_totals SET n = n + 1, bytes = bytes + coalesce(new.size, 0) WHERE target_id = new.target_id AND state = new.state;
        END;
        CREATE TRIGGER copies_totals_delete AFTER DELETE ON copies
        BEGIN
          UPDATE copy_totals SET n = n - 1, bytes = bytes - coalesce(old.size, 0) WHERE target_id = old.target_id AND state = old.state;
        END;
        CREATE TRIGGER copies_totals_update AFTER UPDATE OF target_id, state, size ON copies
        WHEN old.target_id IS NOT new.target_id OR old.state IS NOT new.state OR old.size IS NOT new.size
        BEGIN
          UPDATE copy_totals SET n = n - 1, bytes = bytes - coalesce(old.size, 0) WHERE target_id = old.target_id AND state = old.state;
          INSERT INTO copy_totals (target_id, state, n, bytes) SELECT new.target_id, new.state, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM copy_totals WHERE target_id = new.target_id AND state = new.state);
          UPDATE copy_totals SET n = n + 1, bytes = bytes + coalesce(new.size, 0) WHERE target_id = new.target_id AND state = new.state;
        END;

        CREATE TABLE file_totals (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          n INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          missing INTEGER NOT NULL
        );
        INSERT INTO file_totals (id, n, bytes, missing)
          SELECT 1, count(*), coalesce(sum(size), 0), coalesce(sum(local_state = 'missing'), 0) FROM files;
        CREATE TRIGGER files_totals_insert AFTER INSERT ON files
        BEGIN
          UPDATE file_totals SET n = n + 1, bytes = bytes + new.size, missing = missing + (new.local_state = 'missing') WHERE id = 1;
        END;
        CREATE TRIGGER files_totals_delete AFTER DELETE ON files
        BEGIN
          UPDATE file_totals SET n = n - 1, bytes = bytes - old.size, missing = missing - (old.local_state = 'missing') WHERE id = 1;
        END;
        CREATE TRIGGER files_totals_update AFTER UPDATE OF size, local_state ON files
        WHEN old.size IS NOT new.size OR old.local_state IS NOT new.local_state
        BEGIN
          UPDATE file_totals SET bytes = bytes - old.size + new.size,
            missing = missing - (old.local_state = 'missing') + (new.local_state = 'missing') WHERE id = 1;
        END;

        -- "Safe in every place" counts files whose copies are synced on every destination: read in
        -- file order from this index, no sort (and only the synced copies are in it).
        CREATE INDEX copies_synced ON copies(file_id, size) WHERE state = 'synced';
      `);
    },
  },
  {
    version: 5,
    name: 'files grouped by the states of their copies (the status counts files), kept by triggers',
    up(db) {
      // The status counts files (a file is synced when every enabled destination has it), for any
      // set of enabled destinations, without reading every copy: each file carries the list of its
      // copies' states (copy_sig, "<destination id>:<state>" by destination id), and file_states
      // counts the files per (copy_sig, local_state): a few dozen rows that the status reads.
      db.exec(`
        ALTER TABLE files ADD COLUMN copy_sig TEXT NOT NULL DEFAULT '';
        UPDATE files SET copy_sig = coalesce((SELECT group_concat(c.target_id || ':' || c.state, ' ' ORDER BY c.target_id) FROM copies c WHERE c.file_id = files.id), '');
        CREATE TABLE file_states (
          copy_sig TEXT NOT NULL,
          local_state TEXT NOT NULL,
          n INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          PRIMARY KEY (copy_sig, local_state)
        ) WITHOUT ROWID;
        INSERT INTO file_states (copy_sig, local_state, n, bytes)
          SELECT copy_sig, local_state, count(*), coalesce(sum(size), 0) FROM files GROUP BY copy_sig, local_state;

        CREATE TRIGGER copies_sig_insert AFTER INSERT ON copies
        BEGIN
          UPDATE files SET copy_sig = (SELECT group_concat(c.target_id || ':' || c.state, ' ' ORDER BY c.target_id) FROM copies c WHERE c.file_id = new.file_id)
          WHERE id = new.file_id;
        END;
        CREATE TRIGGER copies_sig_delete AFTER DELETE ON copies
        BEGIN
          UPDATE files SET copy_sig = coalesce((SELECT group_concat(c.target_id || ':' || c.state, ' ' ORDER BY c.target_id) FROM copies c WHERE c.file_id = old.file_id), '')
          WHERE id = old.file_id;
        END;
        CREATE TRIGGER copies_sig_update AFTER UPDATE OF file_id, target_id, state ON copies
        WHEN old.file_id IS NOT new.file_id OR old.target_id IS NOT new.target_id OR old.state IS NOT new.state
        BEGIN
          UPDATE files SET copy_sig = coalesce((SELECT group_concat(c.target_id || ':' || c.state, ' ' ORDER BY c.target_id) FROM copies c WHERE c.file_id = files.id), '')
          WHERE id IN (old.file_id, new.file_id);
        END;

        -- No "OR IGNORE" / upsert here either (see migration 4): insert the row, then count.
        CREATE TRIGGER files_states_insert AFTER INSERT ON files
        BEGIN
          INSERT INTO file_states (copy_sig, local_state, n, bytes) SELECT new.copy_sig, new.local_state, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM file_states WHERE copy_sig = new.copy_sig AND local_state = new.local_state);
          UPDATE file_states SET n = n + 1, bytes = bytes + new.size WHERE copy_sig = new.copy_sig AND local_state = new.local_state;
        END;
        CREATE TRIGGER files_states_delete AFTER DELETE ON files
        BEGIN
          UPDATE file_states SET n = n - 1, bytes = bytes - old.size WHERE copy_sig = old.copy_sig AND local_state = old.local_state;
        END;
        CREATE TRIGGER files_states_update AFTER UPDATE OF copy_sig, local_state, size ON files
        WHEN old.copy_sig IS NOT new.copy_sig OR old.local_state IS NOT new.local_state OR old.size IS NOT new.size
        BEGIN
          UPDATE file_states SET n = n - 1, bytes = bytes - old.size WHERE copy_sig = old.copy_sig AND local_state = old.local_state;
          INSERT INTO file_states (copy_sig, local_state, n, bytes) SELECT new.copy_sig, new.local_state, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM file_states WHERE copy_sig = new.copy_sig AND local_state = new.local_state);
          UPDATE file_states SET n = n + 1, bytes = bytes + new.size WHERE copy_sig = new.copy_sig AND local_state = new.local_state;
        END;
      `);
    },
  },
  {
    version: 6,
    name: 'the burst guard: holds, the files they hold back, files whose last content did not look like their name',
    up(db) {
      // A hold (sync/guard.ts) stops a folder's changed, deleted and suspicious new files from going
      // to the destinations until the operator accepts them or puts everything back as it was at
      // `since` (the last moment before the burst). It survives restarts: it is only ended by hand.
      // file_looks has a row only for a file whose current content did not look like its name (a
      // rare file: a .jpg that is not a JPEG, an encrypted archive), so a change is judged against
      // what the previous content looked like.
      db.exec(`
        CREATE TABLE guard_holds (
          id INTEGER PRIMARY KEY,
          root_id TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('held','accepted','rolled-back')),
          tripped_at INTEGER NOT NULL,
          since INTEGER NOT NULL,
          counts TEXT NOT NULL,
          resolved_at INTEGER
        );
        CREATE INDEX guard_holds_state ON guard_holds(state);
        CREATE TABLE guard_held (
          file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
          hold_id INTEGER NOT NULL REFERENCES guard_holds(id),
          change TEXT NOT NULL CHECK (change IN ('changed','new','gone'))
        );
        CREATE INDEX guard_held_hold ON guard_held(hold_id);
        CREATE TABLE file_looks (
          file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
          looks TEXT NOT NULL CHECK (looks IN ('mismatch','noise'))
        );
      `);
    },
  },
  {
    version: 7,
    name: 'Object Lock: until when each copy and each kept version cannot be deleted',
    up(db) {
      // The retain-until date Triplicate asked for when it wrote the object (`immutableDays`), or
      // the one a HEAD reported. Prune leaves an object alone until then (restore/prune.ts); NULL:
      // not locked, or not known to be.
      db.exec(`
        ALTER TABLE copies ADD COLUMN locked_until INTEGER;
        ALTER TABLE versions ADD COLUMN locked_until INTEGER;
      `);
    },
  },
];

export const LATEST_VERSION = migrations[migrations.length - 1]!.version;
