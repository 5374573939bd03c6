import { useCallback, useEffect, useState } from 'react';
import type { FileRecord, LinkInfo, TunnelStatus } from '../../../shared/api';
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
      <TunnelCard />
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
                        <td className="break">{l.key}</td>
                        <td>{l.revoked_at ? `Revoked ${formatTime(l.revoked_at)}` : `${formatTime(l.expires_at)} (${formatRelative(l.expires_at)})`}</td>
                        <td>{l.note}</td>
                        <td className="row-buttons">
                          {!dead ? (
                            <>
                              <CopyButton text={l.url} label="Copy link" />
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
          <p>Anyone who has the link for {revoking.key} can no longer download it. The file itself is not touched.</p>
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

function NewLink({ onCreated }: { onCreated: () => void }) {
  const [text, setText] = useState('');
  const [matches, setMatches] = useState<FileRecord[] | null>(null);
  const [key, setKey] = useState('');
  const [ttl, setTtl] = useState(86400);
  const [note, setNote] = useState('');
  const [created, setCreated] = useState<LinkInfo | null>(null);
  const [error, setError] = useState<ShownError | null>(null);

  useEffect(() => {
    const q = text.trim();
    if (q.length < 2 || q === key) {
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
  }, [text, key]);

  return (
    <section className="card" aria-labelledby="new-link-h">
      <h2 id="new-link-h">New link</h2>
      <form
        className="form"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            const l = await api().call('createLink', { body: { key: key || text.trim(), ttl_seconds: ttl, note: note.trim() || undefined } });
            setCreated(l);
            onCreated();
          } catch (err) {
            setError(isNotAvailable(err) ? { message: 'This version of the backup engine cannot make links yet.' } : toShownError(err));
          }
        }}
      >
        <Field label="File" hint="Type part of its name and pick it from the list.">
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
                    setText(m.key);
                    setMatches(null);
                  }}
                >
                  {m.key}
                </button>
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
            <p>Link ready; it works until {formatTime(created.expires_at)}:</p>
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
  stopped: 'Off: links work only inside this network',
  starting: 'Starting…',
  running: 'On: links work from anywhere',
  restarting: 'Restarting…',
  missing: 'cloudflared is not installed',
  failed: 'Not working',
};

function TunnelCard() {
  const tunnel = useApp((s) => s.tunnel);
  const [unavailable, setUnavailable] = useState(false);
  const [mode, setMode] = useState<TunnelStatus['mode']>('quick');
  const [token, setToken] = useState('');
  const [hostname, setHostname] = useState('');
  const [error, setError] = useState<ShownError | null>(null);
  useEffect(() => {
    if (tunnel) setMode(tunnel.mode === 'off' ? 'quick' : tunnel.mode);
  }, [tunnel]);
  useEffect(() => {
    if (!tunnel) api().call('tunnelStatus').then((t) => useApp.setState({ tunnel: t }), (e) => isNotAvailable(e) && setUnavailable(true));
  }, [tunnel]);
  if (unavailable)
    return (
      <section className="card">
        <h2>Links from outside</h2>
        <NotAvailable feature="The tunnel" />
      </section>
    );
  const set = async (m: TunnelStatus['mode']) => {
    setError(null);
    try {
      useApp.setState({ tunnel: await api().call('setTunnel', { body: { mode: m, token: m === 'named' && token ? token : undefined, hostname: m === 'named' && hostname ? hostname : undefined } }) });
    } catch (e) {
      setError(isNotAvailable(e) ? { message: 'This version of the backup engine cannot start a tunnel yet.' } : toShownError(e));
    }
  };
  return (
    <section className="card" aria-labelledby="tunnel-h">
      <h2 id="tunnel-h">Links from outside</h2>
      {!tunnel ? <Loading what="the tunnel" /> : null}
      {tunnel ? (
        <>
          <p className={`tunnel-state tunnel-${tunnel.state}`}>
            <span className="dot" aria-hidden="true" /> {TUNNEL_WORDS[tunnel.state]}
          </p>
          {tunnel.public_url ? (
            <p>
              Public address: <span className="mono">{tunnel.public_url}</span> <CopyButton text={tunnel.public_url} />
            </p>
          ) : null}
          {tunnel.message ? <p>{tunnel.message}</p> : null}
          {tunnel.mode === 'off' || tunnel.state === 'stopped' ? (
            <form
              className="form"
              onSubmit={(e) => {
                e.preventDefault();
                void set(mode);
              }}
            >
              <fieldset>
                <legend>How</legend>
                <label className="check">
                  <input type="radio" name="tmode" checked={mode === 'quick'} onChange={() => setMode('quick')} /> Quick: no account needed, a new random address each start
                </label>
                <label className="check">
                  <input type="radio" name="tmode" checked={mode === 'named'} onChange={() => setMode('named')} /> With your Cloudflare account: a fixed address such as files.museum.org
                </label>
              </fieldset>
              {mode === 'named' ? (
                <div className="form-row">
                  <Field label="Tunnel token" hint="From the Cloudflare dashboard, Zero Trust, Tunnels.">
                    {(p) => <input {...p} type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" />}
                  </Field>
                  <Field label="Public address">{(p) => <input {...p} type="url" value={hostname} onChange={(e) => setHostname(e.target.value)} placeholder="https://files.example.org" />}</Field>
                </div>
              ) : null}
              <button type="submit" className="btn btn-primary">
                Turn on
              </button>
            </form>
          ) : (
            <button type="button" className="btn" onClick={() => void set('off')}>
              Turn off
            </button>
          )}
          {error ? <ErrorNote message={error.message} detail={error.detail} /> : null}
          {tunnel.last_lines.length > 0 ? (
            <details>
              <summary>Technical detail</summary>
              <pre>{tunnel.last_lines.join('\n')}</pre>
            </details>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
