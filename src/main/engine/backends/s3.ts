// S3-compatible backend: AWS S3, Cloudflare R2, Backblaze B2, Wasabi, MinIO, RustFS, s3rver.
//
// Choices that matter (docs/architecture.md, "S3-compatible servers are not AWS"):
// - one HTTP client per target (s3-http.ts): one undici connection pool for every request, GET,
//   HEAD and single PUT signed there, the rest through the AWS SDK on the same pool;
// - no SDK checksums and no SDK retries (s3-http.ts); retries are retry.ts's, which re-opens the
//   body from the start, and the part loop's below;
// - small files go up in one streamed PutObject with a Content-Length, signed with the SHA-256 of
//   the content; bigger ones in parts of a fixed size (R2 needs equal parts), `queueSize` in
//   flight, each part read straight into a reused buffer (putParts), from the body's own block
//   reader (a local file) or from its stream;
// - an abort (or any failure) of a multipart upload aborts it on the server before put() returns,
//   so no orphaned parts keep costing money. What a crash leaves behind, cleanupIncomplete() removes.
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { S3TargetConfig } from '../../../shared/config';
import { MAX_KEY_BYTES, utf8Length } from '../../../shared/keys';
import { createHash } from 'node:crypto';
import { httpStatusOf, isNotFound, isUnreachable, mapS3Error, refusedDelete, sdkErrorName, type S3ErrorContext } from './s3-errors';
import { outputFromHeaders, S3Http, type ObjectHeaders } from './s3-http';
import { ioBuffers } from '../buffers';
import { concurrencyCeiling, partSizeFor, resolveS3Settings, retainUntil, type EffectiveS3Settings } from './presets';
import { BodySizeError, localBodyError, meterBody, streamReader, throwIfAborted, wrapBody } from './streams';
import {
  abortError,
  StorageError,
  type BlockReader,
  type BodySource,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ObjectInfo,
  type ObjectLockState,
  type PutOptions,
  type StorageBackend,
} from './types';

const GiB = 1024 * 1024 * 1024;
/** CopyObject's limit; bigger objects are copied part by part with UploadPartCopy. */
const MAX_SINGLE_COPY = 5 * GiB;
/** Part size of a multipart copy (server-side, so large parts cost nothing locally). */
const COPY_PART_SIZE = 512 * 1024 * 1024;
/**
 * Tries of one part (or of the completion) of a multipart upload before the upload fails: a part
 * that fails hands the whole upload to the job's backoff (30 s and more), so a part is worth a few
 * more tries (0.25 s doubling, at most 4 s apart: ~16 s in all). rclone's default is 10 low-level
 * retries; with 4, a server refusing every second request failed one 26 MB upload in CI.
 */
const PART_ATTEMPTS = 8;
/**
 * Tries of a part when the server is not there at all (connection refused, no route; see
 * isUnreachable): an outage is the lane's to handle, but a blip of a second or two (a Wi-Fi drop, a NAS
 * switch port flapping) is not one: a multipart upload given up is sent again from its first part,
 * and its abort may fail too while the link is down. 6 tries wait 2-4 s in all; with 3
 * (<= 0.75 s) the robustness harness's 0.5-2 s flaps left two 12 MB uploads unfinished in one run.
 */
const PART_ATTEMPTS_UNREACHABLE = 6;
/** Upper bound on listing pages, so a misbehaving server cannot loop us forever (10^9 keys). */
const MAX_LIST_PAGES = 1_000_000;

export interface S3BackendOptions {
  /** TCP connect timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /** A connection idle this long fails the request (a stalled server). Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Connections beyond what this target's uploads need (downloads and restores sharing the backend:
   * see core/targets.ts). Default 0.
   */
  extraSockets?: number;
  /** Keys per ListObjectsV2 page (1..1000). Default 1000; tests use small pages. */
  listPageSize?: number;
  /** Objects above this are copied with UploadPartCopy. Default 5 GiB (the CopyObject limit). */
  multipartCopyThreshold?: number;
  /** Part size of a multipart copy. Default 512 MiB. */
  copyPartSize?: number;
  /** How long a successful "bucket exists" check is trusted, for head() 404s. Default 60 s. */
  bucketCheckTtlMs?: number;
  /** Problems that did not fail the call (an abort the server refused). Never contains secrets. */
  onWarning?: (message: string, detail: string) => void;
}

/** S3 backends built in this process, by target id: each has its own connections (diagnostics, tests). */
export const s3BackendsBuilt = new Map<string, number>();

