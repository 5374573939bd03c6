import { useShallow } from 'zustand/react/shallow';
import type { SyncStatus, TargetInfo, TargetStatus } from '../../../shared/api';
import { HealthBadge, PageHeader, ProgressBar, TARGET_STATE_WORDS, type Health } from '../components/ui';
import { cardState, missingToOffer } from '../../../shared/status';
import { fileName, formatBytes, formatCount, formatEta, formatRate, formatTime, plural } from '../lib/format';
import { useApp, type Transfer } from '../store';

export function OverviewPage() {
  const { status, targets, transfers, phase } = useApp(useShallow((s) => ({ status: s.status, targets: s.targets, transfers: s.transfers, phase: s.phase })));
  if (!status) return <PageHeader title="Overview" />;
  const health: Health = phase === 'lost' ? 'offline' : status.health;
  const ordered = orderTargets(status, targets);
  return (
    <>
      <PageHeader title="Overview" />
      <section className={`hero hero-${health}`} aria-labelledby="summary">
        <HealthBadge health={health} />
        <p id="summary" className="hero-sentence" aria-live="polite">
          {status.summary}
        </p>
        {phase === 'lost' ? <p className="muted">This is the last state the engine reported; it is not answering right now.</p> : null}
        <HeroActions status={status} />
      </section>

      <section aria-label="The copies" className="copies">
        <LocalCard status={status} />
        {ordered.map(({ id, info, st }) => (
          <TargetCard key={id} id={id} info={info} st={st} total={status.total_files} />
        ))}
        {ordered.length === 0 ? (
          <div className="card copy-card copy-card-empty">
            <h2>No destinations yet</h2>
            <p>Add the NAS and a cloud storage so every file has three copies.</p>
            <a className="btn btn-primary" href="#/destinations">
              Add a destination
            </a>
          </div>
        ) : null}
      </section>

      <div className="overview-grid">
        <Transfers transfers={transfers} targets={targets} status={status} />
        <Disks status={status} />
      </div>
      <RecentProblems />
    </>
  );
}

function orderTargets(status: SyncStatus, targets: TargetInfo[] | null): { id: string; info?: TargetInfo; st: TargetStatus }[] {
  const ids = Object.keys(status.targets);
  const byId = new Map((targets ?? []).map((t) => [t.id, t]));
  return ids
    .map((id) => ({ id, info: byId.get(id), st: status.targets[id]! }))
    .sort((a, b) => (a.info?.priority ?? 0) - (b.info?.priority ?? 0) || a.id.localeCompare(b.id));
}

function HeroActions({ status }: { status: SyncStatus }) {
  const run = useApp((s) => s.run);
  // a held folder's missing files come back with "Put everything back", not here
  const missing = missingToOffer(status);
  return (
    <div className="hero-actions">
      {(status.guard?.holds ?? []).map((h) => (
        // the burst guard holds a folder back: the operator's two answers
        <span key={h.id} className="hero-actions" role="group" aria-label={`Changes held back in ${h.root_label}`}>
          <button
            type="button"
            className="btn btn-primary"
            onClick={() => {
              const ok = window.confirm(
                `Put the ${formatCount(h.files)} files of ${h.root_label} back as they were at ${formatTime(h.since)}? The suspicious new files are moved to Triplicate's quarantine folder, not deleted.`,
              );
              if (ok) void run((c) => c.call('guardRollback', { body: { hold: h.id } }), `Putting ${h.root_label} back as it was at ${formatTime(h.since)}.`);
            }}
          >
            Put everything back as it was at {formatTime(h.since)}
          </button>
          <button type="button" className="btn" onClick={() => void run((c) => c.call('guardAccept', { body: { hold: h.id } }), `The changes in ${h.root_label} are backed up.`)}>
            These changes are mine: back them up
          </button>
        </span>
      ))}
      {status.failed > 0 ? (
        <button type="button" className="btn btn-primary" onClick={() => void run((c) => c.call('retryFailed', { body: {} }), 'Trying the failed files again.')}>
          Retry all failed ({formatCount(status.failed)})
        </button>
      ) : null}
      {missing > 0 ? (
        <a className="btn" href="#/restore">
          Bring back {formatCount(missing)} missing {plural(missing, 'file', 'files')}
        </a>
      ) : null}
      {status.paused ? (
        <button type="button" className="btn btn-primary" onClick={() => void run((c) => c.call('resumeAll'), 'Backups resumed.')}>
          Resume backups
        </button>
      ) : (
        <>
          <button type="button" className="btn" onClick={() => void run((c) => c.call('initialSync', { body: {} }), 'Looking for new and changed files.')}>
            Back up now
          </button>
          <button type="button" className="btn btn-ghost" onClick={() => void run((c) => c.call('pauseAll'), 'Backups paused. Nothing is copied until you resume.')}>
            Pause
          </button>
        </>
      )}
    </div>
  );
}

