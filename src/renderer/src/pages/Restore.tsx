import { useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { FileRecord, RestoreProgress, VerifyReport, VersionInfo } from '../../../shared/api';
import { heldFolderNote, missingToOffer } from '../../../shared/status';
import { downloadUrl, dragOutProps } from '../components/DragOut';
import { FolderPicker } from '../components/FolderPicker';
import { ErrorNote, Field, NotAvailable, PageHeader, ProgressBar } from '../components/ui';
import { isNotAvailable, toShownError, type ShownError } from '../lib/errors';
import { fileName, formatBytes, formatCount, formatEta, formatRate, formatTime, plural, restoringSentence } from '../lib/format';
import { subscribeEvents } from '../lib/live';
import { usePagedList } from '../lib/paged';
import { isElectron } from '../lib/transport';
import { api, useApp } from '../store';

const ROW = 48;

export function RestorePage() {
  return (
    <>
      <PageHeader title="Restore" />
      <p className="lead">Bring files back from the NAS or the cloud: everything that went missing, a few files, a folder as it was on a day, or an earlier version of one file.</p>
      <RestoreMissingCard />
      <MissingFiles />
      <div className="two-col">
        <FolderAsOf />
        <Versions />
      </div>
      <VerifyCard />
    </>
  );
}

/** A backup nobody checked is a hope: HEAD every copy, and read a sample (or everything) back. */
function VerifyCard() {
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [busy, setBusy] = useState<'' | 'quick' | 'full'>('');
  const [unavailable, setUnavailable] = useState(false);
  const [error, setError] = useState<ShownError | null>(null);
  const run = async (full: boolean) => {
    setBusy(full ? 'full' : 'quick');
    setError(null);
    try {
      setReport(await api().call('verifyNow', { body: { full } }));
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
      else setError(toShownError(e));
    } finally {
      setBusy('');
    }
  };
  return (
    <section className="card" aria-labelledby="verify-h">
      <h2 id="verify-h">Check the copies</h2>
      <p className="hint">Triplicate checks every copy on a schedule and reads a sample back. Check now if you want to be sure today.</p>
      <div className="row-buttons">
        <button type="button" className="btn" disabled={busy !== ''} onClick={() => void run(false)}>
          {busy === 'quick' ? 'Checking…' : 'Check now'}
        </button>
        <button type="button" className="btn btn-ghost" disabled={busy !== ''} onClick={() => void run(true)}>
          {busy === 'full' ? 'Reading everything back…' : 'Read everything back (slow)'}
        </button>
      </div>
      {unavailable ? <NotAvailable feature="Checking the copies" /> : null}
      {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
      {report ? (
        <div className={`verify-report ${report.ok ? 'ok' : 'bad'}`} role="status">
          <p className="test-message">
            {report.ok ? '✓ ' : '✕ '}
            {report.summary}
          </p>
          <table className="table">
            <caption className="visually-hidden">Check results per destination</caption>
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">Checked</th>
                <th scope="col">Read back</th>
                <th scope="col">Missing</th>
                <th scope="col">Damaged</th>
              </tr>
            </thead>
            <tbody>
              {report.targets.map((t) => (
                <tr key={t.target_id}>
                  <td>{t.label}</td>
                  <td>{formatCount(t.checked)}</td>
                  <td>
                    {formatCount(t.files_read)} ({formatBytes(t.bytes_read)})
                  </td>
                  <td>{formatCount(t.missing)}</td>
                  <td>{formatCount(t.damaged)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {report.targets.some((t) => t.problems.length > 0) ? (
            <details>
              <summary>Which files</summary>
              <ul className="problems">
                {report.targets.flatMap((t) =>
                  t.problems.map((p) => (
                    <li key={`${t.target_id}:${p.key}`}>
                      <span className="mono break">{p.key}</span> on {t.label}: {p.problem}
                    </li>
                  )),
                )}
              </ul>
            </details>
          ) : null}
          {report.targets.some((t) => t.requeued > 0) ? <p>Damaged or missing copies are being copied again.</p> : null}
        </div>
      ) : null}
    </section>
  );
}

function useRestoreAction() {
  const [error, setError] = useState<ShownError | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const start = async (fn: () => Promise<RestoreProgress>, what: string) => {
    setError(null);
    try {
      const p = await fn();
      useApp.setState({ restore: p });
      useApp.getState().toast('info', what);
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
      else setError(toShownError(e));
    }
  };
  return { error, unavailable, start };
}

function RestoreProgressView({ p }: { p: RestoreProgress }) {
  const run = useApp((s) => s.run);
  const active = p.state === 'planning' || p.state === 'running';
  const words: Record<RestoreProgress['state'], string> = { planning: 'Getting ready', running: 'Restoring', done: 'Finished', cancelled: 'Stopped', failed: 'Stopped with a problem' };
  return (
    <div className={`restore-progress restore-${p.state}`} role="status" aria-live="polite">
      <p>
        <strong>{words[p.state]}</strong>: {formatCount(p.files_done)} of {formatCount(p.files_total)} {plural(p.files_total, 'file', 'files')} ({formatBytes(p.bytes_done)} of {formatBytes(p.bytes_total)})
        {p.files_failed > 0 ? `, ${formatCount(p.files_failed)} could not be restored` : ''}
        {active && p.rate_bps > 0 ? ` · ${formatRate(p.rate_bps)}` : ''}
        {active && p.eta_seconds ? ` · ${formatEta(p.eta_seconds)} left` : ''}
      </p>
      <ProgressBar value={p.bytes_done} max={p.bytes_total || 1} label="Restore progress" />
      {active && restoringSentence(p.restoring) ? <p className="muted restoring">{restoringSentence(p.restoring)}</p> : null}
      {p.message ? <p>{p.message}</p> : null}
      {active ? (
        <button type="button" className="btn btn-small" onClick={() => void run((c) => c.call('cancelRestore', { params: { id: p.id } }), 'Restore stopped. Files already back stay back.')}>
          Stop
        </button>
      ) : null}
    </div>
  );
}

function RestoreMissingCard() {
  const { status, restore } = useApp(useShallow((s) => ({ status: s.status, restore: s.restore })));
  const { error, unavailable, start } = useRestoreAction();
  // what "Bring back all" restores: the engine leaves out the folders the burst guard holds
  const missing = status ? missingToOffer(status) : 0;
  const holds = status?.guard?.holds ?? [];
  const heldMissing = holds.some((h) => h.missing > 0);
  return (
    <section className="card restore-card" aria-labelledby="missing-h">
      <h2 id="missing-h">Everything that is missing</h2>
      {holds.map((h) => (
        <div key={h.id} className="error-note" role="note">
          <p>{heldFolderNote(h, formatTime)}</p>
          <a className="btn btn-small" href="#/overview">
            Open the Overview
          </a>
        </div>
      ))}
      {missing > 0 ? (
        <p className="restore-big">
          {formatCount(missing)} {plural(missing, 'file', 'files')}
          {heldMissing ? ' of the other folders' : ''} {missing === 1 ? 'is' : 'are'} no longer on this computer. Each comes back from the first destination that has a good copy.
        </p>
      ) : heldMissing ? (
        <p>Nothing else is missing: every file of the other folders is on this computer.</p>
      ) : (
        <p>No file is missing: every file the backup knows is on this computer.</p>
      )}
      <button type="button" className="btn btn-primary" disabled={missing === 0} onClick={() => void start(() => api().call('restoreMissing', { body: {} }), 'Restore started. Files come back from the NAS first, then from the cloud.')}>
        Bring back {missing > 0 ? `all ${formatCount(missing)}` : 'missing files'}
      </button>
      {unavailable ? <NotAvailable feature="Restoring" /> : null}
      {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
      {restore ? <RestoreProgressView p={restore} /> : null}
    </section>
  );
}

function MissingFiles() {
  const [text, setText] = useState('');
  const [q, setQ] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setQ(text.trim()), 250);
    return () => clearTimeout(t);
  }, [text]);
  // the held folders' files are left out, as from the count above; listed again once a hold ends
  const heldMissing = useApp((s) => (s.status?.guard?.holds ?? []).some((h) => h.missing > 0));
  const holdIds = useApp((s) => (s.status?.guard?.holds ?? []).map((h) => h.id).join(' '));
  const key = JSON.stringify({ local: 'missing', q, holdIds });
  const fetchPage = useCallback((offset: number, limit: number, signal: AbortSignal) => api().call('queue', { query: { state: 'all', local: 'missing', held: 'exclude', q: q || undefined, offset, limit } }, signal), [q]);
  const list = usePagedList<FileRecord>(key, fetchPage);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [otherFolder, setOtherFolder] = useState(false);
  const [to, setTo] = useState('');
  const { error, unavailable, start } = useRestoreAction();
  const scrollRef = useRef<HTMLDivElement>(null);
  const total = list.total ?? 0;
  const v = useVirtualizer({ count: total, getScrollElement: () => scrollRef.current, estimateSize: () => ROW, overscan: 8 });
  const items = v.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  const { ensure } = list;
  useEffect(() => {
    const t = setTimeout(() => ensure(first, last), 40);
    return () => clearTimeout(t);
  }, [first, last, ensure]);

  // Files that go missing or come back: re-read the visible rows, at most every 2 s.
  const { refresh } = list;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const unsub = subscribeEvents((ev) => {
      if (ev.type !== 'file' || (ev.change !== 'missing' && ev.change !== 'restored' && ev.change !== 'added')) return;
      timer ??= setTimeout(() => {
        timer = null;
        refresh();
      }, 2000);
    });
    return () => {
      unsub();
      if (timer) clearTimeout(timer);
    };
  }, [refresh]);

  const toggle = (k: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(k)) n.delete(k);
      else n.add(k);
      return n;
    });

  return (
    <section className="card" aria-labelledby="pick-h">
      <h2 id="pick-h">Choose files to bring back</h2>
      <p className="muted">
        {isElectron() ? 'Tick files and press Restore, or drag a file from the list to a folder on this computer.' : 'Tick files and press Restore, or drag a file from the list to your desktop to download it.'}
      </p>
      <div className="filters">
        <label className="grow">
          <span>Find</span>
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="Part of a file or folder name" />
        </label>
      </div>
      {list.error ? <ErrorNote message={toShownError(list.error).message} /> : null}
      <p className="list-count" role="status">
        {list.total === null ? 'Loading…' : `${formatCount(list.total)} missing ${plural(list.total, 'file', 'files')}${heldMissing ? ' of the other folders' : ''}`}
        {selected.size > 0 ? ` · ${formatCount(selected.size)} ticked` : ''}
      </p>
      <div ref={scrollRef} className={`vlist vlist-short${list.total === 0 ? ' vlist-empty' : ''}`} tabIndex={list.total ? 0 : -1} aria-label="Missing files">
        <div role="list" aria-label="Missing files" style={{ height: v.getTotalSize(), position: 'relative' }}>
          {items.map((vi) => {
            const f = list.get(vi.index);
            return (
              <div key={vi.key} role="listitem" aria-setsize={total} aria-posinset={vi.index + 1} className={`vrow${vi.index % 2 ? ' odd' : ''}`} style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${vi.start}px)` }}>
                {f ? (
                  <div className="pick-row" {...dragOutProps(f.key)}>
                    <label className="check">
                      <input type="checkbox" checked={selected.has(f.key)} onChange={() => toggle(f.key)} />
                      <span className="file-name" title={f.key}>
                        {fileName(f.rel_path)}
                      </span>
                    </label>
                    <span className="muted mono ellipsis" title={f.key}>
                      {f.key}
                    </span>
                    <span className="muted">{formatBytes(f.size)}</span>
                    {!isElectron() ? (
                      <a className="btn btn-small" href={downloadUrl(f.key)} download={fileName(f.rel_path)}>
                        Download
                      </a>
                    ) : null}
                  </div>
                ) : (
                  <div className="vrow-placeholder" aria-hidden="true" />
                )}
              </div>
            );
          })}
        </div>
        {list.total === 0 ? <p className="empty-inline">No missing files{q ? ' match' : ''}.</p> : null}
      </div>
      <label className="check">
        <input type="checkbox" checked={otherFolder} onChange={(e) => setOtherFolder(e.target.checked)} /> Put them in another folder (the originals’ places stay as they are)
      </label>
      {otherFolder ? (
        <Field label="Restore into">{(p) => <FolderPicker value={to} onChange={setTo} inputProps={p} />}</Field>
      ) : null}
      <button
        type="button"
        className="btn btn-primary"
        disabled={selected.size === 0 || (otherFolder && !to.trim())}
        onClick={() =>
          void start(() => api().call('restoreFiles', { body: { keys: [...selected], to: otherFolder ? to.trim() : undefined } }), `Restoring ${formatCount(selected.size)} ${plural(selected.size, 'file', 'files')}.`).then(() => setSelected(new Set()))
        }
      >
        Restore {selected.size > 0 ? formatCount(selected.size) : ''} ticked {plural(selected.size, 'file', 'files')}
      </button>
      {unavailable ? <NotAvailable feature="Restoring chosen files" /> : null}
      {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
    </section>
  );
}

function FolderAsOf() {
  const roots = useApp((s) => s.roots) ?? [];
  const [root, setRoot] = useState('');
  const [sub, setSub] = useState('');
  const [when, setWhen] = useState('');
  const [otherFolder, setOtherFolder] = useState(true);
  const [to, setTo] = useState('');
  const { error, unavailable, start } = useRestoreAction();
  const rootId = root || roots[0]?.id || '';
  const at = when ? new Date(when).getTime() : NaN;
  return (
    <section className="card" aria-labelledby="asof-h">
      <h2 id="asof-h">A folder as it was on a day</h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          const clean = sub.trim().replace(/^\/+|\/+$/g, '');
          const prefix = `${rootId}/${clean ? `${clean}/` : ''}`;
          void start(() => api().call('restoreFiles', { body: { prefix, at, to: otherFolder ? to.trim() : undefined } }), `Restoring ${prefix} as it was on ${formatTime(at)}.`);
        }}
      >
        <Field label="Folder">
          {(p) => (
            <select {...p} value={rootId} onChange={(e) => setRoot(e.target.value)}>
              {roots.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Sub-folder (optional)" hint="e.g. 2024/Summer exhibition">
          {(p) => <input {...p} type="text" value={sub} onChange={(e) => setSub(e.target.value)} />}
        </Field>
        <Field label="As it was on">{(p) => <input {...p} type="datetime-local" value={when} onChange={(e) => setWhen(e.target.value)} max={new Date().toISOString().slice(0, 16)} />}</Field>
        <label className="check">
          <input type="checkbox" checked={otherFolder} onChange={(e) => setOtherFolder(e.target.checked)} /> Into another folder (recommended: nothing here is replaced)
        </label>
        {otherFolder ? <Field label="Restore into">{(p) => <FolderPicker value={to} onChange={setTo} inputProps={p} />}</Field> : null}
        <button type="submit" className="btn btn-primary" disabled={!rootId || !Number.isFinite(at) || (otherFolder && !to.trim())}>
          Restore this folder
        </button>
        {unavailable ? <NotAvailable feature="Restoring a folder as it was" /> : null}
        {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
      </form>
    </section>
  );
}

function Versions() {
  const [text, setText] = useState('');
  const [matches, setMatches] = useState<FileRecord[] | null>(null);
  const [file, setFile] = useState<FileRecord | null>(null);
  const [versions, setVersions] = useState<VersionInfo[] | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [error, setError] = useState<ShownError | null>(null);
  const targets = useApp((s) => s.targets);
  const action = useRestoreAction();

  useEffect(() => {
    const q = text.trim();
    if (q.length < 2) {
      setMatches(null);
      return;
    }
    const ctrl = new AbortController();
    const t = setTimeout(() => {
      api()
        .call('queue', { query: { state: 'all', q, limit: 20 } }, ctrl.signal)
        .then((p) => setMatches(p.items))
        .catch(() => undefined);
    }, 250);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [text]);

  const pick = async (f: FileRecord) => {
    setFile(f);
    setVersions(null);
    setError(null);
    try {
      setVersions((await api().call('listVersions', { query: { key: f.key } })).versions);
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
      else setError(toShownError(e));
    }
  };

  return (
    <section className="card" aria-labelledby="versions-h">
      <h2 id="versions-h">Earlier versions of a file</h2>
      <Field label="File" hint="Type part of its name.">
        {(p) => <input {...p} type="search" value={text} onChange={(e) => setText(e.target.value)} />}
      </Field>
      {matches && !file ? (
        <ul className="pick-list">
          {matches.length === 0 ? <li className="muted">No file matches.</li> : null}
          {matches.map((m) => (
            <li key={m.key}>
              <button type="button" className="link-button" onClick={() => void pick(m)}>
                {m.key}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {file ? (
        <div>
          <p>
            <strong className="break">{file.key}</strong>{' '}
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setFile(null)}>
              Choose another
            </button>
          </p>
          {unavailable ? <NotAvailable feature="Earlier versions" /> : null}
          {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
          {versions && versions.length === 0 ? <p>Only the current version exists.</p> : null}
          {versions && versions.length > 0 ? (
            <table className="table">
              <caption className="visually-hidden">Versions of {file.key}</caption>
              <thead>
                <tr>
                  <th scope="col">Saved</th>
                  <th scope="col">Size</th>
                  <th scope="col">Where</th>
                  <th scope="col">
                    <span className="visually-hidden">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.id}>
                    <td>
                      {formatTime(v.saved_at)}
                      {v.current ? ' (current)' : ''}
                      {v.deleted ? ' (before it was deleted)' : ''}
                    </td>
                    <td>{formatBytes(v.size)}</td>
                    <td>{targets?.find((t) => t.id === v.target_id)?.label ?? v.target_id}</td>
                    <td>
                      {!v.current ? (
                        <button type="button" className="btn btn-small" onClick={() => void action.start(() => api().call('restoreVersion', { body: { key: file.key, version_id: v.id } }), `Restoring the version of ${formatTime(v.saved_at)}. The current file is kept as a version.`)}>
                          Restore this version
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {action.unavailable ? <NotAvailable feature="Restoring a version" /> : null}
          {action.error ? <ErrorNote message={action.error.message} detail={action.error.detail} /> : null}
        </div>
      ) : null}
    </section>
  );
}
