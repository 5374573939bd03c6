// `GET /metrics` in Prometheus text format: what a remote admin's Grafana wants to alert on.
import { getHeapSpaceStatistics } from 'node:v8';
import type { SyncStatus } from '../../../shared/api';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function metricsText(s: SyncStatus, lanes: { lane: string; state: string; n: number }[], startedAt: number): string {
  const out: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const l = Object.entries(labels).map(([k, val]) => `${k}="${esc(val)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(v) ? v : 0}`);
    }
  };
  metric('triplicate_files', 'Files in the catalog.', 'gauge', [[{}, s.total_files]]);
  metric('triplicate_files_bytes', 'Bytes of the files in the catalog.', 'gauge', [[{}, s.total_size_bytes]]);
  metric('triplicate_safe_files', 'Files synced to every enabled destination.', 'gauge', [[{}, s.safe_files]]);
  metric('triplicate_missing_local_files', 'Cataloged files no longer on local disk.', 'gauge', [[{}, s.missing_local_files]]);
  const copies: [Record<string, string>, number][] = [];
  const up: [Record<string, string>, number][] = [];
  const rate: [Record<string, string>, number][] = [];
  for (const [id, t] of Object.entries(s.targets)) {
    for (const st of ['pending', 'uploading', 'synced', 'failed', 'skipped'] as const) {
      const v = st === 'synced' ? t.synced_count : t[st];
      copies.push([{ target: id, state: st }, v]);
    }
    up.push([{ target: id }, t.state === 'online' || t.state === 'unknown' ? 1 : 0]);
    rate.push([{ target: id }, t.rate_bps]);
  }
  metric('triplicate_copies', 'Copies per destination and state.', 'gauge', copies);
  metric('triplicate_target_up', '1 when the destination answers, 0 when offline, paused or disabled.', 'gauge', up);
  metric('triplicate_upload_rate_bytes', 'Upload rate per destination, bytes per second.', 'gauge', rate);
  metric('triplicate_jobs', 'Queued and running jobs per lane.', 'gauge', lanes.map((r) => [{ lane: r.lane, state: r.state }, r.n] as [Record<string, string>, number]));
  metric('triplicate_paused', '1 when all backups are paused.', 'gauge', [[{}, s.paused ? 1 : 0]]);
  metric('triplicate_uptime_seconds', 'Seconds since the engine started.', 'gauge', [[{}, Math.round((Date.now() - startedAt) / 1000)]]);
  // the process itself, under the names Prometheus's own client libraries use
  const mem = process.memoryUsage();
  metric('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', [[{}, mem.rss]]);
  metric('nodejs_heap_size_used_bytes', 'JavaScript heap in use, bytes.', 'gauge', [[{}, mem.heapUsed]]);
  metric('nodejs_heap_size_total_bytes', 'JavaScript heap reserved, bytes.', 'gauge', [[{}, mem.heapTotal]]);
  metric('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers, SQLite statements), bytes.', 'gauge', [[{}, mem.external]]);
  // per space, as prom-client names them: the young generation's size shows the engine's Node
  // options took (src/shared/engine-flags.ts)
  const spaces = getHeapSpaceStatistics().map((sp) => [sp.space_name.replace(/_space$/, ''), sp] as const);
  metric('nodejs_heap_space_size_total_bytes', 'JavaScript heap reserved per space, bytes.', 'gauge', spaces.map(([space, sp]) => [{ space }, sp.space_size]));
  metric('nodejs_heap_space_size_used_bytes', 'JavaScript heap in use per space, bytes.', 'gauge', spaces.map(([space, sp]) => [{ space }, sp.space_used_size]));
  const cpu = process.cpuUsage();
  metric('process_cpu_seconds_total', 'User and system CPU time spent, seconds.', 'counter', [[{}, (cpu.user + cpu.system) / 1e6]]);
  return `${out.join('\n')}\n`;
}
