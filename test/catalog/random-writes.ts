// Random writes to a catalog through every path that writes it (the catalog's methods, bulk SQL,
// deletes that cascade), for the tests of the totals that triggers keep.
import type { CopyState } from '../../src/shared/api';
import type { Catalog } from '../../src/main/engine/catalog/catalog';
import { rng } from '../robustness/lib';

const TARGETS = ['nas', 'cloud', 'usb'];
const STATES: CopyState[] = ['pending', 'uploading', 'synced', 'failed', 'skipped'];

/** `steps` random writes; `check` runs every 500 and after the last. */
export function randomWrites(cat: Catalog, steps: number, seed: number, check: () => void): void {
  const r = rng(seed);
  const rnd = (n: number) => r.int(0, n - 1);
  const ids: number[] = [];
  for (let i = 0; i < steps; i++) {
    const op = rnd(11);
    if (op === 0 || ids.length < 5) {
      const f = cat.recordFile({ root_id: 'r', rel_path: `f${rnd(400)}`, size: rnd(1000), mtime_ms: rnd(5), sha256: `s${rnd(3)}`, kind: 'image' });
      if (!ids.includes(f.id)) ids.push(f.id);
    } else {
      const id = ids[rnd(ids.length)]!;
      const t = TARGETS[rnd(TARGETS.length)]!;
      if (op === 1) cat.queueUpload(id, t, rnd(1000));
      else if (op === 2) cat.markCopySynced(id, t, 's', rnd(1000));
      else if (op === 3) {
        if (cat.copy(id, t)) cat.setCopyState(id, t, STATES[rnd(STATES.length)]!);
      } else if (op === 4) cat.setLocalState(id, rnd(2) ? 'missing' : 'present');
      else if (op === 5) cat.db.prepare('DELETE FROM copies WHERE file_id = ? AND target_id = ?').run(id, t);
      else if (op === 6) {
        cat.db.prepare('DELETE FROM files WHERE id = ?').run(id); // copies go with it (cascade)
        ids.splice(ids.indexOf(id), 1);
      } else if (op === 7) cat.db.prepare('UPDATE copies SET size = ? WHERE file_id = ?').run(rnd(1000), id);
      else if (op === 8) cat.db.prepare('UPDATE files SET size = ? WHERE id = ?').run(rnd(1000), id);
      else if (op === 9) cat.db.prepare(`UPDATE copies SET state = 'pending' WHERE state = 'uploading'`).run(); // many at once (a restart)
      else cat.db.prepare('UPDATE OR IGNORE copies SET target_id = ? WHERE file_id = ? AND target_id = ?').run(TARGETS[rnd(TARGETS.length)]!, id, t);
    }
    if (i % 500 === 0 || i === steps - 1) check();
  }
}
