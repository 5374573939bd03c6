// Download slots of the public download server: server.maxConcurrentDownloads shared so that one
// client or one link cannot take them all, and a floor on the transfer rate so that a reader that
// hardly reads gives its slot back. The console's downloads are not counted here.
import { isIP, type Socket } from 'node:net';

/** A client may hold this share of the slots (at least 2); a link this share. */
const CLIENT_SHARE = 1 / 4;
const LINK_SHARE = 1 / 2;

/**
 * Shares of `max` slots. A quarter per client: a browser opens up to 6 connections to a server,
 * a download manager 8 to 16 segments, and the people behind one office or home router share one
 * address; the other three quarters stay for everyone else. Half per link: a link passed around
 * (or leaked) leaves the other half to the other links.
 */
export function slotShares(max: number): { perClient: number; perLink: number } {
  return { perClient: Math.max(2, Math.ceil(max * CLIENT_SHARE)), perLink: Math.max(1, Math.ceil(max * LINK_SHARE)) };
}

/**
 * Minimum transfer rate: a download whose client takes fewer bytes than this per second, over a
 * window in which bytes were waiting for it all along, is dropped. 8 KiB/s is below any photo or
 * video a person waits for, and a media player that stops reading while paused asks again with a
 * Range request when it resumes.
 */
export const MIN_RATE = { bytesPerSec: 8 * 1024, windowMs: 20_000 };

export interface Refusal {
  status: number;
  code: string;
  message: string;
  retryAfter: string;
}

const TOO_MANY: Refusal = {
  status: 429,
  code: 'too_many_downloads',
  message: 'You are already downloading several files from this server at once. Wait until one of them has finished, then try again.',
  retryAfter: '5',
};
const LINK_BUSY: Refusal = {
  status: 503,
  code: 'link_busy',
  message: 'Many people are downloading through this link right now. Try again in a minute, or ask the person who sent it for a link of your own.',
  retryAfter: '30',
};
const BUSY: Refusal = { status: 503, code: 'busy', message: 'The server is busy with other downloads. Try again in a few seconds.', retryAfter: '5' };

/** Who holds a slot: the client's address and the link's id. */
export interface Slot {
  client: string;
  link: string;
}

export class Slots {
  active = 0;
  private readonly byClient = new Map<string, number>();
  private readonly byLink = new Map<string, number>();

  /** Take a slot, or say why not. */
  take(slot: Slot, max: number): Refusal | null {
    const { perClient, perLink } = slotShares(max);
    const c = this.byClient.get(slot.client) ?? 0;
    if (c >= perClient) return TOO_MANY;
    const l = this.byLink.get(slot.link) ?? 0;
    if (l >= perLink) return LINK_BUSY;
    if (this.active >= max) return BUSY;
    this.active++;
    this.byClient.set(slot.client, c + 1);
    this.byLink.set(slot.link, l + 1);
    return null;
  }

  give(slot: Slot): void {
    this.active--;
    dec(this.byClient, slot.client);
    dec(this.byLink, slot.link);
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 1) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

/**
 * The client of a request. cloudflared runs on this machine and connects from loopback, so
 * behind the tunnel every request comes from 127.0.0.1 and the client is in CF-Connecting-IP;
 * that header is believed only from a loopback peer (on the LAN anyone can write it). IPv6
 * addresses count per /64: one host can use any address of its /64.
 */
export function clientAddress(peer: string | undefined, cfConnectingIp: string | string[] | undefined): string {
  const ip = forwardedFor(peer, cfConnectingIp) ?? peer ?? '';
  if (!ip.includes(':')) return ip;
  if (ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ip.slice(7);
  return isIP(ip) === 6 ? prefix64(ip) : ip;
}

/** The visitor's address that cloudflared on this machine forwards (CF-Connecting-IP), if believed. */
export function forwardedFor(peer: string | undefined, cfConnectingIp: string | string[] | undefined): string | undefined {
  if (cfConnectingIp === undefined || !isLoopback(peer ?? '')) return undefined;
  const h = (Array.isArray(cfConnectingIp) ? cfConnectingIp[0] : cfConnectingIp)?.trim();
  return h && isIP(h) ? h : undefined;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.toLowerCase().startsWith('::ffff:127.');
}

/** The first four groups of an IPv6 address ("2001:db8:1:2::/64"). */
function prefix64(ip: string): string {
  const [head, tail] = ip.toLowerCase().split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - (tail ? tail.split(':').length : 0)).fill('0'), ...(tail ? tail.split(':') : [])];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Bytes the kernel took from this socket: what was handed to libuv minus what libuv still holds
 * (the public `bytesWritten` also counts what waits in the stream's buffer). Without those
 * fields (another runtime), the bytes of completed writes.
 */
function delivered(sock: Socket): number {
  const s = sock as Socket & { _bytesDispatched?: number; _handle?: { writeQueueSize?: number } | null };
  const queued = s._handle?.writeQueueSize;
  if (typeof s._bytesDispatched === 'number' && typeof queued === 'number') return s._bytesDispatched - queued;
  return sock.bytesWritten - sock.writableLength;
}

interface Watch {
  sock: Socket;
  drop: () => void;
  /** Start of the current window, and what had been delivered then. */
  at: number;
  sent: number;
}

/** Drops downloads whose client takes less than the minimum rate (see MIN_RATE). */
export class RateFloor {
  private readonly watched = new Map<object, Watch>();
  private timer: NodeJS.Timeout | null = null;
  private bytesPerSec = MIN_RATE.bytesPerSec;
  private windowMs = MIN_RATE.windowMs;
  private everyMs = MIN_RATE.windowMs / 4;
  private lastCheck = 0;

  /** Start checking, every quarter window; with arguments, at a new floor (tests use a short window). */
  start(bytesPerSec = this.bytesPerSec, windowMs = this.windowMs): void {
    this.stop();
    this.bytesPerSec = bytesPerSec;
    this.windowMs = windowMs;
    this.everyMs = Math.max(50, windowMs / 4);
    this.lastCheck = Date.now();
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  watch(id: object, sock: Socket, drop: () => void): void {
    this.watched.set(id, { sock, drop, at: Date.now(), sent: delivered(sock) });
  }

  unwatch(id: object): void {
    this.watched.delete(id);
  }

  private check(): void {
    const now = Date.now();
    // A late check: this process did not run for a while (a long pause), which is no client's fault.
    const late = now - this.lastCheck > 2 * this.everyMs;
    this.lastCheck = now;
    for (const [id, w] of this.watched) {
      const sent = delivered(w.sock);
      // Nothing waits for the client: the source (a slow target, the first byte) is the slow
      // side, not the client. The window starts again.
      if (late || w.sock.writableLength === 0) {
        w.at = now;
        w.sent = sent;
        continue;
      }
      const ms = now - w.at;
      if (ms < this.windowMs) continue;
      if ((sent - w.sent) * 1000 < this.bytesPerSec * ms) {
        this.watched.delete(id);
        w.drop();
        continue;
      }
      w.at = now;
      w.sent = sent;
    }
  }
}
