// Choose a folder on the engine's machine: the native picker in Electron; in the browser a path
// field, helped by a server-side folder list when the engine offers it (`listDirs`).
import { useEffect, useState } from 'react';
import type { DirListing } from '../../../shared/api';
import { isNotAvailable } from '../lib/errors';
import { isElectron } from '../lib/transport';
import { api } from '../store';

export function FolderPicker({ value, onChange, inputProps }: { value: string; onChange: (v: string) => void; inputProps: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean } }) {
  const [browsing, setBrowsing] = useState(false);
  return (
    <div className="folder-picker">
      <div className="input-row">
        <input {...inputProps} type="text" className="mono" value={value} onChange={(e) => onChange(e.target.value)} placeholder={isElectron() ? 'Choose a folder…' : '/srv/photos or D:\\Photos'} spellCheck={false} autoComplete="off" />
        {isElectron() ? (
          <button
            type="button"
            className="btn"
            onClick={async () => {
              const p = await window.triplicate!.pickFolder({ defaultPath: value || undefined });
              if (p) onChange(p);
            }}
          >
            Choose…
          </button>
        ) : (
          <button type="button" className="btn" aria-expanded={browsing} onClick={() => setBrowsing((b) => !b)}>
            {browsing ? 'Close list' : 'Browse…'}
          </button>
        )}
      </div>
      {browsing ? <ServerDirs start={value} onPick={(p) => onChange(p)} /> : null}
    </div>
  );
}

function ServerDirs({ start, onPick }: { start: string; onPick: (p: string) => void }) {
  const [listing, setListing] = useState<DirListing | null>(null);
  const [state, setState] = useState<'loading' | 'ok' | 'unavailable' | 'error'>('loading');
  const [error, setError] = useState('');
  const load = async (path?: string) => {
    setState('loading');
    try {
      const l = await api().call('listDirs', { query: { path } });
      setListing(l);
      setState('ok');
    } catch (e) {
      if (isNotAvailable(e)) setState('unavailable');
      else {
        setState('error');
        setError(e instanceof Error ? e.message : String(e));
      }
    }
  };
  useEffect(() => {
    void load(start || undefined);
    // only when the list opens
  }, []);
  if (state === 'unavailable') return <p className="hint">This engine cannot list its folders yet: type the folder's full path above.</p>;
  if (state === 'error') return <p className="field-error">{error}</p>;
  if (!listing) return <p className="hint">Loading folders…</p>;
  const sep = listing.path.includes('\\') ? '\\' : '/';
  return (
    <div className="dir-list">
      <p className="mono dir-current">{listing.path}</p>
      <ul>
        {listing.parent !== undefined ? (
          <li>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => void load(listing.parent)}>
              ↑ Up one level
            </button>
          </li>
        ) : null}
        {listing.dirs.map((d) => {
          const full = listing.path.endsWith(sep) ? listing.path + d : listing.path + sep + d;
          return (
            <li key={d}>
              <button type="button" className="btn btn-ghost btn-small" onClick={() => void load(full)}>
                ▸ {d}
              </button>
              <button type="button" className="btn btn-small" onClick={() => onPick(full)}>
                Use this
              </button>
            </li>
          );
        })}
      </ul>
      <button type="button" className="btn btn-small" onClick={() => onPick(listing.path)}>
        Use {listing.path}
      </button>
    </div>
  );
}
