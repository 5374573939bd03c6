import { useEffect, useMemo, useState } from 'react';
import type { DesktopSettingsView, WebhookKindName, AppInfo } from '../../../preload/bridge';
import type { BandwidthConfig, BandwidthWindow, Config, Weekday } from '../../../shared/config';
import { STREAM_ROUTES } from '../../../shared/api';
import { ErrorNote, Field, Loading, NotAvailable, PageHeader } from '../components/ui';
import { bytesToMbit, describeLimit, mbitToBytes, weekGrid, WEEKDAY_NAMES, WEEKDAYS } from '../lib/bandwidth';
import { isNotAvailable, toShownError, type ShownError } from '../lib/errors';
import { formatTime } from '../lib/format';
import { isElectron } from '../lib/transport';
import { api, useApp } from '../store';

export function SettingsPage() {
  const conn = useApp((s) => s.conn);
  return (
    <>
      <PageHeader title="Settings" />
      {isElectron() ? <ThisComputer /> : <EngineNotifications />}
      <Bandwidth />
      <Transcoding />
      {conn?.kind === 'browser' ? <WebConsole /> : <WebConsolePassword />}
      <Logs />
      <Diagnostics />
    </>
  );
}

// ---------------------------------------------------------------------------------------------
function ThisComputer() {
  const [view, setView] = useState<DesktopSettingsView | null>(null);
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [kind, setKind] = useState<WebhookKindName | ''>('');
  const [quietOn, setQuietOn] = useState(false);
  const [quiet, setQuiet] = useState({ start: '22:00', end: '07:00' });
  const [test, setTest] = useState<{ ok: boolean; message: string } | null>(null);
  const bridge = window.triplicate!;
  useEffect(() => {
    void bridge.getDesktopSettings().then((v) => {
      setView(v);
      setQuietOn(Boolean(v.notifications.quietHours));
      if (v.notifications.quietHours) setQuiet(v.notifications.quietHours);
    });
    void bridge.getAppInfo().then(setInfo);
  }, [bridge]);
  const patch = async (p: Parameters<typeof bridge.setDesktopSettings>[0]) => {
    setError(null);
    try {
      setView(await bridge.setDesktopSettings(p));
      return true;
    } catch (e) {
      setError((e instanceof Error ? e.message : String(e)).replace(/^Error invoking remote method '[^']+': (Error: )?/, ''));
      return false;
    }
  };
  if (!view) return <Loading what="settings" />;
  return (
    <section className="card" aria-labelledby="pc-h">
      <h2 id="pc-h">This computer</h2>
      <label className="check">
        <input type="checkbox" checked={view.autoStart} disabled={!view.autoStartSupported} onChange={(e) => void patch({ autoStart: e.target.checked })} /> Start Triplicate when I sign in
        {!view.autoStartSupported ? <span className="muted"> (only in the installed app)</span> : null}
      </label>
      <label className="check">
        <input type="checkbox" checked={view.notifications.desktop} onChange={(e) => void patch({ notifications: { desktop: e.target.checked } })} /> Show a notification when something needs me
      </label>
      <p className="hint">Only for what you must act on: a destination failing for 15 minutes, files given up, a restore finished, a disk nearly full.</p>
      <label className="check">
        <input
          type="checkbox"
          checked={quietOn}
          onChange={(e) => {
            setQuietOn(e.target.checked);
            void patch({ notifications: { quietHours: e.target.checked ? quiet : null } });
          }}
        />{' '}
        Quiet hours (notifications arrive without sound)
      </label>
      {quietOn ? (
        <div className="form-row">
          <Field label="From">{(p) => <input {...p} type="time" value={quiet.start} onChange={(e) => setQuiet((q) => ({ ...q, start: e.target.value }))} onBlur={() => void patch({ notifications: { quietHours: quiet } })} />}</Field>
          <Field label="Until">{(p) => <input {...p} type="time" value={quiet.end} onChange={(e) => setQuiet((q) => ({ ...q, end: e.target.value }))} onBlur={() => void patch({ notifications: { quietHours: quiet } })} />}</Field>
        </div>
      ) : null}
      <h3>Tell someone else</h3>
      <p className="hint">Send the same messages to a phone or a team chat: ntfy, Slack or Healthchecks.io, or any address that accepts JSON.</p>
      {view.webhook.configured ? (
        <p>
          Messages go to <strong>{view.webhook.host}</strong> ({view.webhook.kind}).{' '}
          {!view.secretsProtected ? <span className="muted">This computer has no password store, so the address is saved unprotected.</span> : null}
        </p>
      ) : null}
      <form
        className="form"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await patch({ webhook: { url, kind: kind || undefined } })) setUrl('');
        }}
      >
        <div className="form-row">
          <Field label={view.webhook.configured ? 'New address' : 'Address'}>{(p) => <input {...p} type="url" className="mono" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://ntfy.sh/your-topic" />}</Field>
          <Field label="Service">
            {(p) => (
              <select {...p} value={kind} onChange={(e) => setKind(e.target.value as WebhookKindName | '')}>
                <option value="">Recognise from the address</option>
                <option value="ntfy">ntfy</option>
                <option value="slack">Slack</option>
                <option value="healthchecks">Healthchecks.io</option>
                <option value="json">Other (JSON)</option>
              </select>
            )}
          </Field>
        </div>
        <div className="row-buttons">
          <button type="submit" className="btn" disabled={!url.trim()}>
            Save address
          </button>
          {view.webhook.configured ? (
            <>
              <button type="button" className="btn" onClick={async () => setTest(await bridge.testWebhook())}>
                Send a test message
              </button>
              <button type="button" className="btn btn-ghost" onClick={() => void patch({ webhook: null })}>
                Stop sending
              </button>
            </>
          ) : null}
        </div>
        {test ? <p role="status" className={test.ok ? 'ok-text' : 'field-error'}>{test.message}</p> : null}
      </form>
      {error ? <ErrorNote message={error} /> : null}
      {info ? (
        <p className="muted">
          Triplicate {info.version} · backup engine {info.engineMode === 'service' ? 'runs as a service on this computer' : 'is run by this app'} ·{' '}
          <button type="button" className="link-button" onClick={() => void bridge.openLogFolder()}>
            Show the log file
          </button>
        </p>
      ) : null}
    </section>
  );
}