function LocalCard({ status }: { status: SyncStatus }) {
  const present = status.total_files - status.missing_local_files;
  return (
    <article className="card copy-card" aria-labelledby="copy-local">
      <div className="copy-kind">Copy 1</div>
      <h2 id="copy-local">This computer</h2>
      <p className="copy-big">
        {formatCount(present)} <span>{plural(present, 'file', 'files')}</span>
      </p>
      <p className="copy-bytes">{formatBytes(status.total_size_bytes)}</p>
      <ProgressBar value={present} max={status.total_files || 1} label="Files on this computer" />
      {status.missing_local_files > 0 ? (
        <p className="copy-warn">
          {formatCount(status.missing_local_files)} {plural(status.missing_local_files, 'file is', 'files are')} missing here.
          {missingToOffer(status) === status.missing_local_files ? (
            <>
              {' '}
              <a href="#/restore">Bring them back</a>
            </>
          ) : null}
        </p>
      ) : (
        <p className="copy-ok">{status.scanning ? 'Looking for new files…' : 'The originals'}</p>
      )}
    </article>
  );
}

function TargetCard({ id, info, st, total }: { id: string; info?: TargetInfo; st: TargetStatus; total: number }) {
  const label = info?.label ?? st.label ?? id;
  const state = cardState(st);
  const kind = info?.kind === 'folder' ? 'Folder or disk' : info && 'preset' in info && ['minio', 'rustfs'].includes(info.preset) ? 'On site' : info ? 'Off site' : '';
  return (
    <article className={`card copy-card state-${state}`} aria-labelledby={`copy-${id}`}>
      <div className="copy-kind">{kind}</div>
      <h2 id={`copy-${id}`}>{label}</h2>
      <p className="copy-big">
        {formatCount(st.synced_count)} <span>{plural(st.synced_count, 'file', 'files')}</span>
      </p>
      <p className="copy-bytes">{formatBytes(st.synced_bytes)}</p>
      <ProgressBar value={st.synced_count} max={total || 1} label={`Files copied to ${label}`} />
      <p className={`target-state target-${state}`}>
        <span className="dot" aria-hidden="true" /> {TARGET_STATE_WORDS[state]}
        {st.uploading > 0 && st.rate_bps > 0 ? ` · ${formatRate(st.rate_bps)}` : ''}
      </p>
      {st.pending + st.uploading > 0 ? (
        <p>
          {formatCount(st.pending + st.uploading)} {plural(st.pending + st.uploading, 'file', 'files')} to copy
        </p>
      ) : null}
      {st.held > 0 ? (
        <p className="copy-warn">
          {formatCount(st.held)} {plural(st.held, 'change', 'changes')} held
        </p>
      ) : null}
      {st.failed > 0 ? (
        <p className="copy-warn">
          {formatCount(st.failed)} {plural(st.failed, 'file', 'files')} failed. <a href="#/activity">See why</a>
        </p>
      ) : null}
      {st.state === 'offline' && st.reason ? (
        <div className="copy-reason">
          <p>{st.reason}</p>
          {st.next_try_at && !/tries again|next try/i.test(st.reason) ? <p className="muted">Next try at {formatTime(st.next_try_at)}.</p> : null}
          {st.detail ? (
            <details>
              <summary>Technical detail</summary>
              <pre>{st.detail}</pre>
            </details>
          ) : null}
        </div>
      ) : null}
    </article>
  );
}

