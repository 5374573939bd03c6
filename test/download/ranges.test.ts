// The HTTP rules of the download server as pure functions: Range parsing, conditional requests,
// Content-Disposition, and URL paths to keys.
import { describe, expect, it } from 'vitest';
import { contentDisposition, decodeKeyPath, multipartFraming, parseRange, planResponse, weakEtag } from '../../src/main/engine/http/ranges';

describe('parseRange', () => {
  const size = 1000;
  it.each([
    ['bytes=0-0', [{ start: 0, end: 0 }]],
    ['bytes=0-499', [{ start: 0, end: 499 }]],
    ['bytes=500-', [{ start: 500, end: 999 }]],
    ['bytes=-200', [{ start: 800, end: 999 }]],
    ['bytes=-5000', [{ start: 0, end: 999 }]],
    ['bytes=900-5000', [{ start: 900, end: 999 }]],
    ['BYTES = 1-2', [{ start: 1, end: 2 }]],
    ['bytes=0-1, 5-6', [{ start: 0, end: 1 }, { start: 5, end: 6 }]],
    ['bytes=5-6,0-1', [{ start: 5, end: 6 }, { start: 0, end: 1 }]], // the client's order when they do not overlap
    ['bytes=0-10,5-20,21-30', [{ start: 0, end: 30 }]], // overlapping and adjacent merged
    ['bytes=0-1,2000-3000', [{ start: 0, end: 1 }]], // the unsatisfiable one dropped
  ])('%s', (h, want) => expect(parseRange(h, size)).toEqual(want));

  it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0', 'bytes=1000-,2000-'])('%s is unsatisfiable', (h) => expect(parseRange(h, size)).toBe('unsatisfiable'));

  it.each(['', 'bytes=', 'bytes=a-b', 'bytes=5-1', 'items=0-1', 'bytes=-', 'bytes=1-2-3', 'bytes=0x1-2', `bytes=${Array.from({ length: 65 }, (_, i) => `${i}-${i}`).join(',')}`])(
    '%s is ignored',
    (h) => expect(parseRange(h, size)).toBe(null),
  );
});

describe('planResponse', () => {
  const rep = { size: 100, etag: '"abc"', lastModified: Date.UTC(2024, 0, 1, 12, 0, 0) };
  const lm = new Date(rep.lastModified).toUTCString();
  it('plain GET and HEAD', () => {
    expect(planResponse('GET', {}, rep)).toEqual({ status: 200 });
    expect(planResponse('HEAD', { range: 'bytes=0-1' }, rep)).toEqual({ status: 200 });
  });
  it('If-None-Match (weak comparison) beats If-Modified-Since', () => {
    expect(planResponse('GET', { 'if-none-match': '"abc"' }, rep)).toEqual({ status: 304 });
    expect(planResponse('GET', { 'if-none-match': 'W/"abc"' }, rep)).toEqual({ status: 304 });
    expect(planResponse('GET', { 'if-none-match': '"x", "abc"' }, rep)).toEqual({ status: 304 });
    expect(planResponse('GET', { 'if-none-match': '*' }, rep)).toEqual({ status: 304 });
    expect(planResponse('GET', { 'if-none-match': '"x"', 'if-modified-since': lm }, rep)).toEqual({ status: 200 });
    expect(planResponse('GET', { 'if-modified-since': lm }, rep)).toEqual({ status: 304 });
    expect(planResponse('GET', { 'if-modified-since': new Date(rep.lastModified - 1000).toUTCString() }, rep)).toEqual({ status: 200 });
    expect(planResponse('GET', { 'if-modified-since': 'garbage' }, rep)).toEqual({ status: 200 });
  });
  it('If-Match and If-Unmodified-Since: 412', () => {
    expect(planResponse('GET', { 'if-match': '"abc"' }, rep)).toEqual({ status: 200 });
    expect(planResponse('GET', { 'if-match': '"x"' }, rep)).toEqual({ status: 412 });
    expect(planResponse('GET', { 'if-match': 'W/"abc"' }, rep)).toEqual({ status: 412 }); // strong comparison
    expect(planResponse('GET', { 'if-unmodified-since': new Date(rep.lastModified - 5000).toUTCString() }, rep)).toEqual({ status: 412 });
  });
  it('Range with If-Range', () => {
    expect(planResponse('GET', { range: 'bytes=0-9' }, rep)).toEqual({ status: 206, ranges: [{ start: 0, end: 9 }] });
    expect(planResponse('GET', { range: 'bytes=0-9', 'if-range': '"abc"' }, rep)).toEqual({ status: 206, ranges: [{ start: 0, end: 9 }] });
    expect(planResponse('GET', { range: 'bytes=0-9', 'if-range': '"old"' }, rep)).toEqual({ status: 200 });
    expect(planResponse('GET', { range: 'bytes=0-9', 'if-range': lm }, rep)).toEqual({ status: 206, ranges: [{ start: 0, end: 9 }] });
    expect(planResponse('GET', { range: 'bytes=0-9', 'if-range': 'W/"abc"' }, rep)).toEqual({ status: 200 });
    expect(planResponse('GET', { range: 'bytes=0-9' }, { ...rep, etag: weakEtag(100, 5) })).toEqual({ status: 206, ranges: [{ start: 0, end: 9 }] });
    expect(planResponse('GET', { range: 'bytes=0-9', 'if-range': weakEtag(100, 5) }, { ...rep, etag: weakEtag(100, 5) })).toEqual({ status: 200 });
    expect(planResponse('GET', { range: 'bytes=100-' }, rep)).toEqual({ status: 416 });
    expect(planResponse('GET', { range: 'bytes=0-0' }, { ...rep, size: 0 })).toEqual({ status: 200 }); // empty file: Range ignored
  });
});

