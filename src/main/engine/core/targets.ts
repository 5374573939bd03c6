// The destinations ("targets") of the config in use, as the services ask for them.
import type { TestConnectionResult } from '../../../shared/api';
import type { TargetConfig } from '../../../shared/config';
import { createBackend } from '../backends';
import { testConnection } from '../backends/probe';
import { ConfigError } from '../config/config';
import type { ConfigStore } from './config-store';

export class TargetRegistry {
  constructor(private readonly config: ConfigStore) {}

  /** Enabled targets in priority order. */
  enabled(): TargetConfig[] {
    return this.config
      .get()
      .targets.filter((t) => t.enabled)
      .sort((a, b) => a.priority - b.priority);
  }

  /** A target of the config (enabled or not); a ConfigError when there is none with that id. */
  require(id: string): TargetConfig {
    const t = this.config.get().targets.find((x) => x.id === id);
    if (!t) throw new ConfigError(`There is no destination with the id "${id}".`);
    return t;
  }

  label(id: string): string {
    return this.config.get().targets.find((t) => t.id === id)?.label ?? id;
  }

  /** Try a destination's settings, saved or not: a backend of its own, closed after (no retries: the first answer counts). */
  async test(t: TargetConfig, signal?: AbortSignal): Promise<TestConnectionResult> {
    const backend = createBackend(t, { retry: false });
    try {
      return await testConnection(backend, signal);
    } finally {
      backend.close?.();
    }
  }
}
