// Drop files or folders anywhere on the window, or press an Upload files button (a touch screen
// cannot drop): choose the folder they go into, then watch them copy. Electron hands the engine
// real paths; a browser streams each file to the engine (the same import either way).
import { useEffect, useRef, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { ImportJob, type ImportProgress } from '../lib/importer';
import { formatBytes, formatCount, plural } from '../lib/format';
import { isElectron } from '../lib/transport';
import { useApp } from '../store';
import { Dialog, Field, ProgressBar } from './ui';

type Pending = ({ kind: 'paths'; paths: string[] } | { kind: 'entries'; entries: FileSystemEntry[]; count: number } | { kind: 'files'; files: File[] }) & {
  /** chosen with a button (not dropped), for this folder when the button belongs to one */
  chosen?: { root?: string };
};

/** Set by the mounted DropZone: the Upload files buttons hand it the chosen files. */
let offerFiles: ((p: Pending) => void) | null = null;

/** Files from a file input, as a drop would give them (Electron: real paths, so the engine copies them). */
function pendingOf(files: File[], root?: string): Pending {
  if (isElectron()) {
    const paths = window.triplicate!.pathsForFiles(files).filter(Boolean);
    if (paths.length === files.length) return { kind: 'paths', paths, chosen: { root } };
  }
  return { kind: 'files', files, chosen: { root } };
}

/** "Upload files": a file chooser (several files at once) that leads to the same dialog and copy as a drop. */
export function UploadButton({ root, className = 'btn' }: { root?: string; className?: string }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" className={className} onClick={() => input.current?.click()}>
        Upload files
      </button>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        tabIndex={-1}
        aria-hidden="true"
        onChange={(e) => {
          const files = [...(e.target.files ?? [])];
          e.target.value = ''; // the same files can be chosen again
          if (files.length > 0) offerFiles?.(pendingOf(files, root));
        }}
      />
    </>
  );
}

const LAST_ROOT_KEY = 'triplicate.lastDropRoot';

function hasFiles(e: DragEvent): boolean {
  return !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
}

export function DropZone() {
  const [over, setOver] = useState(false);
  const [pending, setPending] = useState<Pending | null>(null);
  const [job, setJob] = useState<ImportJob | null>(null);
  const depth = useRef(0);

  useEffect(() => {
    offerFiles = setPending;
    return () => {
      if (offerFiles === setPending) offerFiles = null;
    };
  }, []);

  useEffect(() => {
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth.current++;
      setOver(true);
    };
    const overFn = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth.current = Math.max(0, depth.current - 1);
      if (depth.current === 0) setOver(false);
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e) || !e.dataTransfer) return;
      e.preventDefault();
      depth.current = 0;
      setOver(false);
      if (isElectron()) {
        const paths = window.triplicate!.pathsForFiles([...e.dataTransfer.files]).filter(Boolean);
        if (paths.length > 0) setPending({ kind: 'paths', paths });
      } else {
        // Entries must be taken now: the DataTransfer is emptied once the event returns.
        const entries: FileSystemEntry[] = [];
        for (const item of [...e.dataTransfer.items]) {
          const en = item.kind === 'file' ? item.webkitGetAsEntry() : null;
          if (en) entries.push(en);
        }
        if (entries.length > 0) setPending({ kind: 'entries', entries, count: entries.length });
        else if (e.dataTransfer.files.length > 0) setPending({ kind: 'files', files: [...e.dataTransfer.files] });
      }
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragover', overFn);
    window.addEventListener('dragleave', leave);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragover', overFn);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('drop', drop);
    };
  }, []);

  return (
    <>
      {over ? (
        <div className="drop-overlay" aria-hidden="true">
          <div className="drop-box">
            <p className="drop-big">Drop to back up</p>
            <p>You choose the folder next.</p>
          </div>
        </div>
      ) : null}
      {pending ? (
        <ChooseRoot
          pending={pending}
          onCancel={() => setPending(null)}
          onStart={(root, label, sub) => {
            const { client, conn } = useApp.getState();
            if (!client) return;
            const j = new ImportJob(client, conn?.token ?? null, root, label, sub);
            setJob(j);
            if (pending.kind === 'paths') void j.runPaths(pending.paths);
            else if (pending.kind === 'entries') void j.runEntries(pending.entries);
            else void j.runFiles(pending.files);
            setPending(null);
          }}
        />
      ) : null}
      {job ? <ImportPanel job={job} onClose={() => setJob(null)} /> : null}
    </>
  );
}

