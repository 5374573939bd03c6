import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { DropZone, UploadButton } from './components/DropZone';
import { HealthBadge, type Health } from './components/ui';
import { formatTime } from './lib/format';
import { ActivityPage } from './pages/Activity';
import { BrowsePage } from './pages/Browse';
import { DestinationsPage } from './pages/Destinations';
import { FoldersPage } from './pages/Folders';
import { MediaPage } from './pages/Media';
import { OverviewPage } from './pages/Overview';
import { RestorePage } from './pages/Restore';
import { SettingsPage } from './pages/Settings';
import { SharingPage } from './pages/Sharing';
import { SignInPage } from './pages/SignIn';
import { useApp, type PageId } from './store';
import { missingToOffer } from '../../shared/status';

const NAV: { id: PageId; label: string; icon: string }[] = [
  { id: 'overview', label: 'Overview', icon: '◎' },
  { id: 'folders', label: 'Folders', icon: '▤' },
  { id: 'destinations', label: 'Destinations', icon: '⇪' },
  { id: 'activity', label: 'Activity', icon: '≡' },
  { id: 'browse', label: 'Browse', icon: '⌸' },
  { id: 'restore', label: 'Restore', icon: '↺' },
  { id: 'sharing', label: 'Sharing', icon: '⤴' },
  { id: 'media', label: 'Media', icon: '▣' },
  { id: 'settings', label: 'Settings', icon: '⚙' },
];

const PAGE_COMPONENTS: Record<PageId, () => ReactNode> = {
  overview: () => <OverviewPage />,
  folders: () => <FoldersPage />,
  destinations: () => <DestinationsPage />,
  activity: () => <ActivityPage />,
  browse: () => <BrowsePage />,
  restore: () => <RestorePage />,
  sharing: () => <SharingPage />,
  media: () => <MediaPage />,
  settings: () => <SettingsPage />,
};

export function App() {
  const phase = useApp((s) => s.phase);
  const fatal = useApp((s) => s.fatal);
  if (phase === 'signin') return <SignInPage />;
  if (phase === 'fatal')
    return (
      <main className="center-screen">
        <h1>Triplicate cannot start</h1>
        <p>{fatal}</p>
        <button type="button" className="btn btn-primary" onClick={() => void useApp.getState().boot()}>
          Try again
        </button>
      </main>
    );
  return <Shell />;
}

function Shell() {
  const page = useApp((s) => s.page);
  const { phase, health, siteName, missing, failed } = useApp(
    useShallow((s) => ({
      phase: s.phase,
      health: (s.phase === 'lost' ? 'offline' : (s.status?.health ?? 'offline')) as Health,
      siteName: s.config?.siteName,
      // what the Restore page offers to bring back (a held folder's missing files wait for the Overview's answer)
      missing: s.status ? missingToOffer(s.status) : 0,
      failed: s.status?.failed ?? 0,
    })),
  );
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    // Move focus to the new page's heading (screen readers announce it), but not on first load.
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('page-title')?.focus();
    mainRef.current?.scrollTo?.({ top: 0 });
  }, [page]);

  useEffect(() => {
    const label = NAV.find((n) => n.id === page)?.label ?? '';
    document.title = `${label} · ${siteName && siteName !== 'Triplicate' ? `${siteName} · ` : ''}Triplicate`;
  }, [page, siteName]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to the page
      </a>
      <aside className="sidebar">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          <span className="brand-name">{siteName && siteName !== 'Triplicate' ? siteName : 'Triplicate'}</span>
        </div>
        <div className="sidebar-health">
          <HealthBadge health={health} />
        </div>
        <nav aria-label="Pages">
          <ul>
            {NAV.map((n) => (
              <li key={n.id}>
                <a
                  href={`#/${n.id}`}
                  className={page === n.id ? 'active' : undefined}
                  aria-current={page === n.id ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    useApp.getState().navigate(n.id);
                  }}
                >
                  <span className="nav-icon" aria-hidden="true">
                    {n.icon}
                  </span>
                  {n.label}
                  {n.id === 'activity' && failed > 0 ? <span className="nav-count" aria-label={`${failed} failed`}>{failed}</span> : null}
                  {n.id === 'restore' && missing > 0 ? <span className="nav-count" aria-label={`${missing} missing ${missing === 1 ? 'file' : 'files'} to bring back`}>{missing}</span> : null}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {/* The whole window takes dropped files; a touch screen needs a button. */}
        <div className="sidebar-upload">
          <UploadButton className="btn btn-small" />
        </div>
      </aside>
      <div className="main-col">
        <ConnectionBanner />
        <main id="main" ref={mainRef} className={`page page-${page}`} aria-busy={phase === 'starting'}>
          {phase === 'starting' ? <Starting /> : PAGE_COMPONENTS[page]()}
        </main>
      </div>
      <Toasts />
      <DropZone />
    </div>
  );
}

function Starting() {
  return (
    <div className="center-screen" role="status">
      <span className="spinner big" aria-hidden="true" />
      <p>Connecting to the backup engine…</p>
    </div>
  );
}

function ConnectionBanner() {
  const lost = useApp((s) => s.lost);
  const phase = useApp((s) => s.phase);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (phase !== 'lost') return;
    const t = setInterval(() => setNow(Date.now()), 1000); // a countdown on screen, no requests
    return () => clearInterval(t);
  }, [phase]);
  if (phase !== 'lost' || !lost) return null;
  const secs = Math.max(0, Math.ceil((lost.retryAt - now) / 1000));
  return (
    <div className="banner banner-error" role="alert">
      <div>
        <strong>The backup engine is not answering</strong> (since {formatTime(lost.since)}). It may be restarting.{' '}
        {secs > 0 ? `Trying again in ${secs} s.` : 'Trying again now…'} What you see below may be out of date.
      </div>
      <button type="button" className="btn btn-small" onClick={() => useApp.getState().retryNow()}>
        Try now
      </button>
    </div>
  );
}

function Toasts() {
  const toasts = useApp((s) => s.toasts);
  return (
    <div className="toasts" aria-live="polite" aria-relevant="additions">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.level}`} role={t.level === 'error' ? 'alert' : 'status'}>
          <p>{t.text}</p>
          {t.detail ? (
            <details>
              <summary>Technical detail</summary>
              <pre>{t.detail}</pre>
            </details>
          ) : null}
          <button type="button" className="btn btn-ghost btn-small" onClick={() => useApp.getState().dismissToast(t.id)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}
