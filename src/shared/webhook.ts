// The optional webhook for a remote admin: ntfy, Slack, Healthchecks.io or plain JSON.
// Pure: builds the HTTP request; the shell sends it with fetch. No secrets are logged:
// `describeWebhook` shows only the host.
import type { Notice } from './notify';

export type WebhookKind = 'ntfy' | 'slack' | 'healthchecks' | 'json';
export const WEBHOOK_KINDS: readonly WebhookKind[] = ['ntfy', 'slack', 'healthchecks', 'json'];

export interface WebhookRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** Guess the service from the URL; the settings page lets the operator override it. */
export function detectWebhookKind(url: string): WebhookKind {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'json';
  }
  const host = u.hostname.toLowerCase();
  if (host === 'hooks.slack.com') return 'slack';
  if (host === 'hc-ping.com' || host.endsWith('.hc-ping.com') || host === 'healthchecks.io' || u.pathname.startsWith('/ping/')) return 'healthchecks';
  if (host === 'ntfy.sh' || host.startsWith('ntfy.') || host.includes('.ntfy.')) return 'ntfy';
  return 'json';
}

export function validateWebhookUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'This is not a web address. It should start with https://';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'The address must start with https:// (or http:// on your own network).';
  if (u.username || u.password) return 'Put the password in the service, not in the address.';
  return null;
}

/** Only the host: safe to show and to log. */
export function describeWebhook(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid address)';
  }
}

export function webhookRequest(notice: Notice, url: string, kind: WebhookKind = detectWebhookKind(url), siteName = 'Triplicate'): WebhookRequest {
  const title = siteName && siteName !== 'Triplicate' ? `${siteName}: ${notice.title}` : notice.title;
  switch (kind) {
    case 'ntfy':
      return {
        url,
        method: 'POST',
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          title: headerValue(title),
          priority: notice.severity === 'error' ? 'high' : notice.severity === 'warn' ? 'default' : 'low',
          tags: notice.severity === 'error' ? 'rotating_light' : notice.severity === 'warn' ? 'warning' : 'white_check_mark',
        },
        body: notice.body,
      };
    case 'slack': {
      const icon = notice.severity === 'error' ? ':red_circle:' : notice.severity === 'warn' ? ':large_orange_circle:' : ':large_green_circle:';
      return {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: `${icon} *${escapeSlack(title)}*\n${escapeSlack(notice.body)}` }),
      };
    }
    case 'healthchecks': {
      // Healthchecks: a ping to <url> means "fine", <url>/fail means "failing"; the body is shown in its log.
      const base = url.replace(/\/+$/, '').replace(/\/(fail|start|log|\d+)$/, '');
      return {
        url: notice.severity === 'info' ? base : `${base}/fail`,
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: `${title}\n${notice.body}`,
      };
    }
    case 'json':
    default:
      return {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          source: 'triplicate',
          site: siteName,
          kind: notice.kind,
          severity: notice.severity,
          title: notice.title,
          message: notice.body,
          target_id: notice.target_id,
          at: new Date(notice.at).toISOString(),
        }),
      };
  }
}

/** A Healthchecks-style heartbeat: "fine" while the backup is healthy, "fail" otherwise. */
export function heartbeatRequest(url: string, healthy: boolean, summary: string): WebhookRequest {
  const base = url.replace(/\/+$/, '').replace(/\/(fail|start|log|\d+)$/, '');
  return { url: healthy ? base : `${base}/fail`, method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: summary };
}

/** HTTP header values must be Latin-1: encode anything else as an RFC 2047 word (ntfy decodes it). */
export function headerValue(s: string): string {
  const clean = s.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(clean)) return clean;
  const bytes = new TextEncoder().encode(clean);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `=?UTF-8?B?${btoa(bin)}?=`;
}

function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
