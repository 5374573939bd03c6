// Runs one s3rver in its own process (so it does not share an event loop with what is measured).
// argv: <directory> <bucket,bucket,...>; prints {"port":N} when listening; stops on SIGTERM.
import S3rver from 's3rver';

const [dir, buckets] = process.argv.slice(2);
const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, vhostBuckets: false, configureBuckets: buckets.split(',').map((name) => ({ name })) });
const addr = await s.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
