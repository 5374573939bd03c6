// Classify AWS SDK / network errors into StorageError kinds with a sentence for the operator
// (what happened, on which target, what to do) and the technical detail kept apart.
// Messages never contain credentials: only the target's label, endpoint and bucket.
import { StorageError, type StorageErrorKind } from './types';

export interface S3ErrorContext {
  /** "NAS (http://nas:9000, bucket media)" */
  target: string;
  bucket: string;
  /** Host part of the endpoint, for DNS messages. */
  host: string;
  /** Operation name for the detail line: put, get, head, list, delete, copy, cleanup. */
  op: string;
  key?: string;
  /** Idle timeout in ms, for the timeout sentence. */
  idleTimeoutMs: number;
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string };
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNABORTED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  // undici (every S3 request): the socket closed, or the body ended short of its length
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'TimeoutError',
  'RequestTimeout',
  'ERR_HTTP_REQUEST_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS|ERR_SSL|EPROTO$)/;

/** The SDK's error name (service error code), e.g. "NoSuchKey", "NotFound", "TimeoutError". */
export function sdkErrorName(e: unknown): string {
  const x = (e ?? {}) as SdkErrorShape;
  return x.Code ?? x.name ?? 'Error';
}

export function httpStatusOf(e: unknown): number | undefined {
  return ((e ?? {}) as SdkErrorShape).$metadata?.httpStatusCode;
}

/** True for "the key is not there" answers (GetObject NoSuchKey, HeadObject 404 NotFound). */
export function isNotFound(e: unknown): boolean {
  const name = sdkErrorName(e);
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatusOf(e) === 404 && name !== 'NoSuchUpload');
}

function detailOf(e: unknown, ctx: S3ErrorContext): string {
  const x = (e ?? {}) as SdkErrorShape;
  const parts = [`${ctx.op}${ctx.key !== undefined ? ` "${ctx.key}"` : ''}`, sdkErrorName(e)];
  const status = x.$metadata?.httpStatusCode;
  if (status) parts.push(`HTTP ${status}`);
  if (x.code && x.code !== x.name) parts.push(x.code);
  if (x.syscall) parts.push(`syscall ${x.syscall}`);
  if (x.message) parts.push(x.message.slice(0, 300));
  if (x.$metadata?.requestId) parts.push(`request id ${x.$metadata.requestId}`);
  // Node wraps some network failures (AggregateError on happy-eyeballs, undici causes).
  const cause = x.cause as SdkErrorShape | undefined;
  if (cause && typeof cause === 'object' && (cause.code || cause.message)) parts.push(`cause: ${cause.code ?? ''} ${cause.message ?? ''}`.trim());
  return parts.join('; ');
}

