import { useCallback, useEffect, useState } from 'react';
import type { BrowseObject, BrowseResult } from '../../../shared/api';
import { STREAM_ROUTES, buildPath } from '../../../shared/api';
import { ConfirmDialog, Dialog, EmptyState, ErrorNote, Loading, NotAvailable, PageHeader } from '../components/ui';
import { isNotAvailable, toShownError, type ShownError } from '../lib/errors';
import { formatBytes, formatTime } from '../lib/format';
import { urlWithToken } from '../lib/transport';
import { api, useApp } from '../store';

export function BrowsePage() {
  const targets = useApp((s) => s.targets);
  const [targetId, setTargetId] = useState('');
  const [prefix, setPrefix] = useState('');
  const [result, setResult] = useState<BrowseResult | null>(null);
  const [more, setMore] = useState<BrowseObject[]>([]);
  const [state, setState] = useState<'idle' | 'loading' | 'unavailable'>('idle');
  const [error, setError] = useState<ShownError | null>(null);
  const [deleting, setDeleting] = useState<BrowseObject | null>(null);
  const [copying, setCopying] = useState<BrowseObject | null>(null);
  const tid = targetId || targets?.[0]?.id || '';
  const target = targets?.find((t) => t.id === tid);

  const load = useCallback(
    async (cursor?: string) => {
      if (!tid) return;
      setState('loading');
      setError(null);
      try {
        const r = await api().call('browseTarget', { params: { id: tid }, query: { prefix, cursor, limit: 500 } });
        if (cursor) setMore((m) => [...m, ...r.objects]);
        else setMore([]);
        setResult((prev) => (cursor && prev ? { ...r, folders: prev.folders, objects: prev.objects } : r));
        setState('idle');
      } catch (e) {
        if (isNotAvailable(e) && !cursor && !prefix) setState('unavailable');
        else {
          setError(toShownError(e));
          setState('idle');
        }
      }
    },
    [tid, prefix],
  );

  useEffect(() => {
    setResult(null);
    void load();
  }, [load]);

  if (targets && targets.length === 0)
    return (
      <>
        <PageHeader title="Browse" />
        <EmptyState title="No destinations yet">
          <p>Add a destination first; then you can look inside it here.</p>
        </EmptyState>
      </>
    );
  if (state === 'unavailable')
    return (
      <>
        <PageHeader title="Browse" />
        <NotAvailable feature="Browsing destinations" />
      </>
    );

  const crumbs = prefix.split('/').filter(Boolean);
  const objects = [...(result?.objects ?? []), ...more];
  const conn = useApp.getState().conn;
  const objectUrl = (key: string) => urlWithToken({ baseUrl: conn?.baseUrl ?? '', token: conn?.token ?? null }, buildPath(STREAM_ROUTES.targetObject, { id: tid }), { key });

  return (
    <>
      <PageHeader title="Browse" />
      <p className="lead">Look inside a destination like a folder. Deleting here removes only that one copy; the file on this computer and on the other destinations stays.</p>
      <div className="filters">
        <label>
          <span>Destination</span>
          <select
            value={tid}
            onChange={(e) => {
              setTargetId(e.target.value);
              setPrefix('');
            }}
          >
            {targets?.map((t) => (
              <option key={t.id} value={t.id}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <nav aria-label="Folder path" className="breadcrumbs">
        <ol>
          <li>
            <button type="button" className="link-button" onClick={() => setPrefix('')} aria-current={crumbs.length === 0 ? 'location' : undefined}>
              {target?.label ?? 'Top'}
            </button>
          </li>
          {crumbs.map((c, i) => (
            <li key={i}>
              <button type="button" className="link-button" onClick={() => setPrefix(`${crumbs.slice(0, i + 1).join('/')}/`)} aria-current={i === crumbs.length - 1 ? 'location' : undefined}>
                {c}
              </button>
            </li>
          ))}
        </ol>
      </nav>
      {error ? <ErrorNote message={error.message} detail={error.detail} onRetry={() => void load()} /> : null}
      {state === 'loading' && !result ? <Loading what="the folder" /> : null}
      {result ? (
        <table className="table browse-table">
          <caption className="visually-hidden">Contents of {prefix || 'the top folder'}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Stored</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {prefix ? (
              <tr>
                <td colSpan={4}>
                  <button type="button" className="link-button" onClick={() => setPrefix(crumbs.length > 1 ? `${crumbs.slice(0, -1).join('/')}/` : '')}>
                    ↑ Up one folder
                  </button>
                </td>
              </tr>
            ) : null}
            {result.folders.map((f) => (
              <tr key={f}>
                <td colSpan={4}>
                  <button type="button" className="link-button" onClick={() => setPrefix(f)}>
                    <span aria-hidden="true">▸ </span>
                    {f.slice(prefix.length).replace(/\/$/, '')}
                    <span className="visually-hidden"> (folder)</span>
                  </button>
                </td>
              </tr>
            ))}
            {objects.map((o) => (
              <tr key={o.key}>
                <td className="break">{o.name}</td>
                <td>{formatBytes(o.size)}</td>
                <td>{formatTime(o.last_modified)}</td>
                <td className="row-buttons">
                  <a className="btn btn-small" href={objectUrl(o.key)} download={o.name}>
                    Download
                  </a>
                  {targets && targets.length > 1 ? (
                    <button type="button" className="btn btn-small" onClick={() => setCopying(o)}>
                      Copy to…
                    </button>
                  ) : null}
                  <button type="button" className="btn btn-small btn-ghost" onClick={() => setDeleting(o)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {result.folders.length === 0 && objects.length === 0 ? (
              <tr>
                <td colSpan={4} className="muted">
                  This folder is empty.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      ) : null}
      {result?.next_cursor ? (
        <button type="button" className="btn" onClick={() => void load(result.next_cursor)}>
          Show more
        </button>
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title={`Delete ${deleting.name} from ${target?.label}?`}
          confirmLabel="Delete this copy"
          danger
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            const o = deleting;
            setDeleting(null);
            const ok = await useApp.getState().run((c) => c.call('deleteObject', { params: { id: tid }, body: { key: o.key } }), `${o.name} deleted from ${target?.label}.`);
            if (ok) void load();
          }}
        >
          <p>
            Only the copy on <strong>{target?.label}</strong> is deleted. The file on this computer and its copies elsewhere stay.
          </p>
          {deleting.file_key ? <p>If the file is still in its folder, Triplicate copies it here again at the next check.</p> : null}
        </ConfirmDialog>
      ) : null}
      {copying ? <CopyTo object={copying} from={tid} onClose={() => setCopying(null)} /> : null}
    </>
  );
}

function CopyTo({ object, from, onClose }: { object: BrowseObject; from: string; onClose: () => void }) {
  const targets = (useApp((s) => s.targets) ?? []).filter((t) => t.id !== from);
  const [to, setTo] = useState(targets[0]?.id ?? '');
  return (
    <Dialog title={`Copy ${object.name}`} onClose={onClose}>
      <form
        className="dialog-body form"
        onSubmit={async (e) => {
          e.preventDefault();
          const label = targets.find((t) => t.id === to)?.label;
          const ok = await useApp.getState().run((c) => c.call('copyObject', { params: { id: from }, body: { key: object.key, to } }), `Copied to ${label}.`);
          if (ok) onClose();
        }}
      >
        <label>
          To
          <select value={to} onChange={(e) => setTo(e.target.value)}>
            {targets.map((t) => (
              <option key={t.id} value={t.id}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={!to}>
            Copy
          </button>
        </div>
      </form>
    </Dialog>
  );
}
