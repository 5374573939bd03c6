// Small building blocks shared by the pages. Colour is never the only signal: every state has words.
import { useEffect, useId, useRef, type ReactNode } from 'react';
import type { CopyState, FileRecord, SyncStatus, TargetInfo, TargetState } from '../../../shared/api';
import { plainReason } from '../lib/reasons';

export type Health = SyncStatus['health'] | 'offline';

export const HEALTH_WORDS: Record<Health, string> = {
  green: 'All safe',
  syncing: 'Backing up',
  behind: 'A copy is behind',
  failing: 'Needs you',
  paused: 'Paused',
  offline: 'Not connected',
};

export function HealthBadge({ health }: { health: Health }) {
  return (
    <span className={`health-badge health-${health}`}>
      <span className="dot" aria-hidden="true" />
      {HEALTH_WORDS[health]}
    </span>
  );
}

const COPY_WORDS: Record<CopyState, string> = {
  pending: 'waiting',
  uploading: 'copying',
  synced: 'safe',
  failed: 'failed',
  skipped: 'skipped',
};
const COPY_ICONS: Record<CopyState, string> = { pending: '…', uploading: '↑', synced: '✓', failed: '✕', skipped: '–' };

export function StateChip({ label, state, title }: { label: string; state: CopyState | 'present' | 'missing'; title?: string }) {
  const words = state === 'present' ? 'here' : state === 'missing' ? 'missing' : COPY_WORDS[state];
  const icon = state === 'present' ? '✓' : state === 'missing' ? '!' : COPY_ICONS[state];
  const cls = state === 'present' ? 'synced' : state === 'missing' ? 'failed' : state;
  return (
    <span className={`chip chip-${cls}`} title={title}>
      <span aria-hidden="true">{icon}</span> {label} <span className="visually-hidden">:</span> <span className="chip-words">{words}</span>
    </span>
  );
}

/** Local / NAS / cloud chips for one file. */
export function CopyChips({ file, targets }: { file: FileRecord; targets: TargetInfo[] | null }) {
  const labelOf = (id: string) => targets?.find((t) => t.id === id)?.label ?? id;
  return (
    <span className="chips">
      <StateChip label="This computer" state={file.local} />
      {file.copies.map((c) => (
        <StateChip key={c.target_id} label={labelOf(c.target_id)} state={c.state} title={c.last_error ? plainReason(c.last_error) : undefined} />
      ))}
    </span>
  );
}

export const TARGET_STATE_WORDS: Record<TargetState | 'held', string> = {
  online: 'Working',
  held: 'Holding changes back',
  offline: 'Not answering',
  paused: 'Paused',
  disabled: 'Turned off',
  unknown: 'Checking…',
};

export function ProgressBar({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.min(100, Math.max(0, (value / max) * 100)) : 0;
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}>
      <div className="progress-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}

export function NotAvailable({ feature, children }: { feature: string; children?: ReactNode }) {
  return (
    <div className="not-available" role="status">
      <h2>{feature} is not available yet</h2>
      <p>This version of the backup engine cannot do this yet. Your files are not affected. When Triplicate is updated, this page fills in by itself.</p>
      {children}
    </div>
  );
}

export function ErrorNote({ message, detail, onRetry }: { message: string; detail?: string; onRetry?: () => void }) {
  return (
    <div className="error-note" role="alert">
      <p>{message}</p>
      {detail ? (
        <details>
          <summary>Technical detail</summary>
          <pre>{detail}</pre>
        </details>
      ) : null}
      {onRetry ? (
        <button type="button" className="btn" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children}
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="page-header">
      <h1 id="page-title" tabIndex={-1}>
        {title}
      </h1>
      {children ? <div className="page-actions">{children}</div> : null}
    </header>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? true : undefined })}
      {hint ? (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={errId}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** A modal dialog: focus moves in, Escape closes, focus returns to where it was. */
export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const el = ref.current;
    const first = el?.querySelector<HTMLElement>('input, select, textarea, button:not(.dialog-close), [href], [tabindex]:not([tabindex="-1"])');
    (first ?? el)?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        onClose();
      } else if (e.key === 'Tab' && el) {
        const items = [...el.querySelectorAll<HTMLElement>('input, select, textarea, button, [href], [tabindex]:not([tabindex="-1"])')].filter((x) => !x.hasAttribute('disabled'));
        if (items.length === 0) return;
        const firstI = items[0]!;
        const lastI = items[items.length - 1]!;
        if (e.shiftKey && document.activeElement === firstI) {
          e.preventDefault();
          lastI.focus();
        } else if (!e.shiftKey && document.activeElement === lastI) {
          e.preventDefault();
          firstI.focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      before?.focus?.();
    };
  }, [onClose]);
  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`dialog${wide ? ' dialog-wide' : ''}`} role="dialog" aria-modal="true" aria-labelledby={titleId} ref={ref} tabIndex={-1}>
        <div className="dialog-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="btn btn-ghost dialog-close" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </div>
        {children}
      </div>
    </div>
  );
}

export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  danger,
  onConfirm,
  onCancel,
}: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <Dialog title={title} onClose={onCancel}>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className={`btn ${danger ? 'btn-danger' : 'btn-primary'}`} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  return (
    <button
      type="button"
      className="btn btn-small"
      onClick={() => {
        void navigator.clipboard?.writeText(text);
      }}
    >
      {label}
    </button>
  );
}
