import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useDeferredValue, useEffect, useRef, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { CopyState, FileRecord, QueueQuery, TargetInfo } from '../../../shared/api';
import { CopyChips, Dialog, ErrorNote, NotAvailable, PageHeader, StateChip } from '../components/ui';
import { toShownError } from '../lib/errors';
import { subscribeEvents } from '../lib/live';
import { dirName, fileName, formatBytes, formatCount, formatRelative, formatTime, plural } from '../lib/format';
import { usePagedList } from '../lib/paged';
import { plainReason } from '../lib/reasons';
import { api, useApp } from '../store';

const ROW_HEIGHT = 64;
const STATE_OPTIONS: { value: CopyState | 'all'; label: string }[] = [
  { value: 'all', label: 'Every file' },
  { value: 'failed', label: 'Failed' },
  { value: 'pending', label: 'Waiting' },
  { value: 'uploading', label: 'Copying' },
  { value: 'synced', label: 'Safe' },
  { value: 'skipped', label: 'Skipped' },
];

export function ActivityPage() {
  const { targets, roots, status, run } = useApp(useShallow((s) => ({ targets: s.targets, roots: s.roots, status: s.status, run: s.run })));
  const [state, setState] = useState<CopyState | 'all'>(() => ((status?.failed ?? 0) > 0 ? 'failed' : 'all'));
  const [target, setTarget] = useState('');
  const [root, setRoot] = useState('');
  const [text, setText] = useState('');
  const q = useDeferredValue(text.trim());
  const [debouncedQ, setDebouncedQ] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setDebouncedQ(q), 250);
    return () => clearTimeout(t);
  }, [q]);
  const [open, setOpen] = useState<FileRecord | null>(null);

  const query: QueueQuery = { state, target: target || undefined, root: root || undefined, q: debouncedQ || undefined };
  const key = JSON.stringify(query);
  const fetchPage = useCallback(
    (offset: number, limit: number, signal: AbortSignal) => api().call('queue', { query: { ...(JSON.parse(key) as QueueQuery), offset, limit } }, signal),
    [key],
  );
  const list = usePagedList<FileRecord>(key, fetchPage);

  // Live: patch rows in place from copy events, and re-read the visible rows at most every 3 s.
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const { patch, refresh } = list;
  useEffect(() => {
    const unsub = subscribeEvents((ev) => {
      if (ev.type === 'copy') {
        patch((row) => {
          if (row.key !== ev.file_key) return undefined;
          return { ...row, copies: row.copies.map((c) => (c.target_id === ev.target_id ? { ...c, state: ev.state, last_error: ev.error ?? (ev.state === 'synced' ? undefined : c.last_error) } : c)) };
        });
      }
      if (ev.type === 'copy' || ev.type === 'file') {
        refreshTimer.current ??= setTimeout(() => {
          refreshTimer.current = null;
          refresh();
        }, 3000);
      }
    });
    return () => {
      unsub();
      if (refreshTimer.current) clearTimeout(refreshTimer.current);
      refreshTimer.current = null;
    };
  }, [patch, refresh]);

  const scrollRef = useRef<HTMLDivElement>(null);
  const total = list.total ?? 0;
  const virtualizer = useVirtualizer({ count: total, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_HEIGHT, overscan: 8 });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  const { ensure } = list;
  useEffect(() => {
    const t = setTimeout(() => ensure(first, last), 40); // dragging the scrollbar fast does not fetch every page on the way
    return () => clearTimeout(t);
  }, [first, last, ensure]);

  if (list.notAvailable) return <NotAvailable feature="The activity list" />;
  const failedHere = state === 'failed' || state === 'all' ? status?.failed ?? 0 : 0;

  return (
    <>
      <PageHeader title="Activity">
        <button
          type="button"
          className="btn btn-primary"
          disabled={(status?.failed ?? 0) === 0}
          onClick={() => void run((c) => c.call('retryFailed', { body: target ? { target } : {} }), 'Trying the failed files again.').then(() => list.refresh())}
        >
          Retry all failed{failedHere > 0 ? ` (${formatCount(failedHere)})` : ''}
        </button>
      </PageHeader>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          <span>Show</span>
          <select value={state} onChange={(e) => setState(e.target.value as CopyState | 'all')}>
            {STATE_OPTIONS.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Destination</span>
          <select value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value="">All</option>
            {targets?.map((t) => (
              <option key={t.id} value={t.id}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Folder</span>
          <select value={root} onChange={(e) => setRoot(e.target.value)}>
            <option value="">All</option>
            {roots?.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          <span>Find</span>
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="Part of a file or folder name" />
        </label>
      </form>
      <p className="list-count" role="status" aria-live="polite">
        {list.total === null ? 'Loading…' : `${formatCount(list.total)} ${plural(list.total, 'file', 'files')}`}
      </p>
      {list.error && !list.notAvailable ? <ErrorNote message={toShownError(list.error).message} detail={toShownError(list.error).detail} onRetry={() => list.refresh()} /> : null}
      <div ref={scrollRef} className="vlist" tabIndex={0} aria-label="Files">
        <div role="list" aria-label="Files" style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((vi) => {
            const row = list.get(vi.index);
            return (
              <div
                key={vi.key}
                role="listitem"
                aria-setsize={total}
                aria-posinset={vi.index + 1}
                className={`vrow${vi.index % 2 ? ' odd' : ''}`}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${vi.start}px)` }}
              >
                {row ? <ActivityRow file={row} targets={targets} rootLabel={roots?.find((r) => r.id === row.root_id)?.label ?? row.root_id} onOpen={setOpen} onRetried={refresh} /> : <div className="vrow-placeholder" aria-hidden="true" />}
              </div>
            );
          })}
        </div>
        {list.total === 0 ? <p className="empty-inline">{state === 'failed' ? 'No failed files. Everything that could be copied was copied.' : 'No files match.'}</p> : null}
      </div>
      {open ? <FileDetail file={open} targets={targets} onClose={() => setOpen(null)} onRetried={() => list.refresh()} /> : null}
    </>
  );
}

function firstProblem(file: FileRecord): string | undefined {
  const bad = file.copies.find((c) => c.state === 'failed' && c.last_error) ?? file.copies.find((c) => c.last_error && c.state !== 'synced');
  return bad?.last_error;
}

/** Memoized: while scrolling only the rows that come into view render (props are stable). */
const ActivityRow = memo(function ActivityRow({
  file,
  targets,
  rootLabel,
  onOpen,
  onRetried,
}: {
  file: FileRecord;
  targets: TargetInfo[] | null;
  rootLabel: string;
  onOpen: (f: FileRecord) => void;
  onRetried: () => void;
}) {
  const run = useApp((s) => s.run);
  const problem = firstProblem(file);
  const failed = file.copies.some((c) => c.state === 'failed');
  const dir = dirName(file.rel_path);
  return (
    <div className="activity-row">
      <div className="activity-main">
        <button type="button" className="link-button file-name" title={file.key} onClick={() => onOpen(file)}>
          {fileName(file.rel_path)}
        </button>
        <CopyChips file={file} targets={targets} />
      </div>
      <div className="activity-sub muted">
        <span className="activity-where" title={`${rootLabel}/${dir}`}>
          {rootLabel}
          {dir ? ` › ${dir}` : ''}
        </span>
        <span> · {formatBytes(file.size)}</span>
        {problem ? <span className="activity-reason" title={problem}> · {plainReason(problem)}</span> : null}
      </div>
      {failed ? (
        <button type="button" className="btn btn-small row-action" onClick={() => void run((c) => c.call('retryFile', { body: { key: file.key } }), `Trying ${fileName(file.rel_path)} again.`).then(onRetried)}>
          Retry
        </button>
      ) : null}
    </div>
  );
});

function FileDetail({ file, targets, onClose, onRetried }: { file: FileRecord; targets: TargetInfo[] | null; onClose: () => void; onRetried: () => void }) {
  const run = useApp((s) => s.run);
  const labelOf = (id: string) => targets?.find((t) => t.id === id)?.label ?? id;
  return (
    <Dialog title={fileName(file.rel_path)} onClose={onClose} wide>
      <div className="dialog-body">
        <p className="mono break">{file.key}</p>
        <p>
          {formatBytes(file.size)} · changed {formatTime(file.mtime_ms)}
          {file.media?.width ? ` · ${file.media.width}×${file.media.height}` : ''}
        </p>
        <table className="table">
          <caption className="visually-hidden">Copies of this file</caption>
          <thead>
            <tr>
              <th scope="col">Where</th>
              <th scope="col">State</th>
              <th scope="col">Tries</th>
              <th scope="col">Why</th>
              <th scope="col">
                <span className="visually-hidden">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>This computer</td>
              <td>
                <StateChip label="" state={file.local} />
              </td>
              <td />
              <td>{file.local === 'missing' ? 'The file is no longer in its folder. It can be restored.' : ''}</td>
              <td />
            </tr>
            {file.copies.map((c) => (
              <tr key={c.target_id}>
                <td>{labelOf(c.target_id)}</td>
                <td>
                  <StateChip label="" state={c.state} />
                </td>
                <td>{c.attempts}</td>
                <td>
                  {c.last_error ? (
                    <>
                      {plainReason(c.last_error)}
                      <details>
                        <summary>Technical detail</summary>
                        <pre>{c.last_error}</pre>
                      </details>
                    </>
                  ) : c.synced_at ? (
                    `Copied ${formatRelative(c.synced_at)}`
                  ) : (
                    ''
                  )}
                  {c.next_attempt_at && c.state !== 'synced' ? <div className="muted">Next try {formatRelative(c.next_attempt_at)}</div> : null}
                </td>
                <td>
                  {c.state === 'failed' || c.state === 'skipped' ? (
                    <button type="button" className="btn btn-small" onClick={() => void run((cl) => cl.call('retryFile', { body: { key: file.key, target: c.target_id } }), 'Trying again.').then(onRetried)}>
                      Retry
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {file.media?.transcode_reason ? <p className="muted">Video conversion: {file.media.transcode_reason}</p> : null}
      </div>
    </Dialog>
  );
}
