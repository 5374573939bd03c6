import { describe, expect, it } from 'vitest';
import { iconFor, linkFor, menuModel, TOOLTIP_MAX, trayState, truncate, type MenuItemModel } from '../../src/main/desktop/logic/tray';
import { missingToOffer } from '../../src/shared/status';
import { status, target } from './fixtures';

const actions = (items: MenuItemModel[]) => items.filter((i): i is Extract<MenuItemModel, { kind: 'action' }> => i.kind === 'action');

describe('tray state', () => {
  it('is green with the summary as tooltip when everything is safe', () => {
    const t = trayState(status(), { state: 'connected' });
    expect(t.icon).toBe('green');
    expect(t.tooltip).toBe('Triplicate: All 10 files are safe in 3 places');
  });

  it('follows each health the engine reports', () => {
    expect(iconFor(status({ health: 'syncing', pending: 3 }))).toBe('syncing');
    expect(iconFor(status({ health: 'behind', targets: { nas: target({ state: 'offline' }) } }))).toBe('behind');
    expect(iconFor(status({ health: 'failing', failed: 2 }))).toBe('failing');
    expect(iconFor(status({ health: 'paused', paused: true }))).toBe('paused');
  });

  it('never shows green when the counts disagree with the health', () => {
    expect(iconFor(status({ health: 'green', failed: 1 }))).toBe('failing');
    expect(iconFor(status({ health: 'green', targets: { nas: target({ state: 'offline' }) } }))).toBe('behind');
    expect(iconFor(status({ health: 'green', pending: 5 }))).toBe('syncing');
    expect(iconFor(status({ health: 'green', scanning: true }))).toBe('syncing');
    // paused wins over everything else
    expect(iconFor(status({ health: 'failing', failed: 3, paused: true }))).toBe('paused');
    // files given up are worse than a target being behind
    expect(iconFor(status({ health: 'behind', failed: 1, targets: { nas: target({ state: 'offline' }) } }))).toBe('failing');
  });

  it('shows offline when the engine does not answer, whatever the last status said', () => {
    const t = trayState(status(), { state: 'lost', since: 1 });
    expect(t.icon).toBe('offline');
    expect(t.tooltip).toMatch(/does not answer/);
    expect(trayState(null, { state: 'connecting' }).title).toBe('Starting…');
    expect(trayState(null, { state: 'connected' }).icon).toBe('offline');
  });

  it('says "Engine restarting…" while the app starts the engine process again', () => {
    const t = trayState(status(), { state: 'restarting', attempt: 2, retryAt: 5 });
    expect(t.icon).toBe('offline');
    expect(t.title).toBe('Engine restarting…');
    expect(t.tooltip).toBe('Triplicate: Engine restarting…\nThe backup engine stopped unexpectedly; Triplicate is starting it again.');
    expect(t.tooltip.length).toBeLessThanOrEqual(TOOLTIP_MAX);
    const menu = menuModel(status(), { state: 'restarting', attempt: 2, retryAt: 5 }, { embedded: true });
    expect(menu[0]).toEqual({ kind: 'label', label: 'Engine restarting…' });
    expect(actions(menu).filter((a) => a.enabled).map((a) => a.id)).toEqual(['open', 'quit']);
  });

  it('says the engine stopped when the app gave up restarting it', () => {
    const t = trayState(null, { state: 'failed' });
    expect(t.title).toBe('The backup engine stopped');
    expect(t.tooltip).toMatch(/Open Triplicate to see why\.$/);
    expect(t.tooltip.length).toBeLessThanOrEqual(TOOLTIP_MAX);
  });

  it('shows the engine process state over the event stream, and the stream otherwise', () => {
    const lost = { state: 'lost', since: 1 } as const;
    expect(linkFor(lost, { state: 'restarting', attempt: 1, retryAt: 9, lastExit: { code: 1, error: null, detail: '' } })).toEqual({ state: 'restarting', attempt: 1, retryAt: 9 });
    expect(linkFor(lost, { state: 'failed', message: 'm', detail: 'd' })).toEqual({ state: 'failed' });
    expect(linkFor(lost, { state: 'starting' })).toEqual({ state: 'connecting' });
    const running = { state: 'running', ready: { adminUrl: 'http://127.0.0.1:1', downloadUrl: null, tokenFile: 't', pid: 1 }, restarts: 0 } as const;
    expect(linkFor({ state: 'connected' }, running)).toEqual({ state: 'connected' });
    expect(linkFor(lost, running)).toEqual(lost); // back, the stream not yet: reconnecting
    expect(linkFor(lost, null)).toEqual(lost); // a service: only the stream says
  });

  it('keeps the tooltip within the Windows limit', () => {
    const t = trayState(status({ summary: 'x'.repeat(400) }), { state: 'connected' });
    expect(t.tooltip.length).toBeLessThanOrEqual(TOOLTIP_MAX);
    expect(t.tooltip.endsWith('…')).toBe(true);
    expect(truncate('short', 10)).toBe('short');
  });
});

