// What the last Test connection found about each destination (issue 19): above all whether its key
// can delete the backups. The finding outlives the test's dialog (the card keeps an amber line) and
// the engine (kept in the catalog's kv table), but only while it describes the destination: it is
// tied to a fingerprint of the settings it was made with (kind, provider, address, bucket, folder,
// access key, Object Lock days), and a change of any of them drops it.
//
// The destination form tests settings before they are saved. Such a result is held in memory, and
// taken as the destination's own when the config saved next has those same settings: the form's
// test counts for "Add destination" and "Save" without a second test.
import { createHash } from 'node:crypto';
import type { TargetTested, TestConnectionResult } from '../../../shared/api';
import type { Config, TargetConfig } from '../../../shared/config';
import type { Catalog } from '../catalog/catalog';
import type { ConfigStore } from './config-store';

const KV = 'key-checks';

interface Kept extends TargetTested {
  /** The fingerprint of the settings tested (a hash: the key id stays out of the catalog). */
  sig: string;
}

/** What a finding is about: a different key, address or bucket is another destination to test. */
export function settingsSig(t: TargetConfig): string {
  const what =
    t.kind === 's3'
      ? ['s3', t.preset, t.endpoint ?? '', t.bucket, t.prefix, t.credentials.accessKeyId, t.immutableDays ?? 0]
      : ['folder', t.path, t.prefix];
  return createHash('sha256').update(JSON.stringify(what)).digest('hex');
}

export class KeyChecks {
  private kept: Record<string, Kept>;
  /** Results of unsaved settings (the form), by destination id: the last one each. */
  private readonly unsaved = new Map<string, Kept>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly config: ConfigStore,
    private readonly catalog: Catalog,
  ) {
    this.kept = this.load();
    // A hand edit while the engine was stopped: the findings of settings no longer in use go now.
    this.follow(config.get());
  }

  /** The last test of this destination's settings in use, if one was made since they were set. */
  of(t: TargetConfig): TargetTested | undefined {
    const k = this.kept[t.id];
    if (!k || k.sig !== settingsSig(t)) return undefined;
    return { at: k.at, ...(k.can_delete ? { can_delete: k.can_delete } : {}), findings: k.findings };
  }

  /**
   * A test of `t` ended. Only a test that got as far as deleting says what the key can do; a failed
   * one leaves the last finding as it was (the key did not change).
   */
  record(t: TargetConfig, r: TestConnectionResult, at = Date.now()): void {
    if (!r.ok || !r.can_delete) return;
    const entry: Kept = { sig: settingsSig(t), at, can_delete: r.can_delete, findings: r.findings ?? [] };
    const saved = this.config.get().targets.find((x) => x.id === t.id);
    if (saved && settingsSig(saved) === entry.sig) {
      this.unsaved.delete(t.id);
      this.keep({ ...this.kept, [t.id]: entry });
    } else {
      this.unsaved.set(t.id, entry);
    }
  }

  /** Told when a destination's finding changes (the status shows it). Returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** The config changed: a form's test of the settings now saved becomes theirs; stale findings go. */
  follow(next: Config): void {
    const kept: Record<string, Kept> = {};
    for (const t of next.targets) {
      const sig = settingsSig(t);
      const tested = this.unsaved.get(t.id);
      if (tested?.sig === sig) {
        this.unsaved.delete(t.id);
        kept[t.id] = tested;
      } else if (this.kept[t.id]?.sig === sig) {
        kept[t.id] = this.kept[t.id]!;
      }
    }
    const same = Object.keys(kept).length === Object.keys(this.kept).length && Object.entries(kept).every(([id, k]) => this.kept[id] === k);
    if (!same) this.keep(kept);
  }

  private keep(kept: Record<string, Kept>): void {
    this.kept = kept;
    this.catalog.kvSet(KV, JSON.stringify(kept));
    for (const fn of this.listeners) fn();
  }

  private load(): Record<string, Kept> {
    const text = this.catalog.kvGet(KV);
    if (!text) return {};
    try {
      const v = JSON.parse(text) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Kept>) : {};
    } catch {
      return {}; // unreadable: the next test writes it again
    }
  }
}
