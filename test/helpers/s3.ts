// A real S3 server for tests: s3rver on loopback, one per call, in its own temp dir.
// Set TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY_ID, TEST_S3_SECRET_ACCESS_KEY, TEST_S3_BUCKET
// (and optionally TEST_S3_REGION, TEST_S3_PRESET) to point the conformance suite at a real
// MinIO or R2 bucket instead: see `externalS3()`.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3TargetConfig } from '../../src/shared/config';

export const S3RVER_KEY = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  port: number;
  bucket: string;
  directory: string;
  /** A target config pointing at this server. */
  target(id: string, extra?: Partial<S3TargetConfig>): S3TargetConfig;
  /** Stop answering: every open connection is cut, new ones are refused. */
  stop(): Promise<void>;
  /** Start again on the same port with the same data. */
  start(): Promise<void>;
  running(): boolean;
  /** Stop and delete the data. */
  dispose(): Promise<void>;
}

export async function startS3(opts: { buckets?: string[]; port?: number; directory?: string } = {}): Promise<TestS3> {
  const buckets = opts.buckets ?? ['triplicate'];
  const directory = opts.directory ?? mkdtempSync(join(tmpdir(), 'trip-s3-'));
  let port = opts.port ?? 0;
  let instance: S3rver | null = null;
  let httpServer: Server | null = null;

  const start = async () => {
    if (instance) return;
    const s = new S3rver({
      address: '127.0.0.1',
      port,
      silent: true,
      directory,
      configureBuckets: buckets.map((name) => ({ name, configs: [] })),
      vhostBuckets: false,
    });
    const addr = (await s.run()) as AddressInfo;
    port = addr.port;
    instance = s;
    httpServer = (s as unknown as { httpServer: Server }).httpServer;
  };
  const stop = async () => {
    if (!instance || !httpServer) return;
    const srv = httpServer;
    instance = null;
    httpServer = null;
    const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
    srv.closeAllConnections();
    await closed;
  };
  await start();
  const endpoint = () => `http://127.0.0.1:${port}`;
  return {
    get endpoint() {
      return endpoint();
    },
    get port() {
      return port;
    },
    bucket: buckets[0]!,
    directory,
    target(id, extra = {}) {
      return {
        id,
        label: id,
        kind: 's3',
        preset: 'minio',
        endpoint: endpoint(),
        region: 'us-east-1',
        bucket: buckets[0]!,
        prefix: '',
        pathStyle: true,
        credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
        priority: 10,
        enabled: true,
        concurrency: 4,
        versionsPrefix: '.triplicate/versions/',
        ...extra,
      };
    },
    stop,
    start,
    running: () => instance !== null,
    async dispose() {
      await stop();
      // A request cut off by the close may still be between s3rver's mkdirp and its open of a part
      // or object file, on a write stream without an error handler: with the folder gone that open
      // is an uncaught ENOENT in the test process (seen once in CI). Let those opens happen first.
      await new Promise((r) => setTimeout(r, 200));
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** A real external S3 target from TEST_S3_* env vars, or null. Each call gets a fresh prefix. */
export function externalS3(id = 'external'): S3TargetConfig | null {
  const e = process.env;
  if (!e.TEST_S3_ENDPOINT || !e.TEST_S3_ACCESS_KEY_ID || !e.TEST_S3_SECRET_ACCESS_KEY || !e.TEST_S3_BUCKET) return null;
  const preset = (e.TEST_S3_PRESET ?? 'minio') as S3TargetConfig['preset'];
  return {
    id,
    label: id,
    kind: 's3',
    preset,
    endpoint: e.TEST_S3_ENDPOINT,
    region: e.TEST_S3_REGION ?? (preset === 'r2' ? 'auto' : 'us-east-1'),
    bucket: e.TEST_S3_BUCKET,
    prefix: `triplicate-test/${Date.now()}-${Math.random().toString(36).slice(2, 8)}/`,
    pathStyle: preset !== 'aws',
    credentials: { accessKeyId: e.TEST_S3_ACCESS_KEY_ID, secretAccessKey: e.TEST_S3_SECRET_ACCESS_KEY },
    priority: 10,
    enabled: true,
    concurrency: 4,
    versionsPrefix: '.triplicate/versions/',
  };
}
