import { describe, expect, it } from 'vitest';
import { backoffDelay, SseParser, type SseMessage } from '../../src/main/desktop/logic/sse';

function parse(chunks: string[]): SseMessage[] {
  const out: SseMessage[] = [];
  const p = new SseParser((m) => out.push(m));
  for (const c of chunks) p.push(c);
  return out;
}

describe('SSE parser', () => {
  it('parses events split across arbitrary chunk boundaries', () => {
    const text = 'data: {"type":"status"}\n\n: keep-alive\n\nevent: log\ndata: line1\ndata: line2\nid: 7\n\n';
    const whole = parse([text]);
    expect(whole).toEqual([
      { event: 'message', data: '{"type":"status"}', id: undefined, retry: undefined },
      { event: 'log', data: 'line1\nline2', id: '7', retry: undefined },
    ]);
    for (let size = 1; size < 8; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(parse(chunks)).toEqual(whole);
    }
  });

  it('accepts CRLF and CR line endings, even split between chunks', () => {
    expect(parse(['data: a\r', '\n\r\n']).map((m) => m.data)).toEqual(['a']);
    expect(parse(['data: b\r\r', ':\n']).map((m) => m.data)).toEqual(['b']);
  });

  it('does not emit an event that has no data or is not finished', () => {
    expect(parse(['event: x\n\n', 'data: half'])).toEqual([]);
  });

  it('reads retry and keeps the field value after one space', () => {
    expect(parse(['retry: 3000\ndata:  two spaces\n\n'])).toEqual([{ event: 'message', data: ' two spaces', id: undefined, retry: 3000 }]);
  });
});

describe('reconnect backoff', () => {
  it('doubles from half a second to 30 seconds, with bounded jitter', () => {
    expect(backoffDelay(0, () => 0.5)).toBe(500);
    expect(backoffDelay(1, () => 0.5)).toBe(1000);
    expect(backoffDelay(5, () => 0.5)).toBe(16000);
    expect(backoffDelay(6, () => 0.5)).toBe(30000);
    expect(backoffDelay(1000, () => 0.5)).toBe(30000);
    expect(backoffDelay(0, () => 0)).toBe(400);
    expect(backoffDelay(0, () => 1)).toBe(600);
  });
});