describe('contentDisposition', () => {
  it('ASCII fallback and RFC 5987 filename*', () => {
    expect(contentDisposition('inline', 'photo.jpg')).toBe(`inline; filename="photo.jpg"; filename*=UTF-8''photo.jpg`);
    expect(contentDisposition('attachment', 'Vernissage 🎉 (été).jpg')).toBe(
      `attachment; filename="Vernissage _ (ete).jpg"; filename*=UTF-8''Vernissage%20%F0%9F%8E%89%20%28%C3%A9t%C3%A9%29.jpg`,
    );
    expect(contentDisposition('inline', 'a"b\\c;d%e.txt')).toBe(`inline; filename="a_b_c_d_e.txt"; filename*=UTF-8''a%22b%5Cc%3Bd%25e.txt`);
    expect(contentDisposition('inline', 'x\r\ny.txt')).not.toMatch(/[\r\n]/);
  });
});

describe('multipartFraming', () => {
  it('length counts every byte', () => {
    const f = multipartFraming('B', 'text/plain', [{ start: 0, end: 1 }, { start: 5, end: 9 }], 10);
    const body = f.heads[0] + 'xx' + f.heads[1] + 'yyyyy' + f.tail;
    expect(Buffer.byteLength(body)).toBe(f.length);
  });
});

describe('decodeKeyPath', () => {
  it('decodes each segment once', () => {
    expect(decodeKeyPath('media/a%20b/c.jpg')).toEqual({ key: 'media/a b/c.jpg', dir: false });
    expect(decodeKeyPath('media/caf%C3%A9.jpg')).toEqual({ key: 'media/café.jpg', dir: false });
    expect(decodeKeyPath('media/50%25%20off.jpg')).toEqual({ key: 'media/50% off.jpg', dir: false });
    expect(decodeKeyPath('media/photos/')).toEqual({ key: 'media/photos/', dir: true });
  });
  it.each([
    '',
    '/',
    '..',
    'media/../x',
    'media/%2e%2e/x',
    'media/%2E%2E/x',
    'media/.%2e/x',
    'media/./x',
    'media//x',
    '/media/x',
    'media/a%2fb',
    'media/a%2Fb',
    'media/a%5cb',
    'media/a\\b',
    'media/a%00b',
    'media/%0d%0a',
    'media/%252e%252e/x',
    'media/%252f',
    'media/%c0%ae%c0%ae/x',
    'media/%e0%80%ae/x',
    'media/%zz',
  ])('refuses %s', (p) => expect(() => decodeKeyPath(p)).toThrow());
});