function Transfers({ transfers, targets, status }: { transfers: Transfer[]; targets: TargetInfo[] | null; status: SyncStatus }) {
  const labelOf = (id: string) => targets?.find((t) => t.id === id)?.label ?? status.targets[id]?.label ?? id;
  const tc = status.transcoding;
  return (
    <section className="card" aria-labelledby="transfers-h">
      <h2 id="transfers-h">Copying now</h2>
      {transfers.length === 0 && !tc?.current ? <p className="muted">Nothing is being copied at the moment.</p> : null}
      <ul className="transfers">
        {transfers.slice(0, 8).map((t) => {
          const eta = t.rate > 0 ? (t.total - t.bytes) / t.rate : undefined;
          return (
            <li key={t.key}>
              <div className="transfer-line">
                <span className="transfer-name" title={t.file_key}>
                  {fileName(t.file_key)}
                </span>
                <span className="muted">to {labelOf(t.target_id)}</span>
              </div>
              <ProgressBar value={t.bytes} max={t.total} label={`${fileName(t.file_key)} to ${labelOf(t.target_id)}`} />
              <div className="transfer-meta muted">
                {formatBytes(t.bytes)} of {formatBytes(t.total)}
                {t.rate > 0 ? ` · ${formatRate(t.rate)}` : ''}
                {eta !== undefined ? ` · ${formatEta(eta)} left` : ''}
              </div>
            </li>
          );
        })}
      </ul>
      {transfers.length > 8 ? <p className="muted">and {transfers.length - 8} more</p> : null}
      {tc?.current ? (
        <div className="transcode-now">
          <p>
            Converting <strong title={tc.current.file_key}>{fileName(tc.current.file_key)}</strong> to a video every device can play
            {tc.queued > 0 ? ` (${tc.queued} more waiting)` : ''}
          </p>
          <ProgressBar value={tc.current.percent} max={100} label="Video conversion" />
          {tc.current.eta_seconds ? <p className="muted">{formatEta(tc.current.eta_seconds)} left</p> : null}
        </div>
      ) : null}
    </section>
  );
}

function Disks({ status }: { status: SyncStatus }) {
  const disks = status.disk ?? [];
  return (
    <section className="card" aria-labelledby="disks-h">
      <h2 id="disks-h">Disk space here</h2>
      {disks.length === 0 ? <p className="muted">Not reported by the engine.</p> : null}
      <ul className="disks">
        {disks.map((d) => {
          const used = d.total_bytes - d.free_bytes;
          const low = d.total_bytes > 0 && (d.free_bytes / d.total_bytes < 0.05 || d.free_bytes < 2e9);
          return (
            <li key={d.path} className={low ? 'disk-low' : undefined}>
              <div className="transfer-line">
                <span className="mono" title={d.path}>
                  {d.path}
                </span>
                <span>{formatBytes(d.free_bytes)} free</span>
              </div>
              <ProgressBar value={used} max={d.total_bytes} label={`Disk ${d.path} used`} />
              <div className="muted">
                {formatBytes(used)} of {formatBytes(d.total_bytes)} used{low ? ' · nearly full: new files may not fit' : ''}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function RecentProblems() {
  const events = useApp((s) => s.recentEvents);
  const problems = events.filter((e) => e.level !== 'info').slice(0, 5);
  if (problems.length === 0) return null;
  return (
    <section className="card" aria-labelledby="problems-h">
      <h2 id="problems-h">Recent problems</h2>
      <ul className="event-list">
        {problems.map((e) => (
          <li key={e.id} className={`event-${e.level}`}>
            <span className="muted">{formatTime(e.ts)}</span> {e.message}
          </li>
        ))}
      </ul>
      <a href="#/activity">Open Activity</a>
    </section>
  );
}
