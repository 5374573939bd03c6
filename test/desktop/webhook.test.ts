import { describe, expect, it } from 'vitest';
import type { Notice } from '../../src/shared/notify';
import { describeWebhook, detectWebhookKind, headerValue, heartbeatRequest, validateWebhookUrl, webhookRequest } from '../../src/shared/webhook';

const notice: Notice = {
  key: 'target-offline:nas',
  kind: 'target-offline',
  severity: 'error',
  title: 'NAS has not answered for 15 minutes',
  body: 'Check that the NAS is switched on.',
  at: Date.UTC(2025, 4, 6, 10, 42),
  silent: false,
  target_id: 'nas',
  page: 'destinations',
};

describe('webhook', () => {
  it('recognises the services from their addresses', () => {
    expect(detectWebhookKind('https://hooks.slack.com/services/T0/B0/xyz')).toBe('slack');
    expect(detectWebhookKind('https://hc-ping.com/0b7f-uuid')).toBe('healthchecks');
    expect(detectWebhookKind('https://hc.example.org/ping/uuid')).toBe('healthchecks');
    expect(detectWebhookKind('https://ntfy.sh/museum-backup')).toBe('ntfy');
    expect(detectWebhookKind('https://ntfy.example.org/backup')).toBe('ntfy');
    expect(detectWebhookKind('https://example.org/hook')).toBe('json');
    expect(detectWebhookKind('not a url')).toBe('json');
  });

  it('builds an ntfy message with title, priority and tags in headers', () => {
    const r = webhookRequest(notice, 'https://ntfy.sh/museum', 'ntfy', 'City Museum');
    expect(r.url).toBe('https://ntfy.sh/museum');
    expect(r.body).toBe(notice.body);
    expect(r.headers.title).toBe('City Museum: NAS has not answered for 15 minutes');
    expect(r.headers.priority).toBe('high');
    expect(r.headers.tags).toBe('rotating_light');
  });

  it('encodes non-Latin titles for HTTP headers', () => {
    expect(headerValue('plain title')).toBe('plain title');
    const enc = headerValue('Musée: sauvegarde ✓');
    expect(enc).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
    const b64 = enc.slice('=?UTF-8?B?'.length, -2);
    expect(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)))).toBe('Musée: sauvegarde ✓');
    expect(headerValue('two\nlines')).toBe('two lines');
  });

  it('builds a Slack message with escaped text', () => {
    const r = webhookRequest({ ...notice, body: 'a <b> & c' }, 'https://hooks.slack.com/services/x', 'slack');
    expect(JSON.parse(r.body)).toEqual({ text: ':red_circle: *NAS has not answered for 15 minutes*\na &lt;b&gt; &amp; c' });
  });

  it('pings Healthchecks /fail for problems and the plain URL for good news', () => {
    expect(webhookRequest(notice, 'https://hc-ping.com/abc/', 'healthchecks').url).toBe('https://hc-ping.com/abc/fail');
    expect(webhookRequest({ ...notice, severity: 'info', kind: 'target-back' }, 'https://hc-ping.com/abc/fail', 'healthchecks').url).toBe('https://hc-ping.com/abc');
    expect(heartbeatRequest('https://hc-ping.com/abc', true, 'ok').url).toBe('https://hc-ping.com/abc');
    expect(heartbeatRequest('https://hc-ping.com/abc', false, 'bad').url).toBe('https://hc-ping.com/abc/fail');
  });

  it('sends plain JSON to anything else', () => {
    const r = webhookRequest(notice, 'https://example.org/hook', 'json', 'Depot');
    expect(JSON.parse(r.body)).toEqual({
      source: 'triplicate', site: 'Depot', kind: 'target-offline', severity: 'error', title: notice.title, message: notice.body, target_id: 'nas', at: '2025-05-06T10:42:00.000Z',
    });
  });

  it('validates addresses and never shows the secret part', () => {
    expect(validateWebhookUrl('https://hooks.slack.com/services/x')).toBeNull();
    expect(validateWebhookUrl('ftp://x')).toMatch(/https/);
    expect(validateWebhookUrl('hooks.slack.com')).toMatch(/not a web address/);
    expect(validateWebhookUrl('https://user:pw@example.org')).toMatch(/password/);
    expect(describeWebhook('https://hooks.slack.com/services/T0/B0/secret')).toBe('hooks.slack.com');
  });
});