/** The errno-style code of an SDK or socket error (the SDK sometimes keeps it on `cause`). */
function codeOf(e: unknown): string {
  const x = (e ?? {}) as SdkErrorShape;
  return x.code ?? (x.cause as SdkErrorShape | undefined)?.code ?? '';
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH']);

/** The server is not there at all (switched off, unplugged, no route): nothing answered. */
export function isUnreachable(e: unknown): boolean {
  return UNREACHABLE_CODES.has(codeOf(e));
}

/** Map any error thrown by an S3 call. `aborted` tells whether our own signal fired. */
export function mapS3Error(e: unknown, ctx: S3ErrorContext, aborted = false): StorageError {
  if (e instanceof StorageError) return e;
  const x = (e ?? {}) as SdkErrorShape;
  const name = sdkErrorName(e);
  const status = x.$metadata?.httpStatusCode;
  const code = codeOf(e);
  const detail = detailOf(e, ctx);
  const make = (kind: StorageErrorKind, message: string) => new StorageError(kind, message, detail, { cause: e });
  const t = ctx.target;
  const keyPart = ctx.key !== undefined ? ` "${ctx.key}"` : '';

  if (aborted || name === 'AbortError' || code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED') return make('aborted', 'The operation was cancelled.');

  // The SDK renames ECONNRESET and EPIPE to "TimeoutError": look at the errno first.
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') {
    return make('network', `The connection to ${t} broke off. Check that it is switched on and the network is up; Triplicate keeps retrying.`);
  }

  // --- answers from the server -------------------------------------------------------------
  if (/missing\s*Object\s*Lock/i.test(x.message ?? '')) {
    // A write with Object Lock headers (`immutableDays`) to a bucket without Object Lock: every
    // upload fails the same way, so it is the destination's problem, not one file's.
    return make(
      'no_bucket',
      `${t} refuses copies that cannot be deleted: the bucket "${ctx.bucket}" does not have Object Lock on. Use a bucket with Object Lock on, or set "Undeletable for" to 0 days in Destinations.`,
    );
  }
  switch (name) {
    case 'NoSuchBucket':
      return make('no_bucket', `The bucket "${ctx.bucket}" does not exist on ${t}. Create it or fix the bucket name in Destinations.`);
    case 'NoSuchKey':
    case 'NotFound':
      return make('not_found', `The object${keyPart} is not on ${t}.`);
    case 'NoSuchUpload':
      return make('not_found', `The unfinished upload of${keyPart} is no longer on ${t}; Triplicate starts it again.`);
    case 'InvalidAccessKeyId':
      return make('auth', `${t} does not know the access key id. Check the key id and secret in Destinations.`);
    case 'SignatureDoesNotMatch':
      return make('auth', `${t} rejected the secret access key. Check the key id and secret in Destinations.`);
    case 'ExpiredToken':
    case 'InvalidToken':
    case 'TokenRefreshRequired':
      return make('auth', `${t} says the access key has expired. Create a new key and enter it in Destinations.`);
    case 'RequestTimeTooSkewed':
    case 'RequestExpired':
      return make(
        'auth',
        `The clock of this computer differs from ${t} by more than 15 minutes, so it refuses every request. Set the correct time (turn on automatic time) and Triplicate carries on.`,
      );
    case 'AccessDenied':
    case 'AllAccessDisabled':
    case 'AccountProblem':
    case 'Forbidden':
      return make(
        'auth',
        `${t} refused access to the bucket "${ctx.bucket}". Check the key id and secret, and that this key may read and write the bucket (Destinations).`,
      );
    case 'AuthorizationHeaderMalformed':
    case 'PermanentRedirect':
    case 'IllegalLocationConstraintException':
    case 'MovedPermanently':
    case 'Redirect':
      return make(
        'auth',
        `${t} says the bucket "${ctx.bucket}" lives in another region. Set the bucket's region in Destinations (R2 uses "auto").`,
      );
    case 'SlowDown':
    case 'TooManyRequests':
    case 'RequestLimitExceeded':
    case 'Throttling':
    case 'ThrottlingException':
      return make('throttled', `${t} asks Triplicate to slow down. Nothing to do: Triplicate waits and tries again.`);
    case 'QuotaExceeded':
    case 'XMinioStorageFull':
    case 'InsufficientStorage':
    case 'StorageFull':
      return make('no_space', `${t} is full or over its quota. Free some space or raise the quota; Triplicate retries later.`);
    case 'EntityTooLarge':
      return make('invalid', `The file${keyPart} is larger than ${t} accepts for one object.`);
    case 'KeyTooLongError':
      return make('invalid', `The name${keyPart} is too long for ${t}. Shorten the folder or file name.`);
    case 'InvalidRange':
      return make('invalid', `The requested byte range of${keyPart} is outside the object on ${t}.`);
    case 'BadDigest':
    case 'InvalidDigest':
    case 'XAmzContentSHA256Mismatch':
      return make('integrity', `${t} received different bytes than Triplicate sent for${keyPart}. Triplicate uploads it again.`);
    case 'IncompleteBody':
      return make('network', `The upload of${keyPart} to ${t} was cut short. Triplicate tries again.`);
    case 'NotImplemented':
    case 'MethodNotAllowed':
      return make('invalid', `${t} does not support this request (${ctx.op}). Check that the endpoint is an S3 API address and the provider preset is right.`);
    case 'TimeoutError':
    case 'RequestTimeout':
      return timeout();
    default:
      break;
  }

  // --- network failures (no HTTP answer) -----------------------------------------------------
  if (code === 'ECONNREFUSED') {
    return make('network', `${t} refused the connection. Check that it is switched on and reachable; Triplicate keeps retrying.`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return make(
      'network',
      `The address "${ctx.host}" of ${t} could not be found. Check the endpoint in Destinations and that this computer is online; Triplicate keeps retrying.`,
    );
  }
  if (TIMEOUT_CODES.has(code)) return timeout();
  if (TLS_CODES.test(code)) {
    return make(
      'network',
      `The secure connection to ${t} failed: its certificate could not be verified. Check the endpoint address (https vs http) in Destinations.`,
    );
  }
  if (NETWORK_CODES.has(code) || /socket hang up|ECONNRESET|EPIPE|other side closed/i.test(x.message ?? '')) {
    return make('network', `The connection to ${t} broke off. Check the network; Triplicate keeps retrying.`);
  }

  // --- HTTP status without a known code --------------------------------------------------------
  if (status === 401 || status === 403) {
    return make(
      'auth',
      `${t} refused the request. Check the key id and secret, and that this key may read and write the bucket "${ctx.bucket}" (Destinations).`,
    );
  }
  if (status === 404) return make('not_found', `The object${keyPart} is not on ${t}.`);
  if (status === 429) return make('throttled', `${t} asks Triplicate to slow down. Nothing to do: Triplicate waits and tries again.`);
  if (status === 507) return make('no_space', `${t} is full. Free some space; Triplicate retries later.`);
  if (status === 301 || status === 307 || status === 400) {
    if (ctx.op === 'head' || status !== 400) {
      return make(
        'auth',
        `${t} rejected the request as malformed, which usually means a wrong region or addressing style. Check the region and the path-style setting in Destinations.`,
      );
    }
    return make('invalid', `${t} rejected the request for${keyPart} as invalid.`);
  }
  if (status !== undefined && status >= 500) {
    return make('server', `${t} had an internal error (HTTP ${status}). Triplicate tries again; if it persists, check the server.`);
  }
  if (status !== undefined && status >= 200 && status < 300) {
    // A 2xx the SDK could not parse: usually not an S3 API at all (a web console, a proxy page).
    return make(
      'server',
      `${t} answered in a way Triplicate does not understand. Check that the endpoint is the S3 API address (MinIO: port 9000, not the console port 9001).`,
    );
  }
  return make('unknown', `Something went wrong talking to ${t} (${name}). Triplicate tries again later; the detail may help.`);

  function timeout(): StorageError {
    return make(
      'timeout',
      `${t} did not answer within ${Math.round(ctx.idleTimeoutMs / 1000)} seconds. Check that it is switched on and the network is up; Triplicate keeps retrying.`,
    );
  }
}

/** Answers that refuse one delete: the key may not delete, or the object is still locked. */
const DENIED = new Set(['AccessDenied', 'Forbidden', 'AllAccessDisabled']);

/**
 * A refused delete as its own kind ('refused', one object, never the destination's outage): a key
 * made without delete permission (recommended: README "Keys that cannot erase the backups") refuses
 * every delete, and an object under Object Lock (AWS: 403 AccessDenied "...protected by object
 * lock"; MinIO: "Object is WORM protected") or an R2 bucket lock rule refuses until its date.
 * null when the error is something else.
 */
export function refusedDelete(e: unknown, ctx: S3ErrorContext): StorageError | null {
  if (e instanceof StorageError) return null;
  const x = (e ?? {}) as SdkErrorShape;
  const name = sdkErrorName(e);
  const text = x.message ?? '';
  const status = httpStatusOf(e);
  const refusal = status !== undefined && status >= 400 && status < 500;
  const locked = name === 'ObjectLocked' || (refusal && /object ?lock|WORM|retention/i.test(text));
  // A bare 403 (no XML code) is a refusal too; InvalidAccessKeyId, SignatureDoesNotMatch, a skewed
  // clock are not: they fail every request, the key is wrong.
  const denied = DENIED.has(name) || (status === 403 && (name === 'Unknown' || name === 'Error'));
  if (!locked && !denied) return null;
  const keyPart = ctx.key !== undefined ? ` "${ctx.key}"` : '';
  const message = locked
    ? `${ctx.target} refused to delete${keyPart}: it is locked (Object Lock or a bucket lock rule) until its retention date. It stays there until then.`
    : `${ctx.target} refused to delete${keyPart}: this access key may not delete. It stays there.`;
  return new StorageError('refused', message, detailOf(e, ctx), { cause: e, locked });
}
