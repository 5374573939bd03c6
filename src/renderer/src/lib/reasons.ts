// Technical errors turned into plain words with a next step. The engine already sends sentences for
// most problems; this catches raw codes that reach the UI (and errors of the UI's own requests).

const RULES: [RegExp, string][] = [
  [/ECONNREFUSED|connect ECONN|socket hang up|ECONNRESET/i, 'The destination did not answer. Check that it is switched on and connected to the network.'],
  [/ENOTFOUND|EAI_AGAIN|getaddrinfo/i, 'The destination\'s address could not be found. Check the address, and that this computer is online.'],
  [/ETIMEDOUT|timed? ?out|TimeoutError/i, 'The destination took too long to answer. Triplicate tries again by itself.'],
  [/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|Forbidden|\b403\b/i, 'The destination refused the key. Check the access key and secret key in Destinations.'],
  [/NoSuchBucket/i, 'The storage space (bucket) named in the settings does not exist. Check its name in Destinations, Advanced.'],
  [/EACCES|EPERM|permission denied/i, 'Triplicate is not allowed to read this file or folder. Check its permissions.'],
  [/ENOSPC|no space left|QuotaExceeded/i, 'The disk or the destination is full. Free some space; Triplicate tries again by itself.'],
  [/ENOENT|no such file/i, 'The file was moved or deleted before it could be copied.'],
  [/sha256 mismatch|checksum|BadDigest/i, 'The copy did not match the original, so it was not counted. Triplicate copies it again.'],
  [/EBUSY|locked/i, 'The file is in use by another program. Triplicate tries again when it is free.'],
  [/certificate|CERT_|self.signed/i, 'The destination\'s security certificate is not trusted. Check the address (https) or ask your IT contact.'],
];

/** A sentence for an error text; plain sentences from the engine pass through unchanged. */
export function plainReason(error: string | undefined | null): string {
  if (!error) return '';
  const text = error.trim();
  for (const [re, sentence] of RULES) if (re.test(text)) return sentence;
  // Already a sentence (starts upper-case, has a space, no stack-trace look): keep it.
  if (/^[A-Z][^\n]{3,}\s/.test(text) && !/^\w+Error:|\bat \S+:\d+/.test(text)) return text;
  return 'Something went wrong while copying. Triplicate tries again; the technical detail is below.';
}
