import { useCallback, useEffect, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { LINK_REACH_WORDS, type FileRecord, type LinkInfo, type LinkReach, type SharingStatus, type TunnelStatus } from '../../../shared/api';
import { KeyError, keyWithLabel, resolveKeyForm } from '../../../shared/keys';
import { ConfirmDialog, CopyButton, ErrorNote, Field, Loading, NotAvailable, PageHeader } from '../components/ui';
import { isNotAvailable, toShownError, type ShownError } from '../lib/errors';
import { formatRelative, formatTime } from '../lib/format';
import { api, useApp } from '../store';

const TTLS = [
  { s: 3600, label: '1 hour' },
  { s: 86400, label: '1 day' },
  { s: 7 * 86400, label: '1 week' },
  { s: 30 * 86400, label: '30 days' },
];

export function SharingPage() {
  const [links, setLinks] = useState<LinkInfo[] | null>(null);
  const [state, setState] = useState<'ok' | 'unavailable'>('ok');
  const [error, setError] = useState<ShownError | null>(null);
  const [revoking, setRevoking] = useState<LinkInfo | null>(null);
  const [rotating, setRotating] = useState(false);
  const [showOld, setShowOld] = useState(false);

  const roots = useApp(useShallow((st) => st.roots ?? []));
  const load = useCallback(async () => {
    try {
      setLinks(await api().call('listLinks', { query: { include_expired: showOld } }));
      setError(null);
    } catch (e) {
      if (isNotAvailable(e)) setState('unavailable');
      else setError(toShownError(e));
    }
  }, [showOld]);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <>
      <PageHeader title="Sharing" />
      <p className="lead">Send someone a link to one file. The link stops working when it expires or when you revoke it, and it never shows anything else.</p>
      <ReachCard onChanged={() => void load()} />
      {state === 'unavailable' ? (
        <NotAvailable feature="Sharing links" />
      ) : (
        <>
          <NewLink onCreated={() => void load()} />
          <section className="card" aria-labelledby="links-h">
            <div className="card-head">
              <h2 id="links-h">Links</h2>
              <label className="check">
                <input type="checkbox" checked={showOld} onChange={(e) => setShowOld(e.target.checked)} /> Show expired and revoked
              </label>
            </div>
            {error ? <ErrorNote message={error.message} detail={error.detail} onRetry={() => void load()} /> : null}
            {!links && !error ? <Loading what="links" /> : null}
            {links && links.length === 0 ? <p className="muted">No links yet.</p> : null}
            {links && links.length > 0 ? (
              <table className="table">
                <caption className="visually-hidden">Shared links</caption>
                <thead>
                  <tr>
                    <th scope="col">File</th>
                    <th scope="col">Who can open it</th>
                    <th scope="col">Works until</th>
                    <th scope="col">Note</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {links.map((l) => {
                    const dead = l.revoked_at !== undefined || l.expires_at < Date.now();
                    return (
                      <tr key={l.id} className={dead ? 'is-off' : undefined}>
                        <td className="break">
                          <KeyShown k={l.key} roots={roots} />
                        </td>
                        <td>{dead ? <span className="muted">Nobody</span> : <Reach link={l} />}</td>
                        <td>{l.revoked_at ? `Revoked ${formatTime(l.revoked_at)}` : `${formatTime(l.expires_at)} (${formatRelative(l.expires_at)})`}</td>
                        <td>{l.note}</td>
                        <td className="row-buttons">
                          {!dead ? (
                            <>
                              {l.url ? <CopyButton text={l.url} label="Copy link" /> : null}
                              <button type="button" className="btn btn-small btn-ghost" onClick={() => setRevoking(l)}>
                                Revoke
                              </button>
                            </>
                          ) : null}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            ) : null}
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setRotating(true)}>
              Revoke every link at once…
            </button>
          </section>
        </>
      )}
      {revoking ? (
        <ConfirmDialog
          title="Revoke this link?"
          confirmLabel="Revoke"
          danger
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            const l = revoking;
            setRevoking(null);
            await useApp.getState().run((c) => c.call('revokeLink', { params: { id: l.id } }), 'The link no longer works.');
            void load();
          }}
        >
          <p>Anyone who has the link for {keyWithLabel(revoking.key, roots)} can no longer download it. The file itself is not touched.</p>
        </ConfirmDialog>
      ) : null}
      {rotating ? (
        <ConfirmDialog
          title="Revoke every link?"
          confirmLabel="Revoke all links"
          danger
          onCancel={() => setRotating(false)}
          onConfirm={async () => {
            setRotating(false);
            const r = await useApp.getState().run((c) => c.call('rotateLinkSecret'));
            if (r) useApp.getState().toast('success', `${r.revoked} links no longer work.`);
            void load();
          }}
        >
          <p>Every link you have sent stops working at once. Use this if a link reached the wrong people and you do not know which one.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

/** A key as the operator sees it (the folder's name), with the id form the API and the CLI also take. */
function KeyShown({ k, roots }: { k: string; roots: { id: string; label: string }[] }) {
  const named = keyWithLabel(k, roots);
  return (
    <>
      {named}
      {named !== k ? <span className="key-id mono">{k}</span> : null}
    </>
  );
}

/** Who can open a link, in words; or why it cannot be opened now. */
function Reach({ link }: { link: LinkInfo }) {
  if (!link.url) return <span className="field-error">{link.unavailable ?? 'It cannot be opened now.'}</span>;
  return <span className={`reach reach-${link.reach}`}>{LINK_REACH_WORDS[link.reach]}</span>;
}

function NewLink({ onCreated }: { onCreated: () => void }) {
  const roots = useApp(useShallow((st) => st.roots ?? []));
  const [text, setText] = useState('');
  const [matches, setMatches] = useState<FileRecord[] | null>(null);
  const [key, setKey] = useState('');
  const [ttl, setTtl] = useState(86400);
  const [note, setNote] = useState('');
  const [created, setCreated] = useState<LinkInfo | null>(null);
  const [error, setError] = useState<ShownError | null>(null);

  useEffect(() => {
    const q = text.trim();
    if (q.length < 2 || (key && q === keyWithLabel(key, roots))) {
      setMatches(null);
      return;
    }
    const ctrl = new AbortController();
    const t = setTimeout(() => {
      api()
        .call('queue', { query: { state: 'all', q, limit: 10 } }, ctrl.signal)
        .then((p) => setMatches(p.items))
        .catch(() => undefined);
    }, 250);
    return () => {
      clearTimeout(t);
      ctrl.abort();
    };
  }, [text, key, roots]);

  return (
    <section className="card" aria-labelledby="new-link-h">
      <h2 id="new-link-h">New link</h2>
      <form
        className="form"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          let k = key;
          try {
            k ||= resolveKeyForm(text.trim(), roots);
          } catch (err) {
            if (err instanceof KeyError) return setError({ message: err.message });
            throw err;
          }
          try {
            const l = await api().call('createLink', { body: { key: k, ttl_seconds: ttl, note: note.trim() || undefined } });
            setCreated(l);
            onCreated();
          } catch (err) {
            setError(isNotAvailable(err) ? { message: 'This version of the backup engine cannot make links yet.' } : toShownError(err));
          }
        }}
      >
        <Field label="File" hint={key ? <>Key: <span className="mono">{key}</span> (the form the command line also takes)</> : 'Type part of its name and pick it from the list.'}>
          {(p) => (
            <input
              {...p}
              type="search"
              value={text}
              onChange={(e) => {
                setText(e.target.value);
                setKey('');
              }}
            />
          )}
        </Field>
        {matches ? (
          <ul className="pick-list">
            {matches.length === 0 ? <li className="muted">No file matches.</li> : null}
            {matches.map((m) => (
              <li key={m.key}>
                <button
                  type="button"
                  className="link-button"
                  onClick={() => {
                    setKey(m.key);
                    setText(keyWithLabel(m.key, roots));
                    setMatches(null);
                  }}
                >
                  {keyWithLabel(m.key, roots)}
                </button>
                <span className="key-id mono">{m.key}</span>
              </li>
            ))}
          </ul>
        ) : null}
        <div className="form-row">
          <Field label="Works for">
            {(p) => (
              <select {...p} value={ttl} onChange={(e) => setTtl(Number(e.target.value))}>
                {TTLS.map((t) => (
                  <option key={t.s} value={t.s}>
                    {t.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Note (only you see it)">{(p) => <input {...p} type="text" value={note} onChange={(e) => setNote(e.target.value)} placeholder="e.g. for the newspaper" />}</Field>
        </div>
        <button type="submit" className="btn btn-primary" disabled={!(key || text.trim())}>
          Make link
        </button>
        {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
        {created ? (
          <div className="created-link" role="status">
            <p>
              Link ready; it works until {formatTime(created.expires_at)}. Who can open it: <Reach link={created} />
            </p>
            <div className="input-row">
              <input type="text" readOnly className="mono" value={created.url} aria-label="The new link" onFocus={(e) => e.target.select()} />
              <CopyButton text={created.url} label="Copy" />
            </div>
          </div>
        ) : null}
      </form>
    </section>
  );
}

const TUNNEL_WORDS: Record<TunnelStatus['state'], string> = {
  stopped: 'Off',
  starting: 'Starting…',
  running: 'On',
  restarting: 'Restarting…',
  missing: 'cloudflared is not installed',
  failed: 'Not working',
};

const REACH_CHOICES: { reach: LinkReach; label: string; hint: string }[] = [
  { reach: 'this-computer', label: 'This computer only', hint: 'A link opens only in a browser on this computer (127.0.0.1): for trying a link out.' },
  {
    reach: 'local-network',
    label: 'The local network',
    hint: 'Anyone on this building’s network who has a link can open it, at this computer’s address on the network. Only the download server listens there: it opens what a link names and nothing else. The console stays on this computer.',
  },
  {
    reach: 'internet',
    label: 'The internet, through the tunnel',
    hint: 'Anyone who has a link can open it from anywhere. Cloudflare’s tunnel carries the download server only, never the console; no port is opened on the router.',
  },
];

/** Who can open links: the choice, what it means now, and the tunnel when links go through it. */
function ReachCard({ onChanged }: { onChanged: () => void }) {
  const tunnel = useApp((st) => st.tunnel);
  const [status, setStatus] = useState<SharingStatus | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [choice, setChoice] = useState<LinkReach | null>(null);
  const [mode, setMode] = useState<'quick' | 'named'>('quick');
  const [token, setToken] = useState('');
  const [hostname, setHostname] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ShownError | null>(null);

  const load = useCallback(async () => {
    try {
      const st = await api().call('sharingStatus');
      setStatus(st);
      setChoice((c) => c ?? st.reach);
    } catch (e) {
      if (isNotAvailable(e)) setUnavailable(true);
      else setError(toShownError(e));
    }
  }, []);
  // The tunnel's state decides whether internet links work: follow its events.
  useEffect(() => {
    void load();
  }, [load, tunnel?.state, tunnel?.public_url]);
  useEffect(() => {
    if (!tunnel) api().call('tunnelStatus').then((t) => useApp.setState({ tunnel: t }), () => undefined);
    else if (tunnel.mode !== 'off') setMode(tunnel.mode);
  }, [tunnel]);

  if (unavailable)
    return (
      <section className="card">
        <h2>Who can open links</h2>
        <NotAvailable feature="Choosing who can open links" />
      </section>
    );
  if (!status) return <Loading what="who can open links" />;

  const save = async () => {
    if (!choice) return;
    setError(null);
    setBusy(true);
    try {
      const body = choice === 'internet' ? { reach: choice, tunnel: { mode, token: mode === 'named' && token ? token : undefined, hostname: mode === 'named' && hostname ? hostname : undefined } } : { reach: choice };
      setStatus(await api().call('setLinkReach', { body }));
      onChanged();
    } catch (e) {
      setError(isNotAvailable(e) ? { message: 'This version of the backup engine cannot change who can open links.' } : toShownError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card reach-card" aria-labelledby="reach-h">
      <h2 id="reach-h">Who can open links</h2>
      <div className={`reach-now reach-${status.reach}`} role="status">
        <p>
          Links work for: <strong>{LINK_REACH_WORDS[status.reach]}</strong>
          {status.reach === 'this-computer' ? ' (nobody else, even with the link)' : ''}
        </p>
        {status.link_base ? (
          <p className="muted">
            Links start with <span className="mono">{status.link_base}</span>
          </p>
        ) : null}
        {status.problem ? <p className="field-error">{status.problem}</p> : null}
      </div>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <fieldset>
          <legend>Who may open the links you make</legend>
          {REACH_CHOICES.map((c) => (
            <div key={c.reach} className="reach-choice">
              <label className="check">
                <input type="radio" name="reach" checked={choice === c.reach} onChange={() => setChoice(c.reach)} aria-describedby={`reach-${c.reach}-hint`} /> {c.label}
              </label>
              <p className="hint" id={`reach-${c.reach}-hint`}>
                {c.hint}
              </p>
            </div>
          ))}
        </fieldset>
        {choice === 'internet' ? (
          <fieldset>
            <legend>Tunnel</legend>
            <label className="check">
              <input type="radio" name="tmode" checked={mode === 'quick'} onChange={() => setMode('quick')} /> Quick: no account needed, a new random address each start
            </label>
            <label className="check">
              <input type="radio" name="tmode" checked={mode === 'named'} onChange={() => setMode('named')} /> With your Cloudflare account: a fixed address such as files.museum.org
            </label>
            {mode === 'named' ? (
              <div className="form-row">
                <Field label="Tunnel token" hint="From the Cloudflare dashboard, Zero Trust, Tunnels.">
                  {(p) => <input {...p} type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" />}
                </Field>
                <Field label="Public address">{(p) => <input {...p} type="url" value={hostname} onChange={(e) => setHostname(e.target.value)} placeholder="https://files.example.org" />}</Field>
              </div>
            ) : null}
          </fieldset>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy || !choice}>
          {busy ? 'Changing…' : 'Use this choice'}
        </button>
        {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
      </form>
      {tunnel && tunnel.mode !== 'off' ? (
        <div className="tunnel-box">
          <p className={`tunnel-state tunnel-${tunnel.state}`}>
            <span className="dot" aria-hidden="true" /> Tunnel: {TUNNEL_WORDS[tunnel.state]}
          </p>
          {tunnel.public_url ? (
            <p>
              Public address: <span className="mono">{tunnel.public_url}</span> <CopyButton text={tunnel.public_url} />
            </p>
          ) : null}
          {tunnel.message ? <p>{tunnel.message}</p> : null}
          {tunnel.last_lines.length > 0 ? (
            <details>
              <summary>Technical detail</summary>
              <pre>{tunnel.last_lines.join('\n')}</pre>
            </details>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