function useSettingsSaver() {
  const [error, setError] = useState<ShownError | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [saved, setSaved] = useState(false);
  const save = async (fn: () => Promise<unknown>) => {
    setError(null);
    setSaved(false);
    try {
      await fn();
      setSaved(true);
      void useApp.getState().refreshConfig();
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
      else setError(toShownError(e));
    }
  };
  return { error, unavailable, saved, save };
}

function EngineNotifications() {
  const config = useApp((s) => s.config);
  const [url, setUrl] = useState('');
  const s = useSettingsSaver();
  useEffect(() => setUrl(config?.notifications.webhookUrl ?? ''), [config]);
  return (
    <section className="card" aria-labelledby="en-h">
      <h2 id="en-h">Notifications</h2>
      <p className="hint">On a server without a screen, Triplicate can send what needs attention to a phone or a team chat: ntfy, Slack, Healthchecks.io or any JSON address.</p>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void s.save(() => api().call('updateSettings', { body: { notifications: { webhookUrl: url.trim() || null } } }));
        }}
      >
        <Field label="Send messages to">{(p) => <input {...p} type="url" className="mono" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://ntfy.sh/your-topic" />}</Field>
        <button type="submit" className="btn">
          Save
        </button>
        {s.saved ? <p className="ok-text" role="status">Saved.</p> : null}
        {s.unavailable ? <NotAvailable feature="Changing settings here" /> : null}
        {s.error ? <ErrorNote message={s.error.message} detail={s.error.detail} /> : null}
      </form>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
const emptyBandwidth: BandwidthConfig = { defaultBytesPerSecond: 0, schedule: [] };

function Bandwidth() {
  const targets = useApp((s) => s.targets) ?? [];
  const [tid, setTid] = useState('*');
  const source = targets.find((t) => t.id === (tid === '*' ? targets[0]?.id : tid));
  const [cfg, setCfg] = useState<BandwidthConfig>(emptyBandwidth);
  const s = useSettingsSaver();
  useEffect(() => setCfg(source?.bandwidth ? structuredClone(source.bandwidth) : emptyBandwidth), [source]);
  const grid = useMemo(() => weekGrid(cfg), [cfg]);
  const max = Math.max(1, ...grid.flat());
  const setWindow = (i: number, w: Partial<BandwidthWindow>) => setCfg((c) => ({ ...c, schedule: c.schedule.map((x, j) => (j === i ? { ...x, ...w } : x)) }));
  if (targets.length === 0) return null;
  return (
    <section className="card" aria-labelledby="bw-h">
      <h2 id="bw-h">Internet use</h2>
      <p className="hint">Limit how fast Triplicate uses the network to each destination, for example during opening hours so the network stays quick for everyone. Backing up, restoring and downloads served from a destination share its limit.</p>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          const ids = tid === '*' ? targets.map((t) => t.id) : [tid];
          void s.save(() => Promise.all(ids.map((id) => api().call('updateTarget', { params: { id }, body: { bandwidth: cfg } }))));
        }}
      >
        <Field label="For">
          {(p) => (
            <select {...p} value={tid} onChange={(e) => setTid(e.target.value)}>
              <option value="*">Every destination</option>
              {targets.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Normally (Mbit/s, 0 = no limit)">
          {(p) => <input {...p} type="number" min={0} step={0.5} value={bytesToMbit(cfg.defaultBytesPerSecond)} onChange={(e) => setCfg((c) => ({ ...c, defaultBytesPerSecond: mbitToBytes(Number(e.target.value) || 0) }))} />}
        </Field>
        <fieldset>
          <legend>Different at these times</legend>
          {cfg.schedule.length === 0 ? <p className="muted">No special times.</p> : null}
          {cfg.schedule.map((w, i) => (
            <div key={i} className="bw-window">
              <div className="days" role="group" aria-label={`Days of time ${i + 1}`}>
                {WEEKDAYS.map((d) => (
                  <label key={d} className="day-toggle">
                    <input type="checkbox" checked={w.days.includes(d)} onChange={(e) => setWindow(i, { days: e.target.checked ? [...w.days, d].sort((a, b) => WEEKDAYS.indexOf(a) - WEEKDAYS.indexOf(b)) : w.days.filter((x) => x !== d) })} />
                    {WEEKDAY_NAMES[d]}
                  </label>
                ))}
              </div>
              <label>
                from <input type="time" value={w.start} onChange={(e) => setWindow(i, { start: e.target.value })} />
              </label>
              <label>
                until <input type="time" value={w.end} onChange={(e) => setWindow(i, { end: e.target.value })} />
              </label>
              <label>
                at most <input type="number" min={0} step={0.5} className="narrow" value={bytesToMbit(w.bytesPerSecond)} onChange={(e) => setWindow(i, { bytesPerSecond: mbitToBytes(Number(e.target.value) || 0) })} /> Mbit/s
              </label>
              <button type="button" className="btn btn-ghost btn-small" onClick={() => setCfg((c) => ({ ...c, schedule: c.schedule.filter((_, j) => j !== i) }))}>
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            className="btn btn-small"
            onClick={() => setCfg((c) => ({ ...c, schedule: [...c.schedule, { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as Weekday[], start: '08:00', end: '18:00', bytesPerSecond: mbitToBytes(10) }] }))}
          >
            Add a time
          </button>
        </fieldset>
        <div className="week-grid" role="img" aria-label="The week at a glance: darker means slower">
          <div className="week-hours" aria-hidden="true">
            <span />
            {[0, 6, 12, 18].map((h) => (
              <span key={h} style={{ gridColumn: `${h + 2} / span 6` }}>
                {String(h).padStart(2, '0')}:00
              </span>
            ))}
          </div>
          {grid.map((row, d) => (
            <div key={d} className="week-row">
              <span className="week-day">{WEEKDAY_NAMES[WEEKDAYS[d]!]}</span>
              {row.map((v, h) => (
                <span key={h} className={`week-cell${v === 0 ? ' unlimited' : ''}`} style={v ? { opacity: 0.35 + 0.65 * (1 - v / max) } : undefined} title={`${WEEKDAY_NAMES[WEEKDAYS[d]!]} ${String(h).padStart(2, '0')}:00: ${describeLimit(v)}`} />
              ))}
            </div>
          ))}
        </div>
        <button type="submit" className="btn btn-primary">
          Save
        </button>
        {s.saved ? <p className="ok-text" role="status">Saved.</p> : null}
        {s.error ? <ErrorNote message={s.error.message} detail={s.error.detail} /> : null}
      </form>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
const QUALITY = [
  { crf: 28, label: 'Smaller files' },
  { crf: 23, label: 'Balanced (recommended)' },
  { crf: 19, label: 'Best picture' },
];

function Transcoding() {
  const config = useApp((s) => s.config);
  const [m, setM] = useState<Config['media'] | null>(null);
  const s = useSettingsSaver();
  useEffect(() => setM(config ? { ...config.media } : null), [config]);
  if (!m) return null;
  return (
    <section className="card" aria-labelledby="tc-h">
      <h2 id="tc-h">Videos</h2>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void s.save(() => api().call('updateSettings', { body: { media: { transcode: m.transcode, crf: m.crf, maxHeight: m.maxHeight, preset: m.preset, concurrency: m.concurrency } } }));
        }}
      >
        <label className="check">
          <input type="checkbox" checked={m.transcode} onChange={(e) => setM({ ...m, transcode: e.target.checked })} /> Make a copy of each video that plays on every phone and browser (MP4). The original is kept.
        </label>
        <div className="form-row">
          <Field label="Quality">
            {(p) => (
              <select {...p} value={QUALITY.some((q) => q.crf === m.crf) ? m.crf : 23} onChange={(e) => setM({ ...m, crf: Number(e.target.value) })} disabled={!m.transcode}>
                {QUALITY.map((q) => (
                  <option key={q.crf} value={q.crf}>
                    {q.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Largest size">
            {(p) => (
              <select {...p} value={m.maxHeight} onChange={(e) => setM({ ...m, maxHeight: Number(e.target.value) })} disabled={!m.transcode}>
                <option value={720}>720p (small)</option>
                <option value={1080}>1080p (Full HD)</option>
                <option value={1440}>1440p</option>
                <option value={2160}>2160p (4K)</option>
              </select>
            )}
          </Field>
          <Field label="Speed">
            {(p) => (
              <select {...p} value={m.preset} onChange={(e) => setM({ ...m, preset: e.target.value as Config['media']['preset'] })} disabled={!m.transcode}>
                <option value="ultrafast">Fastest, larger files</option>
                <option value="veryfast">Fast (recommended)</option>
                <option value="medium">Slower, smaller files</option>
                <option value="slow">Slowest, smallest files</option>
              </select>
            )}
          </Field>
          <Field label="Videos at once">{(p) => <input {...p} type="number" min={1} max={8} value={m.concurrency} onChange={(e) => setM({ ...m, concurrency: Number(e.target.value) || 1 })} disabled={!m.transcode} />}</Field>
        </div>
        <button type="submit" className="btn btn-primary">
          Save
        </button>
        {s.saved ? <p className="ok-text" role="status">Saved.</p> : null}
        {s.unavailable ? <NotAvailable feature="Changing video settings here" /> : null}
        {s.error ? <ErrorNote message={s.error.message} detail={s.error.detail} /> : null}
      </form>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
function PasswordForm({ intro }: { intro: string }) {
  const [pw, setPw] = useState('');
  const [pw2, setPw2] = useState('');
  const [err, setErr] = useState('');
  const s = useSettingsSaver();
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault();
        setErr('');
        if (pw.length < 8) return setErr('Use at least 8 characters; a few words in a row are easy to remember.');
        if (pw !== pw2) return setErr('The two passwords are not the same.');
        void s.save(() => api().call('setAdminPassword', { body: { password: pw } })).then(() => {
          setPw('');
          setPw2('');
        });
      }}
    >
      <p className="hint">{intro}</p>
      <div className="form-row">
        <Field label="New password" error={err || undefined}>
          {(p) => <input {...p} type="password" value={pw} onChange={(e) => setPw(e.target.value)} autoComplete="new-password" />}
        </Field>
        <Field label="Once more">{(p) => <input {...p} type="password" value={pw2} onChange={(e) => setPw2(e.target.value)} autoComplete="new-password" />}</Field>
      </div>
      <button type="submit" className="btn">
        Set password
      </button>
      {s.saved ? <p className="ok-text" role="status">Password saved.</p> : null}
      {s.unavailable ? <NotAvailable feature="Setting the password here" /> : null}
      {s.error ? <ErrorNote message={s.error.message} detail={s.error.detail} /> : null}
    </form>
  );
}

function WebConsolePassword() {
  return (
    <section className="card" aria-labelledby="wc-h">
      <h2 id="wc-h">Web console</h2>
      <PasswordForm intro="To open Triplicate from another computer's browser, set a password. Without one, the web console only opens on this computer." />
    </section>
  );
}

function WebConsole() {
  return (
    <section className="card" aria-labelledby="wc-h">
      <h2 id="wc-h">Web console</h2>
      <PasswordForm intro="The password for opening this page from other computers." />
      <button type="button" className="btn btn-ghost" onClick={() => useApp.getState().signOut()}>
        Sign out
      </button>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
function Logs() {
  const events = useApp((s) => s.recentEvents);
  const [lines, setLines] = useState<string[] | null>(null);
  const [file, setFile] = useState('');
  const [unavailable, setUnavailable] = useState(false);
  const [filter, setFilter] = useState('');
  const [problemsOnly, setProblemsOnly] = useState(false);
  const load = async () => {
    try {
      const r = await api().call('logs', { query: { limit: 1000 } });
      setLines(r.lines);
      setFile(r.file);
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
    }
  };
  const shown = (lines ?? []).filter((l) => (!filter || l.toLowerCase().includes(filter.toLowerCase())) && (!problemsOnly || /\b(warn|error)\b/i.test(l)));
  return (
    <section className="card" aria-labelledby="logs-h">
      <h2 id="logs-h">What happened</h2>
      <ul className="event-list">
        {events.slice(0, 15).map((e) => (
          <li key={e.id} className={`event-${e.level}`}>
            <span className="muted">{formatTime(e.ts)}</span> {e.message}
          </li>
        ))}
        {events.length === 0 ? <li className="muted">Nothing yet.</li> : null}
      </ul>
      <details
        onToggle={(e) => {
          if ((e.target as HTMLDetailsElement).open && !lines) void load();
        }}
      >
        <summary>The log (for your IT contact)</summary>
        {unavailable ? <p className="muted">This version of the engine cannot show its log here; Save diagnostics below includes it.</p> : null}
        {lines ? (
          <>
            <div className="filters">
              <label className="grow">
                <span>Find</span>
                <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
              </label>
              <label className="check">
                <input type="checkbox" checked={problemsOnly} onChange={(e) => setProblemsOnly(e.target.checked)} /> Only warnings and errors
              </label>
              <button type="button" className="btn btn-small" onClick={() => void load()}>
                Reload
              </button>
            </div>
            <p className="muted mono">{file}</p>
            <pre className="log-view" tabIndex={0}>
              {shown.slice(-1000).join('\n')}
            </pre>
          </>
        ) : null}
      </details>
    </section>
  );
}

function Diagnostics() {
  const conn = useApp((s) => s.conn);
  const [state, setState] = useState<'' | 'busy' | 'done' | 'unavailable'>('');
  const [error, setError] = useState('');
  return (
    <section className="card" aria-labelledby="diag-h">
      <h2 id="diag-h">Diagnostics</h2>
      <p className="hint">A zip with the logs and the settings (passwords and keys removed), to send to whoever helps you.</p>
      <button
        type="button"
        className="btn"
        disabled={state === 'busy'}
        onClick={async () => {
          setState('busy');
          setError('');
          try {
            const res = await fetch(`${conn?.baseUrl ?? ''}${STREAM_ROUTES.diagnostics}`, { headers: conn?.token ? { authorization: `Bearer ${conn.token}` } : {} });
            if (res.status === 404) return setState('unavailable');
            if (!res.ok) throw new Error(`The engine answered ${res.status}.`);
            const blob = await res.blob();
            const a = document.createElement('a');
            a.href = URL.createObjectURL(blob);
            a.download = `triplicate-diagnostics-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}.zip`;
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
            setState('done');
          } catch (e) {
            setError(e instanceof Error ? e.message : String(e));
            setState('');
          }
        }}
      >
        {state === 'busy' ? 'Preparing…' : 'Save diagnostics'}
      </button>
      {state === 'done' ? <p className="ok-text" role="status">Saved to your downloads.</p> : null}
      {state === 'unavailable' ? <NotAvailable feature="Saving diagnostics" /> : null}
      {error ? <ErrorNote message="The diagnostics could not be saved." detail={error} /> : null}
    </section>
  );
}