export class S3Backend implements StorageBackend {
  readonly id: string;
  readonly kind = 's3' as const;
  readonly description: string;
  readonly prefix: string;
  readonly settings: EffectiveS3Settings;
  /** The AWS SDK client (multipart, list, delete, copy), sending on the target's one pool. */
  readonly client: S3Client;
  private readonly http: S3Http;
  private readonly opts: Required<Omit<S3BackendOptions, 'onWarning' | 'extraSockets'>> & Pick<S3BackendOptions, 'onWarning'>;
  private readonly host: string;
  private bucketOkUntil = 0;
  /** Set once ListObjectsV2 failed here and v1 worked (see listPage). */
  private listV1 = false;

  constructor(target: S3TargetConfig, opts: S3BackendOptions = {}) {
    this.id = target.id;
    s3BackendsBuilt.set(target.id, (s3BackendsBuilt.get(target.id) ?? 0) + 1);
    this.prefix = target.prefix;
    this.settings = resolveS3Settings(target);
    this.opts = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      listPageSize: Math.min(1000, Math.max(1, opts.listPageSize ?? 1000)),
      multipartCopyThreshold: opts.multipartCopyThreshold ?? MAX_SINGLE_COPY,
      copyPartSize: opts.copyPartSize ?? COPY_PART_SIZE,
      bucketCheckTtlMs: opts.bucketCheckTtlMs ?? 60_000,
      onWarning: opts.onWarning,
    };
    const where = this.settings.endpoint ?? `AWS ${this.settings.region}`;
    this.host = hostOf(this.settings.endpoint) ?? `s3.${this.settings.region}.amazonaws.com`;
    this.description = `${target.label} (${where}, bucket ${this.settings.bucket})`;
    this.http = new S3Http({
      description: this.description,
      bucket: this.settings.bucket,
      region: this.settings.region,
      endpoint: this.settings.endpoint,
      forcePathStyle: this.settings.forcePathStyle,
      credentials: { accessKeyId: target.credentials.accessKeyId, secretAccessKey: target.credentials.secretAccessKey },
      // As many uploads as the lane may ever choose (its ceiling), each with `queueSize` parts in
      // flight, plus heads and lists next to them, plus what the engine's other users of this
      // backend need (extraSockets). A bound, not a count: sockets open as requests need them.
      connections: uploadSockets(concurrencyCeiling(target), this.settings.queueSize) + Math.max(0, Math.floor(opts.extraSockets ?? 0)),
      connectTimeoutMs: this.opts.connectTimeoutMs,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      onWarning: opts.onWarning,
    });
    this.client = this.http.client;
  }

  // ---------------------------------------------------------------------------------------------
  // put

  async put(key: string, body: BodySource, opts: PutOptions): Promise<ObjectInfo> {
    this.checkKey(key);
    throwIfAborted(opts.signal);
    if (body.size > this.settings.multipartThreshold) return this.putParts(key, body, opts);
    if (body.whole) return this.putWhole(key, body.size, body.whole, opts);
    let src: Readable;
    try {
      src = body.open();
    } catch (e) {
      throw localBodyError(e as Error, key);
    }
    const metered = meterBody(src, body.size, opts.onProgress);
    const contentType = opts.contentType ?? 'application/octet-stream';
    const lock = this.lockFor(opts);
    let etag: string;
    let versionId: string | undefined;
    try {
      ({ etag, versionId } = await this.putObject(key, metered.stream, body.size, contentType, lock, opts));
    } catch (e) {
      metered.stream.destroy();
      if (opts.signal?.aborted) throw abortError();
      const local = metered.localError();
      if (local) throw localBodyError(local, key);
      throw this.mapError(e, 'put', key);
    }
    return { key, size: body.size, sha256: opts.sha256, mtimeMs: Math.round(opts.mtimeMs), etag: stripQuotes(etag), contentType, singlePart: true, versionId, lockedUntil: lock?.until };
  }

  /** put() of a body read whole (BodySource.whole): one buffer, no stream. */
  private async putWhole(key: string, size: number, whole: () => Promise<Buffer>, opts: PutOptions): Promise<ObjectInfo> {
    let buf: Buffer;
    try {
      buf = await whole();
    } catch (e) {
      if (opts.signal?.aborted) throw abortError(); // waited for the bandwidth budget, then stopped
      throw localBodyError(e as Error, key);
    }
    if (buf.length !== size) throw localBodyError(new BodySizeError(size, buf.length), key);
    const contentType = opts.contentType ?? 'application/octet-stream';
    const lock = this.lockFor(opts);
    let sent: { etag: string; versionId: string | undefined };
    try {
      sent = await this.putObject(key, buf, size, contentType, lock, opts);
    } catch (e) {
      if (opts.signal?.aborted) throw abortError();
      throw this.mapError(e, 'put', key);
    }
    opts.onProgress?.(size);
    return { key, size, sha256: opts.sha256, mtimeMs: Math.round(opts.mtimeMs), etag: stripQuotes(sent.etag), contentType, singlePart: true, versionId: sent.versionId, lockedUntil: lock?.until };
  }

  /** One PutObject, signed here; its ETag and version id. */
  private async putObject(
    key: string,
    body: Readable | Buffer,
    size: number,
    contentType: string,
    lock: { until: number; headers: boolean } | undefined,
    opts: PutOptions,
  ): Promise<{ etag: string; versionId: string | undefined }> {
    const res = await this.http.send({
      method: 'PUT',
      key,
      headers: {
        'content-type': contentType,
        'x-amz-meta-sha256': opts.sha256,
        'x-amz-meta-mtime': String(Math.round(opts.mtimeMs)),
        ...(lock?.headers ? lockHeaders(lock.until, opts.sha256) : {}),
      },
      body,
      contentLength: size,
      // The SHA-256 of the content: S3, R2 and MinIO refuse a body that does not match it.
      payloadHash: /^[0-9a-f]{64}$/.test(opts.sha256) ? opts.sha256 : 'UNSIGNED-PAYLOAD',
      signal: opts.signal,
    });
    // S3 always returns an ETag for a stored object; a 200 without one is some other server.
    const etag = res.headers.etag;
    if (!etag) throw this.notS3('put', key, 'PutObject answered 200 without an ETag');
    return { etag, versionId: headerOf(res.headers['x-amz-version-id']) };
  }

  /**
   * The lock of a write (`immutableDays`): until when, and whether it goes on the request as
   * Object Lock headers (on R2 the bucket's lock rule does it). undefined: no lock.
   */
  private lockFor(opts: { unlocked?: boolean }): { until: number; headers: boolean } | undefined {
    const days = this.settings.lockDays;
    if (!(days > 0) || opts.unlocked) return undefined;
    return { until: retainUntil(Date.now(), days), headers: this.settings.lockHeaders };
  }

  /** Object Lock parameters of an SDK write (CreateMultipartUpload, CopyObject). */
  private lockParams(lock: { until: number; headers: boolean } | undefined): { ObjectLockMode?: 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date } {
    return lock?.headers ? { ObjectLockMode: LOCK_MODE, ObjectLockRetainUntilDate: new Date(lock.until) } : {};
  }

  /**
   * A multipart upload: each part is read straight into the buffer it is sent from, `queueSize`
   * parts in flight, reads in order (a local file's reader hashes what it reads), part buffers
   * reused across uploads. Parts are equal (R2); a part that fails for a passing reason is sent
   * again (sendRetrying); any failure or abort aborts the upload on the server before put()
   * returns.
   */
  private async putParts(key: string, body: BodySource, opts: PutOptions): Promise<ObjectInfo> {
    const ctl = linkedController(opts.signal);
    const signal = ctl.controller.signal;
    const contentType = opts.contentType ?? 'application/octet-stream';
    const { bucket } = this.settings;
    const partSize = partSizeFor(body.size, this.settings.partSize);
    const count = Math.ceil(body.size / partSize);
    const mpu: MultipartState = {};
    const lock = this.lockFor(opts);
    let local: Error | undefined;
    let reader: BlockReader | undefined;
    let etag: string | undefined;
    let versionId: string | undefined;
    try {
      try {
        reader = body.openReader ? await body.openReader() : streamReader(body.open(), signal);
      } catch (e) {
        local = e as Error;
        throw e;
      }
      throwIfAborted(signal);
      // Not cancellable, so that its UploadId is always known and can be aborted.
      const created = this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          ContentType: contentType,
          Metadata: { sha256: opts.sha256, mtime: String(Math.round(opts.mtimeMs)) },
          ...this.lockParams(lock),
        }),
      );
      mpu.creating = created.then(
        (r) => {
          mpu.uploadId = r.UploadId;
        },
        () => {},
      );
      const uploadId = (await created).UploadId;
      if (!uploadId) throw this.notS3('put', key, 'CreateMultipartUpload answered without an UploadId');
      throwIfAborted(signal);

      const parts: CompletedPart[] = new Array(count);
      let next = 0;
      let sent = 0;
      // Reads are chained so that part n is read after part n-1, whatever order the sends finish in.
      let lastRead: Promise<unknown> = Promise.resolve();
      const rd = reader;
      // A read that fails because the upload is being aborted (a stream torn down) is no local error.
      const readFailed = (e: unknown): never => {
        if (!signal.aborted) local ??= e as Error;
        throw e;
      };
      const worker = async () => {
        while (next < count && !signal.aborted) {
          const n = next++;
          const len = Math.min(partSize, body.size - n * partSize);
          const whole = ioBuffers.take(partSize);
          const buf = whole.subarray(0, len);
          const read = lastRead.then(() => rd.read(buf));
          lastRead = read.catch(() => undefined);
          const got = await read.catch(readFailed);
          if (got !== len) {
            local ??= new BodySizeError(body.size, n * partSize + got);
            throw local;
          }
          // AWS wants each part of a locked upload checked: Content-MD5 (UploadPart's docs).
          const md5 = lock?.headers ? createHash('md5').update(buf).digest('base64') : undefined;
          const out = await this.sendRetrying(
            () =>
              this.client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n + 1, Body: buf, ContentLength: len, ContentMD5: md5 }), {
                abortSignal: signal,
              }),
            signal,
            key,
            opts.onRetry,
          );
          if (!out.ETag) throw this.notS3('put', key, `UploadPart ${n + 1} answered without an ETag`);
          parts[n] = { PartNumber: n + 1, ETag: out.ETag };
          // Only a part the server took goes back to the pool: a failed request may still hold it.
          ioBuffers.give(whole);
          sent += len;
          opts.onProgress?.(sent);
        }
      };
      const results = await Promise.allSettled(
        Array.from({ length: Math.min(this.settings.queueSize, count) }, () =>
          worker().catch((e) => {
            if (!signal.aborted) mpu.firstError ??= e;
            ctl.controller.abort();
            throw e;
          }),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw mpu.firstError ?? failed.reason;
      throwIfAborted(signal);
      // The body must end where it was announced to: one more byte means the file grew.
      const more = await lastRead.then(() => rd.read(Buffer.allocUnsafe(1))).catch(readFailed);
      if (more > 0) {
        local = new BodySizeError(body.size, body.size + more);
        throw local;
      }
      const done = await this.sendRetrying(
        () => this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal }),
        signal,
        key,
        opts.onRetry,
      );
      etag = done.ETag;
      versionId = done.VersionId;
    } catch (e) {
      ctl.controller.abort();
      if (mpu.creating || mpu.uploadId) await this.abortMultipart(key, mpu);
      if (opts.signal?.aborted) throw abortError();
      if (local) throw localBodyError(local, key);
      throw this.mapError(mpu.firstError ?? e, 'put', key);
    } finally {
      ctl.dispose();
      await reader?.close().catch(() => undefined);
    }
    return { key, size: body.size, sha256: opts.sha256, mtimeMs: Math.round(opts.mtimeMs), etag: stripQuotes(etag), contentType, singlePart: false, versionId, lockedUntil: lock?.until };
  }

  /**
   * Send a part (or the completion) of a multipart upload, again where it failed for a passing
   * reason (5xx, throttling, a reset): one part is sent again, not the whole file. Without this a
   * server that refuses 1% of requests would never take a video of a few hundred parts. Each
   * failure sent again is told to `onRetry` (the one that ends the upload is put()'s own error).
   */
  private async sendRetrying<T>(send: () => Promise<T>, signal: AbortSignal, key: string, onRetry: PutOptions['onRetry']): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (e) {
        if (attempt >= PART_ATTEMPTS || signal.aborted) throw e;
        const err = this.mapError(e, 'put', key);
        if (!err.transient) throw e;
        // A server that is not there at all (switched off, unplugged) is the target's outage, for
        // the lane's health to handle: a few seconds of tries, not the full series.
        if (attempt >= PART_ATTEMPTS_UNREACHABLE && isUnreachable(e)) throw e;
        onRetry?.(err);
        await delay(Math.min(4000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
        if (signal.aborted) throw e;
      }
    }
  }

  /** Abort a multipart upload on the server; failures become warnings (cleanupIncomplete retries). */
  private async abortMultipart(key: string, state: MultipartState): Promise<void> {
    if (state.creating) {
      // The create request is not cancellable; wait for it, but not forever.
      await Promise.race([state.creating, delay(this.opts.connectTimeoutMs)]);
    }
    if (!state.uploadId) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key, UploadId: state.uploadId }));
    } catch (e) {
      if (sdkErrorName(e) === 'NoSuchUpload') return;
      // s3rver answers AbortMultipartUpload with MethodNotAllowed (it does not implement it).
      const err = this.mapError(e, 'abort-multipart', key);
      this.opts.onWarning?.(
        `The unfinished upload of "${key}" could not be removed from ${this.description}; Triplicate removes it at the next cleanup.`,
        `${err.detail}; upload id ${state.uploadId}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // get / head

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    this.checkKey(key);
    throwIfAborted(opts.signal);
    const range = opts.range;
    if (range && (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))) {
      throw new StorageError('invalid', `The byte range ${range.start}-${range.end ?? ''} is not valid.`, 'bad range');
    }
    let out: ObjectHeaders;
    let raw: Readable;
    try {
      const res = await this.http.send({ method: 'GET', key, headers: range ? { range: `bytes=${range.start}-${range.end ?? ''}` } : {}, signal: opts.signal });
      out = outputFromHeaders(res.headers);
      raw = res.body;
    } catch (e) {
      throw this.mapError(e, 'get', key, opts.signal);
    }
    const announced = out.ContentLength ?? 0;
    const cr = parseContentRange(out.ContentRange);
    const totalSize = cr?.total ?? announced;
    // What the caller gets: exactly the range asked for, even from servers that send more.
    let skip = 0;
    let contentLength = announced;
    if (range) {
      const sentStart = cr ? cr.start : 0; // no Content-Range: the server ignored Range, sent it all
      if (range.start >= totalSize || sentStart > range.start) {
        raw.destroy();
        throw new StorageError(
          'invalid',
          `The requested byte range of "${key}" is outside the object on ${this.description}.`,
          `get "${key}": asked ${range.start}-${range.end ?? ''}, got ${out.ContentRange ?? 'the whole object'} of ${totalSize}`,
        );
      }
      skip = range.start - sentStart;
      const wantEnd = Math.min(range.end ?? totalSize - 1, totalSize - 1);
      const sentEnd = cr ? cr.end : announced - 1;
      contentLength = Math.min(wantEnd, sentEnd) - range.start + 1;
    }
    const body = wrapBody(raw, (e) => this.mapError(e, 'get', key, opts.signal), opts.signal, { skip, take: contentLength });
    return { body, contentLength, totalSize, info: { ...infoFromHead(key, out), size: totalSize } };
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    this.checkKey(key);
    throwIfAborted(signal);
    const out = await this.headObject(key, 'head', signal);
    return out && infoFromHead(key, out);
  }

  /** HeadObject; null when the key is absent (and the bucket is there). */
  private async headObject(key: string, op: string, signal?: AbortSignal): Promise<ObjectHeaders | null> {
    try {
      return outputFromHeaders((await this.http.send({ method: 'HEAD', key, signal })).headers);
    } catch (e) {
      if (isNotFound(e)) {
        // A HEAD 404 has no body: "no such key" and "no such bucket" look the same. Make sure
        // the bucket is there, or a deleted bucket would look like "nothing uploaded yet".
        await this.assertBucket(signal);
        return null;
      }
      throw this.mapError(e, op, key, signal);
    }
  }

  private async assertBucket(signal?: AbortSignal): Promise<void> {
    if (Date.now() < this.bucketOkUntil) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.settings.bucket }), { abortSignal: signal });
      this.bucketOkUntil = Date.now() + this.opts.bucketCheckTtlMs;
    } catch (e) {
      if (isNotFound(e)) {
        throw new StorageError(
          'no_bucket',
          `The bucket "${this.settings.bucket}" does not exist on ${this.description}. Create it or fix the bucket name in Destinations.`,
          `head-bucket; ${sdkErrorName(e)}; HTTP 404`,
          { cause: e },
        );
      }
      throw this.mapError(e, 'head-bucket', undefined, signal);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // list / delete / copy

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    let after = opts.startAfter;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      throwIfAborted(opts.signal);
      const res = await this.listPage(prefix, after, token, opts.signal);
      for (const o of res.items) {
        after = o.key;
        yield o;
      }
      if (!res.truncated) return;
      token = res.token;
    }
  }

  /**
   * One page of a listing: ListObjectsV2, or ListObjects (v1, marker = last key) once v2 has
   * failed on this server. Why: s3rver's v2 pagination answers 500 on Node >= 17 (it encrypts its
   * continuation token with DES, which OpenSSL 3 no longer offers), and it runs our demo; some
   * older S3 clones have similar v2 bugs. v1 with a marker lists the same keys in the same order.
   */
  private async listPage(
    prefix: string,
    after: string | undefined,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ items: ObjectInfo[]; truncated: boolean; token?: string }> {
    const toInfo = (o: { Key?: string; Size?: number; LastModified?: Date; ETag?: string }): ObjectInfo[] =>
      // The listing carries no user metadata: sha256 and mtimeMs stay undefined (HEAD for them).
      o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified?.getTime(), etag: stripQuotes(o.ETag) }];
    const v1 = async () => {
      const out = await this.client.send(
        new ListObjectsCommand({ Bucket: this.settings.bucket, Prefix: prefix || undefined, Marker: after, MaxKeys: this.opts.listPageSize }),
        { abortSignal: signal },
      );
      this.assertListing(out.Name, prefix);
      const items = (out.Contents ?? []).flatMap(toInfo);
      // Without a delimiter v1 sends no NextMarker: the next page starts after the last key.
      return { items, truncated: !!out.IsTruncated && items.length > 0 };
    };
    if (this.listV1) {
      try {
        return await v1();
      } catch (e) {
        throw this.mapError(e, 'list', prefix, signal);
      }
    }
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.settings.bucket,
          Prefix: prefix || undefined,
          MaxKeys: this.opts.listPageSize,
          ContinuationToken: token,
          // S3 ignores StartAfter once a continuation token is given: send it on the first page.
          StartAfter: token ? undefined : after,
        }),
        { abortSignal: signal },
      );
      this.assertListing(out.Name, prefix);
      const items = (out.Contents ?? []).flatMap(toInfo);
      return { items, truncated: !!out.IsTruncated && !!out.NextContinuationToken, token: out.NextContinuationToken };
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (sdkErrorName(e) !== 'InternalError' || signal?.aborted) throw this.mapError(e, 'list', prefix, signal);
      let page;
      try {
        page = await v1();
      } catch {
        throw this.mapError(e, 'list', prefix, signal); // v1 fails too: report the original error
      }
      this.listV1 = true;
      this.opts.onWarning?.(`${this.description} failed a ListObjectsV2 page; Triplicate lists it with ListObjects (v1) from now on.`, `list "${prefix}": InternalError on v2`);
      return page;
    }
  }

  /**
   * Every S3 listing names its bucket. A 200 without one is not S3 at all (a web console, a
   * captive portal), and its "no objects" must not be taken for an empty bucket.
   */
  private assertListing(name: string | undefined, prefix: string): void {
    if (name !== undefined) return;
    throw this.notS3('list', prefix, 'listing without a bucket name');
  }

  private notS3(op: string, key: string, why: string): StorageError {
    return new StorageError(
      'server',
      `${this.description} answered in a way Triplicate does not understand. Check that the endpoint is the S3 API address (MinIO: port 9000, not the console port 9001).`,
      `${op} "${key}": ${why}`,
    );
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    this.checkKey(key);
    throwIfAborted(signal);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key }), { abortSignal: signal });
    } catch (e) {
      if (isNotFound(e)) return; // S3 answers 204 for absent keys; some servers say 404.
      throw this.deleteError(e, 'delete', key, signal);
    }
  }

  async deleteVersion(key: string, versionId: string, signal?: AbortSignal): Promise<void> {
    this.checkKey(key);
    throwIfAborted(signal);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key, VersionId: versionId }), { abortSignal: signal });
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.deleteError(e, 'delete-version', key, signal);
    }
  }

  /** A refused delete is that object's ('refused'), never an auth failure of the destination. */
  private deleteError(e: unknown, op: string, key: string, signal?: AbortSignal): StorageError {
    if (!signal?.aborted) {
      const refused = refusedDelete(e, this.errorContext(op, key));
      if (refused) return refused;
    }
    return this.mapError(e, op, key, signal);
  }

  /**
   * The bucket's Object Lock setting (GetObjectLockConfiguration). A bucket with Object Lock on
   * always has versioning on (S3 turns it on with the lock and refuses to suspend it after), so one
   * request answers both.
   */
  async objectLock(signal?: AbortSignal): Promise<ObjectLockState> {
    throwIfAborted(signal);
    try {
      const out = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.settings.bucket }), { abortSignal: signal });
      const cfg = out.ObjectLockConfiguration;
      if (cfg?.ObjectLockEnabled !== 'Enabled') return { state: 'off' };
      const d = cfg.Rule?.DefaultRetention;
      const span = d?.Days ? `${d.Days} day${d.Days === 1 ? '' : 's'}` : d?.Years ? `${d.Years} year${d.Years === 1 ? '' : 's'}` : undefined;
      return { state: 'on', defaultRetention: d?.Mode && span ? `${d.Mode} ${span}` : undefined };
    } catch (e) {
      const name = sdkErrorName(e);
      if (name === 'ObjectLockConfigurationNotFoundError' || name === 'ObjectLockConfigurationNotFound') return { state: 'off' };
      const detail = `object-lock; ${name}; HTTP ${httpStatusOf(e) ?? '-'}`;
      if (name === 'NotImplemented' || name === 'MethodNotAllowed' || httpStatusOf(e) === 501) return { state: 'unsupported', detail };
      if (name === 'AccessDenied' || httpStatusOf(e) === 403) return { state: 'denied', detail };
      throw this.mapError(e, 'object-lock', undefined, signal);
    }
  }

  async copy(srcKey: string, dstKey: string, signal?: AbortSignal): Promise<void> {
    this.checkKey(srcKey);
    this.checkKey(dstKey);
    throwIfAborted(signal);
    // HEAD first: a clear not_found, and the size decides between CopyObject and a part copy.
    const src = await this.headObject(srcKey, 'copy', signal);
    if (!src) throw new StorageError('not_found', `The object "${srcKey}" is not on ${this.description}.`, `copy: head "${srcKey}": 404`);
    const size = src.ContentLength ?? 0;
    const copySource = copySourceOf(this.settings.bucket, srcKey);
    if (size <= this.opts.multipartCopyThreshold) {
      try {
        // A copy is a new object (a kept version): it gets its own lock.
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.settings.bucket, Key: dstKey, CopySource: copySource, MetadataDirective: 'COPY', ...this.lockParams(this.lockFor({})) }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw this.mapError(e, 'copy', `${srcKey} -> ${dstKey}`, signal);
      }
      return;
    }
    await this.copyMultipart(src, size, copySource, dstKey, signal);
  }

  /** Server-side copy of a big object in equal parts (UploadPartCopy), metadata carried over. */
  private async copyMultipart(src: ObjectHeaders, size: number, copySource: string, dstKey: string, signal?: AbortSignal): Promise<void> {
    const partSize = partSizeFor(size, this.opts.copyPartSize);
    const state: MultipartState = {};
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.settings.bucket,
          Key: dstKey,
          ContentType: src.ContentType,
          Metadata: src.Metadata,
          ...this.lockParams(this.lockFor({})),
        }),
      );
      state.uploadId = created.UploadId;
      throwIfAborted(signal);
      const count = Math.ceil(size / partSize);
      const parts: CompletedPart[] = new Array(count);
      let next = 0;
      // Up to 4 part copies at once; each worker takes the next part number.
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const out = await this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.settings.bucket,
              Key: dstKey,
              UploadId: state.uploadId,
              PartNumber: i + 1,
              CopySource: copySource,
              CopySourceRange: `bytes=${start}-${end}`,
              // Copy only what we looked at: fail rather than mix two versions of the source.
              CopySourceIfMatch: src.ETag,
            }),
            { abortSignal: signal },
          );
          parts[i] = { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, count) }, worker));
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.settings.bucket, Key: dstKey, UploadId: state.uploadId, MultipartUpload: { Parts: parts } }),
        { abortSignal: signal },
      );
    } catch (e) {
      await this.abortMultipart(dstKey, state);
      throw this.mapError(e, 'copy', dstKey, signal);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // cleanup

  /**
   * Abort multipart uploads under `prefix` started more than `olderThanMs` ago (left by a crash or
   * a failed abort). Needs ListMultipartUploads (see listIncomplete).
   */
  async cleanupIncomplete(prefix: string, olderThanMs: number, signal?: AbortSignal): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let aborted = 0;
    for (const u of await this.listIncomplete(prefix, signal)) {
      if (u.initiated !== undefined && u.initiated > cutoff) continue;
      throwIfAborted(signal);
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: u.key, UploadId: u.uploadId }), { abortSignal: signal });
        aborted++;
      } catch (e) {
        if (sdkErrorName(e) === 'NoSuchUpload') continue;
        throw this.mapError(e, 'cleanup', u.key, signal);
      }
    }
    return aborted;
  }

  /**
   * Unfinished multipart uploads under a prefix. Servers without ListMultipartUploads (s3rver) get
   * an 'invalid' StorageError whose sentence suggests a lifecycle rule instead.
   */
  async listIncomplete(prefix: string, signal?: AbortSignal): Promise<{ key: string; uploadId: string; initiated?: number }[]> {
    const out: { key: string; uploadId: string; initiated?: number }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      throwIfAborted(signal);
      let res;
      try {
        res = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
          { abortSignal: signal },
        );
      } catch (e) {
        const name = sdkErrorName(e);
        if (name === 'NotImplemented' || name === 'MethodNotAllowed') {
          throw new StorageError(
            'invalid',
            `${this.description} cannot list unfinished uploads, so Triplicate cannot clean them up. Add a lifecycle rule on the bucket that removes incomplete multipart uploads after a day.`,
            `cleanup: ListMultipartUploads; ${name}`,
            { cause: e },
          );
        }
        throw this.mapError(e, 'list-multipart', prefix, signal);
      }
      for (const u of res.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() });
      if (!res.IsTruncated || (!res.NextKeyMarker && !res.NextUploadIdMarker)) break;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
    return out;
  }

  close(): void {
    this.http.close();
  }

  // ---------------------------------------------------------------------------------------------

  private checkKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0) throw new StorageError('invalid', 'An object name is empty.', 'empty key');
    const bytes = utf8Length(key);
    if (bytes > MAX_KEY_BYTES) {
      throw new StorageError(
        'invalid',
        `The name "${key.slice(0, 80)}…" is too long for object storage (${bytes} bytes, the limit is ${MAX_KEY_BYTES}). Shorten the folder or file name.`,
        `key of ${bytes} bytes`,
      );
    }
  }

  private errorContext(op: string, key?: string): S3ErrorContext {
    return { target: this.description, bucket: this.settings.bucket, host: this.host, op, key, idleTimeoutMs: this.opts.idleTimeoutMs };
  }

  private mapError(e: unknown, op: string, key?: string, signal?: AbortSignal): StorageError {
    return mapS3Error(e, this.errorContext(op, key), signal?.aborted ?? false);
  }
}

interface MultipartState {
  uploadId?: string;
  /** Settles (never rejects) when CreateMultipartUpload answered. */
  creating?: Promise<void>;
  /** The first real failure of a part, before our abort made the others fail too. */
  firstError?: unknown;
}

/** An AbortController that follows the caller's signal; dispose() unhooks it. */
function linkedController(signal?: AbortSignal): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (!signal) return { controller, dispose: () => {} };
  const onAbort = () => controller.abort();
  if (signal.aborted) controller.abort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => signal.removeEventListener('abort', onAbort) };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function infoFromHead(key: string, out: ObjectHeaders): ObjectInfo {
  const meta = out.Metadata;
  const sha = meta.sha256?.trim().toLowerCase();
  const mtime = meta.mtime !== undefined ? Number(meta.mtime) : NaN;
  return {
    key,
    size: out.ContentLength ?? 0,
    sha256: sha && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined,
    mtimeMs: Number.isFinite(mtime) ? mtime : undefined,
    lastModified: out.LastModified?.getTime(),
    etag: stripQuotes(out.ETag),
    contentType: out.ContentType,
    lockedUntil: out.ObjectLockRetainUntilDate?.getTime(),
  };
}

/**
 * COMPLIANCE, not GOVERNANCE: a governance lock gives way to any key holding
 * s3:BypassGovernanceRetention (and to the account's root), which is what a stolen admin key is.
 * Veeam writes compliance locks for the same reason; B2 began with compliance only.
 */
const LOCK_MODE = 'COMPLIANCE' as const;

/**
 * Object Lock headers of a single PUT. AWS refuses a PutObject with Object Lock parameters
 * without Content-MD5 or an x-amz-checksum-*; the SHA-256 of the content is known before the body
 * is read (the MD5 is not), so it goes as x-amz-checksum-sha256 (base64), as the SDK would send it.
 */
function lockHeaders(until: number, sha256Hex: string): Record<string, string> {
  const h: Record<string, string> = {
    'x-amz-object-lock-mode': LOCK_MODE,
    'x-amz-object-lock-retain-until-date': new Date(until).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  if (/^[0-9a-f]{64}$/.test(sha256Hex)) {
    h['x-amz-sdk-checksum-algorithm'] = 'SHA256';
    h['x-amz-checksum-sha256'] = Buffer.from(sha256Hex, 'hex').toString('base64');
  }
  return h;
}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function stripQuotes(etag: string | undefined): string | undefined {
  return etag?.replace(/^"+|"+$/g, '');
}

/** Parse a Content-Range such as "bytes 0-9/100"; undefined when absent or without a range. */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+)\s*$/.exec(v.trim());
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : undefined;
}

/**
 * x-amz-copy-source: "<bucket>/<key>", URL-encoded per path segment (spaces, unicode, emoji,
 * "+", "?", "#"...), "/" kept. The SDK sends the header as given, so the encoding is ours.
 * Note: s3rver decodes this header with decodeURI, so on s3rver only keys whose special
 * characters decodeURI restores (unicode, spaces) copy correctly; "+", "#", "?" etc. do not.
 */
export function copySourceOf(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function hostOf(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}

/** Sockets the uploads of a lane may hold at once: `uploads` files with `parts` parts in flight each, and 8 for heads and lists. */
export function uploadSockets(uploads: number, parts: number): number {
  return Math.max(uploads * 2, uploads * parts) + 8;
}
