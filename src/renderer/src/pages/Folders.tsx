import { useState } from 'react';
import type { RootInfo } from '../../../shared/api';
import { UploadButton } from '../components/DropZone';
import { FolderPicker } from '../components/FolderPicker';
import { ConfirmDialog, Dialog, EmptyState, ErrorNote, Field, Loading, PageHeader } from '../components/ui';
import { toShownError, type ShownError } from '../lib/errors';
import { formatBytes, formatCount, plural, slugify } from '../lib/format';
import { api, useApp } from '../store';

export function FoldersPage() {
  const roots = useApp((s) => s.roots);
  const run = useApp((s) => s.run);
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<RootInfo | null>(null);
  const [removing, setRemoving] = useState<RootInfo | null>(null);
  return (
    <>
      <PageHeader title="Folders">
        {roots && roots.length > 0 ? <UploadButton /> : null}
        <button type="button" className="btn btn-primary" onClick={() => setAdding(true)}>
          Add a folder
        </button>
      </PageHeader>
      <p className="lead">The folders whose photos and videos Triplicate keeps safe. New files in them are copied to every destination. To add files, drop them anywhere on this window or press Upload files.</p>
      {!roots ? <Loading what="folders" /> : null}
      {roots && roots.length === 0 ? (
        <EmptyState title="No folders yet">
          <p>Add the folder where the camera, the phone or the scanner puts its files.</p>
          <button type="button" className="btn btn-primary" onClick={() => setAdding(true)}>
            Add a folder
          </button>
        </EmptyState>
      ) : null}
      <ul className="card-list">
        {roots?.map((r) => (
          <li key={r.id} className={`card root-card${r.enabled ? '' : ' is-off'}`}>
            <div className="root-main">
              <h2>{r.label}</h2>
              <p className="mono path" title={r.path}>
                {r.path}
              </p>
              <p className="muted">
                Id for links and the command line: <span className="mono">{r.id}</span> (the name works too)
              </p>
              <p>
                <strong>{formatCount(r.files)}</strong> {plural(r.files, 'file', 'files')} · {formatBytes(r.bytes)}
                {!r.enabled ? ' · turned off' : ''}
              </p>
              {r.include.length > 0 ? <p className="muted">Only: {r.include.join(', ')}</p> : null}
              {r.exclude.length > 0 ? <p className="muted">Except: {r.exclude.join(', ')}</p> : null}
              {r.problem ? <ErrorNote message={r.problem} /> : null}
            </div>
            <div className="root-actions">
              {r.enabled ? <UploadButton root={r.id} /> : null}
              <button type="button" className="btn" onClick={() => void run((c) => c.call('initialSync', { body: { root: r.id } }), `Looking for new files in ${r.label}.`)}>
                Check for new files
              </button>
              <button type="button" className="btn" onClick={() => setEditing(r)}>
                Edit
              </button>
              <button type="button" className="btn btn-ghost" onClick={() => setRemoving(r)}>
                Remove
              </button>
            </div>
          </li>
        ))}
      </ul>
      {adding ? <RootDialog onClose={() => setAdding(false)} /> : null}
      {editing ? <RootDialog root={editing} onClose={() => setEditing(null)} /> : null}
      {removing ? (
        <ConfirmDialog
          title={`Stop backing up ${removing.label}?`}
          confirmLabel="Stop backing up"
          danger
          onCancel={() => setRemoving(null)}
          onConfirm={async () => {
            const r = removing;
            setRemoving(null);
            await run((c) => c.call('removeRoot', { params: { id: r.id } }), `${r.label} is no longer backed up.`);
            void useApp.getState().refreshRoots();
          }}
        >
          <p>New files in {removing.path} will no longer be copied.</p>
          <p>
            <strong>Nothing is deleted:</strong> the files stay in the folder, and the copies already on your destinations stay there too.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);

function RootDialog({ root, onClose }: { root?: RootInfo; onClose: () => void }) {
  const roots = useApp((s) => s.roots) ?? [];
  const [label, setLabel] = useState(root?.label ?? '');
  const [path, setPath] = useState(root?.path ?? '');
  const [include, setInclude] = useState(root?.include.join('\n') ?? '');
  const [exclude, setExclude] = useState(root?.exclude.join('\n') ?? '');
  const [enabled, setEnabled] = useState(root?.enabled ?? true);
  const [error, setError] = useState<ShownError | null>(null);
  const [busy, setBusy] = useState(false);
  const [showAdvanced, setShowAdvanced] = useState(Boolean(root && (root.include.length || root.exclude.length)));

  const save = async () => {
    setError(null);
    if (!path.trim()) return setError({ message: 'Choose the folder to back up.' });
    const name = label.trim() || path.trim().split(/[\\/]/).filter(Boolean).pop() || 'Photos';
    setBusy(true);
    try {
      if (root) {
        await api().call('updateRoot', { params: { id: root.id }, body: { label: name, include: lines(include), exclude: lines(exclude), enabled } });
      } else {
        let id = slugify(name, 'folder');
        for (let i = 2; roots.some((r) => r.id === id); i++) id = `${slugify(name, 'folder').slice(0, 36)}-${i}`;
        await api().call('addRoot', { body: { id, label: name, path: path.trim(), include: lines(include), exclude: lines(exclude) } });
      }
      useApp.getState().toast('success', root ? `${name} saved.` : `${name} added. Triplicate starts copying its files.`);
      void useApp.getState().refreshRoots();
      onClose();
    } catch (e) {
      setError(toShownError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={root ? `Edit ${root.label}` : 'Add a folder'} onClose={onClose}>
      <form
        className="dialog-body form"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Field label="Folder" hint={root ? 'To back up another folder, add it as a new one.' : 'The folder where new photos and videos arrive.'}>
          {(p) => (root ? <input {...p} type="text" className="mono" value={path} readOnly /> : <FolderPicker value={path} onChange={setPath} inputProps={p} />)}
        </Field>
        <Field label="Name" hint="How Triplicate calls this folder, e.g. “Camera uploads”.">
          {(p) => <input {...p} type="text" value={label} onChange={(e) => setLabel(e.target.value)} maxLength={80} />}
        </Field>
        {root ? (
          <label className="check">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Back up this folder
          </label>
        ) : null}
        <button type="button" className="btn btn-ghost btn-small" aria-expanded={showAdvanced} onClick={() => setShowAdvanced((v) => !v)}>
          {showAdvanced ? '▾' : '▸'} Which files (advanced)
        </button>
        {showAdvanced ? (
          <div className="advanced">
            <Field label="Only these files" hint="One pattern per line, e.g. *.jpg (in every folder) or Scans/** (that folder). Empty: every file.">
              {(p) => <textarea {...p} rows={3} className="mono" value={include} onChange={(e) => setInclude(e.target.value)} spellCheck={false} />}
            </Field>
            <Field label="Never these files" hint="One pattern per line, e.g. *.key (in every folder) or private/** (that folder)">
              {(p) => <textarea {...p} rows={3} className="mono" value={exclude} onChange={(e) => setExclude(e.target.value)} spellCheck={false} />}
            </Field>
          </div>
        ) : null}
        {error ? <ErrorNote message={error.message} detail={[error.fields?.join('\n'), error.detail].filter(Boolean).join('\n') || undefined} /> : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : root ? 'Save' : 'Add folder'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
