// `triplicate demo`: the one-command tour. Two embedded S3 servers (s3rver) play the NAS and the
// cloud, a storage root gets sample photos and a short .MOV, and the engine serves them.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import S3rver from 's3rver';
import type { ConfigInput } from '../../shared/config';
import { serveEngine } from './serve';
import { saveConfig, defaultConfigPath, loadConfig } from './config/config';
import { createEngine } from './engine';
import { existsSync } from 'node:fs';

const run = promisify(execFile);

async function ffmpegPath(): Promise<string> {
  try {
    const m = (await import('@ffmpeg-installer/ffmpeg')) as { default?: { path: string }; path?: string };
    return (m.default?.path ?? m.path)!.replace('app.asar', 'app.asar.unpacked');
  } catch {
    return 'ffmpeg';
  }
}

const SAMPLES: { name: string; source: string }[] = [
  { name: 'Entrance hall.jpg', source: 'testsrc2=size=1600x1067' },
  { name: 'Gallery 2/Painting restoration.jpg', source: 'mandelbrot=size=1200x900' },
  { name: 'Gallery 2/Colour chart.jpg', source: 'smptehdbars=size=1280x720' },
  { name: 'Warehouse/Pallet 0042.jpg', source: 'cellauto=size=1024x768:rule=110' },
  { name: 'Warehouse/Loading bay (night).jpg', source: 'life=size=1024x768:mold=10:ratio=0.1:death_color=#203040:life_color=#80c0ff' },
  { name: 'Événements/Vernissage 🎉.jpg', source: 'rgbtestsrc=size=1200x800' },
];

/** Write sample media into `dir` with ffmpeg's test sources: nothing large is committed to the repo. */
export async function makeSampleMedia(dir: string): Promise<string[]> {
  const ffmpeg = await ffmpegPath();
  const made: string[] = [];
  for (const s of SAMPLES) {
    const out = join(dir, ...s.name.split('/'));
    mkdirSync(join(out, '..'), { recursive: true });
    await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', s.source, '-frames:v', '1', '-q:v', '3', out]);
    made.push(s.name);
  }
  const mov = join(dir, 'Videos', 'Guided tour.MOV');
  mkdirSync(join(mov, '..'), { recursive: true });
  await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '3', '-c:v', 'mjpeg', '-q:v', '5', '-c:a', 'pcm_s16le', mov]);
  made.push('Videos/Guided tour.MOV');
  return made;
}

export async function startDemoS3(dir: string, bucket: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }], vhostBuckets: false });
  const addr = (await s.run()) as AddressInfo;
  return { endpoint: `http://127.0.0.1:${addr.port}`, close: () => s.close() };
}

export async function cmdDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, 'admin-port': { type: 'string' }, 'download-port': { type: 'string' } }, strict: true });
  const base = resolve(values['data-dir'] ?? mkdtempSync(join(tmpdir(), 'triplicate-demo-')));
  const media = join(base, 'media');
  const dataDir = join(base, 'data');
  mkdirSync(media, { recursive: true });
  process.stderr.write(`Triplicate demo in ${base}\n  - making sample photos and a short video…\n`);
  if (!existsSync(join(media, 'Entrance hall.jpg'))) await makeSampleMedia(media);
  const nas = await startDemoS3(join(base, 'nas-server'), 'nas-backup');
  const cloud = await startDemoS3(join(base, 'cloud-server'), 'cloud-backup');
  process.stderr.write(`  - "NAS" S3 server at ${nas.endpoint}, "Cloud" S3 server at ${cloud.endpoint}\n`);
  const key = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const prev = existsSync(defaultConfigPath(dataDir)) ? loadConfig(defaultConfigPath(dataDir)) : undefined;
  const cfg: ConfigInput = {
    siteName: 'Demo museum',
    roots: [{ id: 'media', label: 'Photos and videos', path: media }],
    targets: [
      { id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: nas.endpoint, region: 'us-east-1', bucket: 'nas-backup', pathStyle: true, credentials: key, priority: 1 },
      { id: 'cloud', label: 'Cloud', kind: 's3', preset: 'other', endpoint: cloud.endpoint, region: 'us-east-1', bucket: 'cloud-backup', pathStyle: true, credentials: key, priority: 2 },
    ],
    sync: { ...(prev?.sync ?? {}), stabilityMs: 1000, backoffSeconds: [5, 15, 30, 60, 300] },
    server: { ...(prev?.server ?? {}), downloadHost: '127.0.0.1', adminPort: values['admin-port'] ? Number(values['admin-port']) : 0, downloadPort: values['download-port'] ? Number(values['download-port']) : 0 },
  };
  saveConfig(defaultConfigPath(dataDir), cfg);
  const engine = createEngine({ dataDir });
  const origStop = engine.stop.bind(engine);
  engine.stop = async () => {
    await origStop();
    await Promise.allSettled([nas.close(), cloud.close()]);
  };
  const started = engine.start.bind(engine);
  engine.start = async () => {
    const ep = await started();
    process.stderr.write(`  - open the console: ${ep.adminUrl}/#token=${ep.token}\n  - stop with Ctrl+C\n`);
    return ep;
  };
  return serveEngine(engine, { demo: { base, media, nas: nas.endpoint, cloud: cloud.endpoint } });
}