describe('tray menu', () => {
  it('offers pause when running and resume when paused', () => {
    const running = actions(menuModel(status(), { state: 'connected' })).map((a) => a.id);
    expect(running).toEqual(['open', 'pause', 'sync-now', 'restore-missing', 'quit']);
    const paused = actions(menuModel(status({ paused: true, health: 'paused' }), { state: 'connected' }));
    expect(paused.map((a) => a.id)).toContain('resume');
    expect(paused.find((a) => a.id === 'sync-now')?.enabled).toBe(false);
  });

  it('names the missing files and disables restore when none are missing', () => {
    const none = actions(menuModel(status(), { state: 'connected' })).find((a) => a.id === 'restore-missing')!;
    expect(none.enabled).toBe(false);
    const some = actions(menuModel(status({ missing_local_files: 1234 }), { state: 'connected' })).find((a) => a.id === 'restore-missing')!;
    expect(some.enabled).toBe(true);
    expect(some.label).toBe('Bring back 1,234 missing files');
    const one = actions(menuModel(status({ missing_local_files: 1 }), { state: 'connected' })).find((a) => a.id === 'restore-missing')!;
    expect(one.label).toBe('Bring back 1 missing file');
  });

  describe('while the burst guard holds a folder', () => {
    const counts = { rewritten: 0, suspicious_new: 0, renamed: 14, deleted: 0, extension: 'locked' };
    const hold = (root_label: string, missing: number) => ({ id: 1, root_id: root_label.toLowerCase(), root_label, tripped_at: 0, since: 0, files: 14, missing, counts, summary: `At 21:02, in ${root_label}, …` });
    const menu = (missing: number, holds: ReturnType<typeof hold>[]) => menuModel(status({ missing_local_files: missing, guard: { holds } }), { state: 'connected' });
    const bringBack = (m: MenuItemModel[]) => actions(m).find((a) => a.id === 'restore-missing')!;

    it('offers what the Restore page offers: the missing files of the other folders, the held one named as left out', () => {
      // 14 of Media's files are missing (held), 3 of other folders: the Restore page offers those 3
      const s = status({ missing_local_files: 17, guard: { holds: [hold('Media', 14)] } });
      const m = menuModel(s, { state: 'connected' });
      expect(missingToOffer(s)).toBe(3);
      expect(bringBack(m)).toEqual({ kind: 'action', id: 'restore-missing', label: 'Bring back 3 missing files of the other folders', enabled: true });
      const i = m.findIndex((x) => x.kind === 'action' && x.id === 'restore-missing');
      expect(m[i - 1]).toEqual({ kind: 'label', label: 'Media: holding changes, see Overview' });
      expect(bringBack(menu(15, [hold('Media', 14)])).label).toBe('Bring back 1 missing file of the other folders');
    });

    it('greys the item when every missing file is in held folders, and names each held folder', () => {
      const m = menu(20, [hold('Media', 14), hold('Archive', 6)]);
      expect(bringBack(m)).toMatchObject({ label: 'No other files are missing', enabled: false });
      expect(m.filter((x) => x.kind === 'label').map((x) => x.label)).toEqual(expect.arrayContaining(['Media: holding changes, see Overview', 'Archive: holding changes, see Overview']));
    });

    it('a held folder with nothing missing changes nothing in the count', () => {
      expect(bringBack(menu(2, [hold('Media', 0)]))).toMatchObject({ label: 'Bring back 2 missing files', enabled: true });
      expect(bringBack(menu(0, [hold('Media', 0)]))).toMatchObject({ label: 'No files are missing', enabled: false });
    });

    it('says nothing of holds while disconnected', () => {
      const m = menuModel(status({ missing_local_files: 17, guard: { holds: [hold('Media', 14)] } }), { state: 'lost', since: 0 });
      expect(m.some((x) => x.kind === 'label' && /holding/.test(x.label))).toBe(false);
      expect(bringBack(m).enabled).toBe(false);
    });
  });

  it('disables engine commands while disconnected but keeps open and quit', () => {
    const items = actions(menuModel(status(), { state: 'lost', since: 0 }));
    expect(items.filter((a) => a.enabled).map((a) => a.id)).toEqual(['open', 'quit']);
  });

  it('warns that quitting stops an embedded engine', () => {
    const quit = actions(menuModel(status(), { state: 'connected' }, { embedded: true })).find((a) => a.id === 'quit')!;
    expect(quit.label).toMatch(/backups stop/);
    const quitSvc = actions(menuModel(status(), { state: 'connected' })).find((a) => a.id === 'quit')!;
    expect(quitSvc.label).toBe('Quit Triplicate');
  });

  it('puts the title and summary first as disabled labels', () => {
    const m = menuModel(status({ health: 'syncing', pending: 2, summary: '2 files are waiting' }), { state: 'connected' });
    expect(m[0]).toEqual({ kind: 'label', label: 'Backing up' });
    expect(m[1]).toEqual({ kind: 'label', label: '2 files are waiting' });
  });
});
