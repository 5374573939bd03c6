import { useState } from 'react';
import { useApp } from '../store';

export function SignInPage() {
  const error = useApp((s) => s.signInError);
  const [pw, setPw] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main className="center-screen signin">
      <form
        className="card form"
        aria-labelledby="signin-h"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          await useApp.getState().signIn(pw);
          setBusy(false);
        }}
      >
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          <span className="brand-name">Triplicate</span>
        </div>
        <h1 id="signin-h">Sign in</h1>
        <p>This is the backup of this site. Type the password that was set for it.</p>
        <div className="field">
          <label htmlFor="pw">Password</label>
          <input id="pw" type="password" autoComplete="current-password" value={pw} onChange={(e) => setPw(e.target.value)} autoFocus aria-invalid={error ? true : undefined} aria-describedby={error ? 'pw-err' : undefined} />
          {error ? (
            <p className="field-error" id="pw-err" role="alert">
              {error}
            </p>
          ) : null}
        </div>
        <button type="submit" className="btn btn-primary" disabled={busy || !pw}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
