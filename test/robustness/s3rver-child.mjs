// One s3rver in its own process for the robustness harness (so it never shares an event loop with
// the engine or the harness), with two gaps of s3rver filled so it behaves like real S3 where the
// harness needs it:
//
// 1. Multipart bookkeeping. s3rver keeps an unfinished multipart upload as a directory
//    `<dir>/<bucket>/._S3rver_uploads/<upload id>/` but implements neither ListMultipartUploads nor
//    AbortMultipartUpload, so nothing could ever remove an upload a crash left behind. Here
//    GET /<bucket>?uploads lists those directories and DELETE /<bucket>/<key>?uploadId=X removes one,
//    as S3, MinIO and R2 do. The engine's own abort and start-up cleanup then run for real, and the
//    harness can count leftovers by looking at the directory.
// 2. Long names. s3rver stores an object as `<last segment>._S3rver_object`, so a 255-byte file
//    name (legal locally, legal in S3) does not fit the local file system. Segments above 200 bytes
//    are stored split over nested directories (`/§+` marks a continuation) and joined again when
//    listed. Real S3 has no per-segment limit; this only lets s3rver store what S3 would.
// 3. Atomic PUT. s3rver streams a PUT straight into the object's file, so a client that dies in the
//    middle leaves a truncated object under the old metadata. S3 keeps the old object whole until a
//    new one is complete: here the body goes to a temp file that is renamed into place only when
//    the whole announced length arrived.
//
// argv: <directory> <bucket,bucket,...> [port]; prints {"port":N} when listening; stops on SIGTERM.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

const [dir, buckets, portArg] = process.argv.slice(2);

const CONT = '§+';
const SEG_MAX = 200;
function splitSegment(seg) {
  if (Buffer.byteLength(seg) <= SEG_MAX) return seg;
  const chunks = [];
  let cur = '';
  for (const ch of seg) {
    if (Buffer.byteLength(cur + ch) > SEG_MAX) {
      chunks.push(cur);
      cur = '';
    }
    cur += ch;
  }
  chunks.push(cur);
  return chunks.join(`/${CONT}`);
}
const origEncode = FilesystemStore.encodeKeyPath;
const origDecode = FilesystemStore.decodeKeyPath;
FilesystemStore.encodeKeyPath = (key) => origEncode(key.split('/').map(splitSegment).join('/'));
FilesystemStore.decodeKeyPath = (keyPath) => origDecode(keyPath).split(`/${CONT}`).join('');

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdir(dirname(objectPath), { recursive: true });
  const tmp = `${objectPath}.part-${randomBytes(6).toString('hex')}`;
  const md5 = createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(object.content)) {
      await fs.writeFile(tmp, object.content);
      md5.update(object.content);
      size = object.content.length;
    } else {
      const meter = new Transform({
        transform(chunk, _enc, cb) {
          md5.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(object.content, meter, createWriteStream(tmp));
    }
    // only a request body announces its length (a multipart completion concatenates parts)
    const announced = Number(object.content?.headers?.['content-length']);
    if (Number.isFinite(announced) && announced !== size) throw new Error(`incomplete body: ${size} of ${announced} bytes`);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fs.rename(tmp, objectPath);
  const hex = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, hex);
  return { size, md5: hex };
};

const xmlEscape = (s) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);

function uploadsDir(bucket) {
  return join(dir, bucket, '._S3rver_uploads');
}

async function listUploads(bucket, prefix) {
  let ids = [];
  try {
    ids = await fs.readdir(uploadsDir(bucket));
  } catch {
    return [];
  }
  const out = [];
  for (const id of ids) {
    try {
      const key = await fs.readFile(join(uploadsDir(bucket), id, 'key'), 'utf8');
      const st = await fs.stat(join(uploadsDir(bucket), id));
      if (!prefix || key.startsWith(prefix)) out.push({ key, id, initiated: new Date(st.birthtimeMs || st.ctimeMs) });
    } catch {
      // an upload directory without its key file: a part arrived after the upload was aborted
      const st = await fs.stat(join(uploadsDir(bucket), id)).catch(() => null);
      if (st) out.push({ key: '', id, initiated: new Date(st.ctimeMs) });
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
}

function multipartShim() {
  return async (ctx, next) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    const bucket = m?.[1];
    if (!bucket || !(await fs.stat(join(dir, bucket)).catch(() => null))) return next();
    if (ctx.method === 'GET' && !m[2] && 'uploads' in ctx.query) {
      const uploads = await listUploads(bucket, ctx.query.prefix ?? '');
      ctx.status = 200;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(ctx.query.prefix ?? '')}</Prefix><IsTruncated>false</IsTruncated>` +
        uploads
          .filter((u) => u.key)
          .map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`)
          .join('') +
        '</ListMultipartUploadsResult>';
      return;
    }
    if (ctx.method === 'DELETE' && m[2] && typeof ctx.query.uploadId === 'string') {
      const id = ctx.query.uploadId;
      const p = join(uploadsDir(bucket), id);
      if (!/^[0-9a-f]+$/.test(id) || !(await fs.stat(p).catch(() => null))) {
        ctx.status = 404;
        ctx.type = 'application/xml';
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${xmlEscape(id)}</UploadId></Error>`;
        return;
      }
      await fs.rm(p, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if ((ctx.method === 'PUT' || ctx.method === 'POST') && m[2] && typeof ctx.query.uploadId === 'string') {
      // s3rver would re-create the directory of an aborted upload for a late part (and leave it
      // forever); S3 answers NoSuchUpload.
      const id = ctx.query.uploadId;
      if (!/^[0-9a-f]+$/.test(id) || !(await fs.stat(join(uploadsDir(bucket), id, 'key')).catch(() => null))) {
        ctx.req.resume();
        ctx.status = 404;
        ctx.type = 'application/xml';
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${xmlEscape(id)}</UploadId></Error>`;
        return;
      }
    }
    return next();
  };
}

const s = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg ?? 0),
  silent: true,
  directory: dir,
  vhostBuckets: false,
  configureBuckets: buckets.split(',').map((name) => ({ name })),
});
// Before s3rver's router (the last middleware), after its logger and XML encoder.
s.middleware.splice(s.middleware.length - 1, 0, multipartShim());
const addr = await s.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
