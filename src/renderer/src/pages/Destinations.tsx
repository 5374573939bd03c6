import { useMemo, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { ProviderPresetInfo, TargetInfo, TargetStatus, TargetTested, TestConnectionResult, TestFinding } from '../../../shared/api';
import { isMasked, s3TargetSchema, folderTargetSchema } from '../../../shared/config';
import { cardState, heldTargetNote } from '../../../shared/status';
import { FolderPicker } from '../components/FolderPicker';
import { ConfirmDialog, Dialog, EmptyState, ErrorNote, Field, Loading, PageHeader, ProgressBar, TARGET_STATE_WORDS } from '../components/ui';
import { toShownError, type ShownError } from '../lib/errors';
import { formatBytes, formatCount, formatRate, formatTime, plural, sendingSentence, slugify } from '../lib/format';
import { api, useApp } from '../store';

/** Used only when the engine has no `presets` route: names without prices. */
const FALLBACK_PRESETS: ProviderPresetInfo[] = [
  { id: 'minio', label: 'MinIO (NAS)', pathStyle: true, region: 'us-east-1', endpointHint: 'http://nas.local:9000', versioning: true },
  { id: 'rustfs', label: 'RustFS (NAS)', pathStyle: true, region: 'us-east-1', endpointHint: 'http://nas.local:9000', versioning: true },
  { id: 'r2', label: 'Cloudflare R2', pathStyle: false, region: 'auto', endpointHint: 'https://<account id>.r2.cloudflarestorage.com', versioning: false },
  { id: 'aws', label: 'Amazon S3', pathStyle: false, region: 'eu-central-1', endpointHint: '(leave empty)', versioning: true },
  { id: 'b2', label: 'Backblaze B2', pathStyle: false, region: 'eu-central-003', endpointHint: 'https://s3.eu-central-003.backblazeb2.com', versioning: true },
  { id: 'wasabi', label: 'Wasabi', pathStyle: false, region: 'eu-central-1', endpointHint: 'https://s3.eu-central-1.wasabisys.com', versioning: true },
  { id: 'other', label: 'Other storage', pathStyle: true, region: 'us-east-1', endpointHint: 'https://storage.example.org', versioning: false },
  { id: 'folder', label: 'A folder or disk (mounted share, USB disk)', pathStyle: false, region: '', endpointHint: '', versioning: false },
];

/** Operators do not need protocol names: "Other S3-compatible service" reads "Other compatible storage". */
function plainPreset(p: ProviderPresetInfo): ProviderPresetInfo {
  return { ...p, label: p.label.replace(/\bS3[- ]compatible service\b/i, 'compatible storage').replace(/\bS3[- ]compatible\b/i, 'compatible') };
}

export function estimateMonthlyUsd(bytes: number, usdPerGbMonth: number | undefined): number | null {
  if (usdPerGbMonth === undefined) return null;
  return (bytes / 1e9) * usdPerGbMonth;
}

function formatUsd(v: number): string {
  if (v < 0.01) return 'less than $0.01';
  return `$${v < 10 ? v.toFixed(2) : v.toFixed(0)}`;
}

export function DestinationsPage() {
  const { targets, status, presets, run } = useApp(useShallow((s) => ({ targets: s.targets, status: s.status, presets: s.presets, run: s.run })));
  const [editing, setEditing] = useState<TargetInfo | 'new' | null>(null);
  const [removing, setRemoving] = useState<TargetInfo | null>(null);
  const [testing, setTesting] = useState<{ label: string; result: TestConnectionResult | null; error?: ShownError } | null>(null);
  const presetList = (presets ?? FALLBACK_PRESETS).map(plainPreset);
  const sorted = [...(targets ?? [])].sort((a, b) => a.priority - b.priority);

  const test = async (t: TargetInfo) => {
    setTesting({ label: t.label, result: null });
    try {
      setTesting({ label: t.label, result: await api().call('testTargetById', { params: { id: t.id } }) });
    } catch (e) {
      setTesting({ label: t.label, result: null, error: toShownError(e) });
    }
  };

  return (
    <>
      <PageHeader title="Destinations">
        <button type="button" className="btn btn-primary" onClick={() => setEditing('new')}>
          Add a destination
        </button>
      </PageHeader>
      <p className="lead">Where the extra copies go: one on site (the NAS), one off site (the cloud). Nothing waits for the slowest one.</p>
      {!targets ? <Loading what="destinations" /> : null}
      {targets && targets.length === 0 ? (
        <EmptyState title="No destinations yet">
          <p>Add your NAS first, then a cloud storage.</p>
        </EmptyState>
      ) : null}
      <ul className="card-list">
        {sorted.map((t) => {
          const st: TargetStatus | undefined = status?.targets[t.id] ?? t.status;
          const preset = presetList.find((p) => p.id === (t.kind === 'folder' ? 'folder' : t.preset));
          const nowUsd = st ? estimateMonthlyUsd(st.synced_bytes, preset?.storageUsdPerGbMonth) : null;
          const fullUsd = status ? estimateMonthlyUsd(status.total_size_bytes, preset?.storageUsdPerGbMonth) : null;
          const paused = st?.state === 'paused';
          return (
            <li key={t.id} className={`card target-card state-${st?.state ?? 'unknown'}`}>
              <div className="root-main">
                <h2>{t.label}</h2>
                <p className="muted">
                  {preset?.label ?? (t.kind === 'folder' ? 'Folder' : 'Storage')}
                  {t.kind === 'folder' ? <span className="mono"> · {t.path}</span> : t.endpoint ? <span className="mono"> · {hostOf(t.endpoint)}</span> : null}
                  {!t.enabled ? ' · turned off' : ''}
                </p>
                {st ? (
                  <>
                    <p className={`target-state target-${cardState(st)}`}>
                      <span className="dot" aria-hidden="true" /> {TARGET_STATE_WORDS[cardState(st)]}
                      {st.rate_bps > 0 ? ` · ${formatRate(st.rate_bps)}` : ''}
                    </p>
                    <p>
                      <strong>{formatCount(st.synced_count)}</strong> {plural(st.synced_count, 'file', 'files')} · {formatBytes(st.synced_bytes)} stored
                      {st.pending + st.uploading > 0 ? ` · ${formatCount(st.pending + st.uploading)} to copy` : ''}
                      {st.failed > 0 ? ` · ${formatCount(st.failed)} failed` : ''}
                    </p>
                    {sendingSentence(st.sending) ? <p className="muted sending">{sendingSentence(st.sending)}</p> : null}
                    {status ? <ProgressBar value={st.synced_count} max={status.total_files || 1} label={`Files on ${t.label}`} /> : null}
                    {t.enabled && status?.guard?.holds.length ? (
                      <p className="copy-warn">
                        {heldTargetNote(st, status.guard.holds, formatTime)} <a href="#/overview">See the Overview</a>
                      </p>
                    ) : null}
                    {st.tested ? <KeyWarnings tested={st.tested} /> : null}
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
                  </>
                ) : null}
                {nowUsd !== null ? (
                  <p className="cost">
                    Estimated storage cost: about <strong>{formatUsd(nowUsd)}</strong> a month now
                    {fullUsd !== null && fullUsd > nowUsd * 1.05 ? `, about ${formatUsd(fullUsd)} once everything is copied` : ''}. Downloads and requests may cost extra.
                  </p>
                ) : null}
              </div>
              <div className="root-actions">
                <button type="button" className="btn" onClick={() => void test(t)}>
                  Test connection
                </button>
                {paused ? (
                  <button type="button" className="btn" onClick={() => void run((c) => c.call('resumeTarget', { params: { id: t.id } }), `${t.label} resumed.`)}>
                    Resume
                  </button>
                ) : (
                  <button type="button" className="btn" onClick={() => void run((c) => c.call('pauseTarget', { params: { id: t.id } }), `${t.label} paused.`)}>
                    Pause
                  </button>
                )}
                <button type="button" className="btn" onClick={() => setEditing(t)}>
                  Edit
                </button>
                <button type="button" className="btn btn-ghost" onClick={() => setRemoving(t)}>
                  Remove
                </button>
              </div>
            </li>
          );
        })}
      </ul>
      {editing ? <TargetDialog target={editing === 'new' ? undefined : editing} presets={presetList} onClose={() => setEditing(null)} /> : null}
      {testing ? (
        <Dialog title={`Test connection: ${testing.label}`} onClose={() => setTesting(null)}>
          <div className="dialog-body">
            {testing.error ? <ErrorNote message={testing.error.message} detail={testing.error.detail} /> : testing.result ? <TestSteps result={testing.result} /> : <Loading what="the test" />}
          </div>
        </Dialog>
      ) : null}
      {removing ? (
        <ConfirmDialog
          title={`Remove ${removing.label}?`}
          confirmLabel="Remove destination"
          danger
          onCancel={() => setRemoving(null)}
          onConfirm={async () => {
            const t = removing;
            setRemoving(null);
            await run((c) => c.call('removeTarget', { params: { id: t.id } }), `${t.label} removed.`);
            void useApp.getState().refreshTargets();
          }}
        >
          <p>Triplicate stops copying files to {removing.label}.</p>
          <p>
            <strong>Nothing is deleted:</strong> the copies already there stay, and you can add it again later.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

/** What the last Test connection found that stays true until the key changes: "This key can delete the backups." */
function KeyWarnings({ tested }: { tested: TargetTested }) {
  return (
    <>
      {tested.findings
        .filter((f) => f.short)
        .map((f) => (
          <div key={f.message} className="key-warn" role="note">
            <p>
              <span aria-hidden="true">⚠</span> {f.short}
              <RecipeLink link={f.link} />
            </p>
            <details>
              <summary>Why</summary>
              <p>{f.message}</p>
              <p className="muted">Found by Test connection at {formatTime(tested.at)}. This stays until the key or the settings change, or a new test finds otherwise.</p>
            </details>
          </div>
        ))}
    </>
  );
}

/** The provider's recipe after a finding's sentence, opened in the browser. */
function RecipeLink({ link }: { link?: TestFinding['link'] }) {
  if (!link) return null;
  return (
    <>
      {' '}
      <a href={link.url} target="_blank" rel="noreferrer">
        {link.text}
      </a>
    </>
  );
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

const STEP_WORDS: Record<string, string> = {
  connect: 'Reach the address',
  auth: 'Sign in with the keys',
  bucket: 'Find the storage space',
  put: 'Write a test file',
  head: 'Check the test file',
  get: 'Read it back',
  delete: 'Remove the test file',
  lock: 'Check Object Lock on the bucket',
};

export function TestSteps({ result }: { result: TestConnectionResult }) {
  return (
    <div className={`test-result ${result.ok ? 'ok' : 'bad'}`}>
      <p className="test-message" role="status">
        {result.ok ? '✓ ' : '✕ '}
        {result.message}
      </p>
      {result.findings?.length ? (
        <ul className="test-findings">
          {result.findings.map((f) => (
            // A warning, not a failure: the backup works (amber, like a copy that is behind).
            <li key={f.message} className={`finding-${f.level}`}>
              <span aria-hidden="true">{f.level === 'warn' ? '⚠' : '✓'}</span> {f.message}
              <RecipeLink link={f.link} />
            </li>
          ))}
        </ul>
      ) : null}
      <ol className="test-steps">
        {result.steps.map((s, i) => (
          <li key={`${s.step}-${i}`} className={s.ok ? 'ok' : 'bad'}>
            <span aria-hidden="true">{s.ok ? '✓' : '✕'}</span> {STEP_WORDS[s.step] ?? s.step}
            <span className="visually-hidden">{s.ok ? ': worked' : ': failed'}</span>
            {s.note ? <span> · {s.note}</span> : null}
            <span className="muted"> · {s.ms} ms</span>
            {s.error ? (
              <details className="step-error">
                <summary>Technical detail</summary>
                <pre>{s.error}</pre>
              </details>
            ) : null}
          </li>
        ))}
      </ol>
    </div>
  );
}

type Form = {
  preset: string;
  label: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  region: string;
  prefix: string;
  pathStyle: boolean;
  path: string;
  priority: number;
  /** Most files at once, as typed; '' = automatic (the provider's ceiling). */
  concurrency: string;
  enabled: boolean;
  immutableDays: number;
};

function initialForm(t: TargetInfo | undefined, presets: ProviderPresetInfo[]): Form {
  if (t?.kind === 's3')
    return {
      preset: t.preset,
      label: t.label,
      endpoint: t.endpoint ?? '',
      accessKeyId: t.credentials.accessKeyId,
      secretAccessKey: t.credentials.secretAccessKey,
      bucket: t.bucket,
      region: t.region,
      prefix: t.prefix,
      pathStyle: t.pathStyle ?? presets.find((p) => p.id === t.preset)?.pathStyle ?? false,
      path: '',
      priority: t.priority,
      concurrency: t.concurrency === undefined ? '' : String(t.concurrency),
      enabled: t.enabled,
      immutableDays: t.immutableDays ?? 0,
    };
  if (t?.kind === 'folder')
    return { preset: 'folder', label: t.label, endpoint: '', accessKeyId: '', secretAccessKey: '', bucket: '', region: '', prefix: t.prefix, pathStyle: false, path: t.path, priority: t.priority, concurrency: t.concurrency === undefined ? '' : String(t.concurrency), enabled: t.enabled, immutableDays: 0 };
  const p = presets[0] ?? FALLBACK_PRESETS[0]!;
  return { preset: p.id, label: '', endpoint: '', accessKeyId: '', secretAccessKey: '', bucket: '', region: p.region, prefix: '', pathStyle: p.pathStyle, path: '', priority: 10, concurrency: '', enabled: true, immutableDays: 0 };
}

function TargetDialog({ target, presets, onClose }: { target?: TargetInfo; presets: ProviderPresetInfo[]; onClose: () => void }) {
  const targets = useApp((s) => s.targets) ?? [];
  const [f, setF] = useState<Form>(() => initialForm(target, presets));
  const [advanced, setAdvanced] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<ShownError | null>(null);
  const [testResult, setTestResult] = useState<TestConnectionResult | null>(null);
  const [busy, setBusy] = useState<'' | 'test' | 'save'>('');
  const preset = presets.find((p) => p.id === f.preset);
  const isFolder = f.preset === 'folder';
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((x) => ({ ...x, [k]: v }));

  const id = useMemo(() => {
    if (target) return target.id;
    const base = slugify(f.label || preset?.label || 'destination', 'destination');
    let candidate = base;
    for (let i = 2; targets.some((t) => t.id === candidate); i++) candidate = `${base.slice(0, 36)}-${i}`;
    return candidate;
  }, [target, f.label, preset, targets]);

  const body = (): Record<string, unknown> => {
    const cap = f.concurrency.trim();
    const common = { id, label: f.label.trim() || preset?.label || 'Destination', priority: f.priority, concurrency: cap === '' ? undefined : Number(cap), enabled: f.enabled };
    if (isFolder) return { ...common, kind: 'folder', path: f.path.trim(), prefix: f.prefix };
    return {
      ...common,
      kind: 's3',
      preset: f.preset,
      endpoint: f.endpoint.trim() || undefined,
      region: f.region.trim() || preset?.region || 'auto',
      bucket: f.bucket.trim(),
      prefix: f.prefix,
      pathStyle: f.pathStyle,
      credentials: { accessKeyId: f.accessKeyId.trim(), secretAccessKey: f.secretAccessKey },
      immutableDays: f.immutableDays,
    };
  };

  /** The same rules the engine applies (src/shared/config.ts), so mistakes show next to the field. */
  const validate = (): boolean => {
    const b = body();
    const r = isFolder ? folderTargetSchema.safeParse(b) : s3TargetSchema.safeParse(b);
    const errs: Record<string, string> = {};
    if (!r.success) for (const i of r.error.issues) errs[i.path.join('.')] ??= i.message;
    if (!isFolder && f.preset !== 'aws' && !f.endpoint.trim()) errs.endpoint = 'the address is needed for every provider but Amazon';
    if (!isFolder && !f.bucket.trim()) errs.bucket = 'Give the name of the bucket: without it Triplicate does not know where to put the copies.';
    setErrors(errs);
    if (Object.keys(errs).length > 0) {
      if (errs.region || errs.prefix) setAdvanced(true);
      return false;
    }
    return true;
  };

  const runTest = async () => {
    setError(null);
    setTestResult(null);
    if (!validate()) return;
    setBusy('test');
    try {
      setTestResult(await api().call('testTarget', { body: body() }));
    } catch (e) {
      setError(toShownError(e));
    } finally {
      setBusy('');
    }
  };

  const save = async () => {
    setError(null);
    if (!validate()) return;
    setBusy('save');
    try {
      // null clears a saved "at most": the engine then chooses up to the provider's ceiling
      if (target) await api().call('updateTarget', { params: { id: target.id }, body: { ...body(), concurrency: body().concurrency ?? null } });
      else await api().call('addTarget', { body: body() });
      useApp.getState().toast('success', target ? 'Destination saved.' : 'Destination added. Triplicate starts copying to it.');
      void useApp.getState().refreshTargets();
      onClose();
    } catch (e) {
      setError(toShownError(e));
    } finally {
      setBusy('');
    }
  };

  const secretHint = target && isMasked(f.secretAccessKey) ? 'Saved. Leave as it is to keep it, or type a new one.' : 'From the storage provider’s “access keys” page.';

  return (
    <Dialog title={target ? `Edit ${target.label}` : 'Add a destination'} onClose={onClose} wide>
      <form
        className="dialog-body form"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Field label="Kind of storage">
          {(p) => (
            <select
              {...p}
              value={f.preset}
              disabled={Boolean(target)}
              onChange={(e) => {
                const np = presets.find((x) => x.id === e.target.value);
                setF((x) => ({ ...x, preset: e.target.value, region: np?.region || x.region, pathStyle: np?.pathStyle ?? x.pathStyle }));
                setTestResult(null);
              }}
            >
              {presets.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.label}
                  {p.storageUsdPerGbMonth !== undefined ? ` · about $${(p.storageUsdPerGbMonth * 1000).toFixed(0)} per TB a month` : ''}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Name" hint="How it appears everywhere, e.g. “NAS” or “Cloud”." error={errors.label}>
          {(p) => <input {...p} type="text" value={f.label} maxLength={80} onChange={(e) => set('label', e.target.value)} placeholder={preset?.label} />}
        </Field>
        {isFolder ? (
          <Field label="Folder" hint="A mounted network share or a USB disk." error={errors.path}>
            {(p) => <FolderPicker value={f.path} onChange={(v) => set('path', v)} inputProps={p} />}
          </Field>
        ) : (
          <>
            <div className="form-row">
              <Field label="Address" hint={preset?.endpointHint ? `For example ${preset.endpointHint}` : undefined} error={errors.endpoint}>
                {(p) => <input {...p} type="url" className="mono" value={f.endpoint} onChange={(e) => set('endpoint', e.target.value)} spellCheck={false} autoComplete="off" />}
              </Field>
              <Field label="Bucket" hint="The storage space inside the account; make it at the provider first." error={errors.bucket}>
                {(p) => <input {...p} type="text" className="mono" value={f.bucket} onChange={(e) => set('bucket', e.target.value)} spellCheck={false} autoComplete="off" placeholder="museum-backup" />}
              </Field>
            </div>
            <div className="form-row">
              <Field label="Access key" error={errors['credentials.accessKeyId']}>
                {(p) => <input {...p} type="text" className="mono" value={f.accessKeyId} onChange={(e) => set('accessKeyId', e.target.value)} spellCheck={false} autoComplete="off" />}
              </Field>
              <Field label="Secret key" hint={secretHint} error={errors['credentials.secretAccessKey']}>
                {(p) => <input {...p} type="password" className="mono" value={f.secretAccessKey} onChange={(e) => set('secretAccessKey', e.target.value)} autoComplete="new-password" />}
              </Field>
            </div>
            {preset?.objectLock !== 'none' ? (
              <Field
                label="Undeletable for (days)"
                hint={
                  <>
                    Each copy and each kept version cannot be deleted or changed by anyone, this key included, for this many days after it is written (S3 Object Lock); 0 turns it off. It needs a bucket with Object Lock on, and a locked copy is
                    stored, and paid for, until its date even after its file is deleted here.
                    {f.immutableDays > 0 && preset?.objectLockNote ? ` ${preset.objectLockNote}` : ''}
                  </>
                }
                error={errors.immutableDays}
              >
                {(p) => <input {...p} type="number" min={0} max={3650} step={1} value={f.immutableDays} onChange={(e) => set('immutableDays', Number(e.target.value))} />}
              </Field>
            ) : null}
          </>
        )}
        <button type="button" className="btn btn-ghost btn-small" aria-expanded={advanced} onClick={() => setAdvanced((v) => !v)}>
          {advanced ? '▾' : '▸'} Advanced
        </button>
        {advanced ? (
          <div className="advanced">
            {!isFolder ? (
              <Field label="Region" error={errors.region}>
                {(p) => <input {...p} type="text" className="mono" value={f.region} onChange={(e) => set('region', e.target.value)} spellCheck={false} />}
              </Field>
            ) : null}
            <div className="form-row">
              <Field label="Sub-folder" hint='Optional, ends with "/", e.g. museum/' error={errors.prefix}>
                {(p) => <input {...p} type="text" className="mono" value={f.prefix} onChange={(e) => set('prefix', e.target.value)} spellCheck={false} />}
              </Field>
              <Field label="Order" hint="Lower numbers are read first when restoring." error={errors.priority}>
                {(p) => <input {...p} type="number" min={0} max={1000} value={f.priority} onChange={(e) => set('priority', Number(e.target.value))} />}
              </Field>
              <Field label="Files at once, at most" hint={`Empty: Triplicate chooses, up to ${preset?.maxConcurrency ?? 'its limit'}.`} error={errors.concurrency}>
                {(p) => <input {...p} type="number" min={1} max={64} placeholder="automatic" value={f.concurrency} onChange={(e) => set('concurrency', e.target.value)} />}
              </Field>
            </div>
            {!isFolder ? (
              <label className="check">
                <input type="checkbox" checked={f.pathStyle} onChange={(e) => set('pathStyle', e.target.checked)} /> Path-style addresses (most NAS servers need this)
              </label>
            ) : null}
            <label className="check">
              <input type="checkbox" checked={f.enabled} onChange={(e) => set('enabled', e.target.checked)} /> Copy files to this destination
            </label>
            <p className="muted">Identifier: <span className="mono">{id}</span></p>
          </div>
        ) : null}
        {testResult ? <TestSteps result={testResult} /> : null}
        {error ? <ErrorNote message={error.message} detail={[error.fields?.join('\n'), error.detail].filter(Boolean).join('\n') || undefined} /> : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className="btn" disabled={busy !== ''} onClick={() => void runTest()}>
            {busy === 'test' ? 'Testing…' : 'Test connection'}
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy !== ''}>
            {busy === 'save' ? 'Saving…' : target ? 'Save' : 'Add destination'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