function ChooseRoot({ pending, onCancel, onStart }: { pending: Pending; onCancel: () => void; onStart: (root: string, label: string, sub: string) => void }) {
  const roots = useApp(useShallow((s) => (s.roots ?? []).filter((r) => r.enabled)));
  const [root, setRoot] = useState(() => {
    const last = pending.chosen?.root ?? localStorage.getItem(LAST_ROOT_KEY);
    return roots.find((r) => r.id === last)?.id ?? roots[0]?.id ?? '';
  });
  const [sub, setSub] = useState('');
  const n = pending.kind === 'paths' ? pending.paths.length : pending.kind === 'files' ? pending.files.length : pending.count;
  const title = pending.chosen ? `Back up ${formatCount(n)} chosen ${plural(n, 'file', 'files')}` : `Back up ${formatCount(n)} dropped ${plural(n, 'item', 'items')}`;
  return (
    <Dialog title={title} onClose={onCancel}>
      {roots.length === 0 ? (
        <div className="dialog-body">
          <p>Add a folder on the Folders page first; the files are copied into it.</p>
          <div className="dialog-actions">
            <button type="button" className="btn btn-primary" onClick={onCancel}>
              OK
            </button>
          </div>
        </div>
      ) : (
        <form
          className="dialog-body form"
          onSubmit={(e) => {
            e.preventDefault();
            const r = roots.find((x) => x.id === root);
            if (!r) return;
            localStorage.setItem(LAST_ROOT_KEY, r.id);
            onStart(r.id, r.label, sub.trim());
          }}
        >
          <fieldset>
            <legend>Copy them into</legend>
            {roots.map((r) => (
              <label key={r.id} className="check">
                <input type="radio" name="drop-root" value={r.id} checked={root === r.id} onChange={() => setRoot(r.id)} /> {r.label} <span className="muted mono">{r.path}</span>
              </label>
            ))}
          </fieldset>
          <Field label="Sub-folder (optional)" hint="e.g. 2025/Donation Smith. Created if it does not exist.">
            {(p) => <input {...p} type="text" value={sub} onChange={(e) => setSub(e.target.value)} />}
          </Field>
          <p className="hint">The files are copied; the ones you {pending.chosen ? 'chose' : 'dropped'} stay where they are. A file that already exists with other content is not replaced.</p>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={onCancel}>
              Cancel
            </button>
            <button type="submit" className="btn btn-primary" disabled={!root}>
              Copy and back up
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function ImportPanel({ job, onClose }: { job: ImportJob; onClose: () => void }) {
  const [p, setP] = useState<ImportProgress>({ ...job.progress });
  useEffect(() => {
    // Sample the job's progress 4x a second instead of rendering on every file.
    const t = setInterval(() => {
      setP({ ...job.progress, problems: [...job.progress.problems] });
      if (!['listing', 'copying'].includes(job.progress.phase)) clearInterval(t);
    }, 250);
    return () => clearInterval(t);
  }, [job]);
  const active = p.phase === 'listing' || p.phase === 'copying';
  const processed = p.done + p.skipped + p.failed;
  return (
    <section className={`import-panel import-${p.phase}`} aria-labelledby="import-h" role="region">
      <h2 id="import-h">
        {active ? `Copying into ${p.rootLabel}` : p.phase === 'done' ? `Copied into ${p.rootLabel}` : p.phase === 'cancelled' ? 'Copying stopped' : 'Copying did not work'}
      </h2>
      <p role="status" aria-live="polite">
        {formatCount(p.done)} of {formatCount(p.found)}
        {active && p.phase === 'listing' ? '+' : ''} {plural(p.found, 'item', 'items')} · {formatBytes(p.bytesDone)}
        {p.bytesTotal > 0 ? ` of ${formatBytes(p.bytesTotal)}` : ''}
        {p.skipped > 0 ? ` · ${formatCount(p.skipped)} already there` : ''}
        {p.failed > 0 ? ` · ${formatCount(p.failed)} failed` : ''}
      </p>
      <ProgressBar value={p.bytesTotal > 0 ? p.bytesDone : processed} max={p.bytesTotal > 0 ? p.bytesTotal : Math.max(1, p.found)} label="Copying dropped files" />
      {p.message ? <p className="field-error">{p.message}</p> : null}
      {p.phase === 'done' ? <p className="muted">They are backed up like every other file; watch them on the Overview.</p> : null}
      {p.problems.length > 0 ? (
        <details>
          <summary>
            {formatCount(p.problems.length)} {plural(p.problems.length, 'problem', 'problems')}
          </summary>
          <ul className="problems">
            {p.problems.map((x, i) => (
              <li key={i}>
                <span className="mono break">{x.path}</span>: {x.reason}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
      <div className="row-buttons">
        {active ? (
          <button type="button" className="btn btn-small" onClick={() => job.cancel()}>
            Stop
          </button>
        ) : (
          <button type="button" className="btn btn-small" onClick={onClose}>
            Close
          </button>
        )}
      </div>
    </section>
  );
}
