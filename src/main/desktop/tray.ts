// The tray icon: colour and tooltip follow the status; the menu comes from logic/tray.ts.
import { Menu, Tray, nativeImage, type MenuItemConstructorOptions, type NativeImage } from 'electron';
import { join } from 'node:path';
import type { SyncStatus } from '../../shared/api';
import { menuModel, trayState, type EngineLink, type TrayCommand, type TrayIconState } from './logic/tray';

export class AppTray {
  private readonly tray: Tray;
  private readonly icons = new Map<TrayIconState, NativeImage>();
  private lastKey = '';

  constructor(
    private readonly resourcesDir: string,
    private readonly onCommand: (c: TrayCommand) => void,
    private readonly embedded: boolean,
  ) {
    this.tray = new Tray(this.icon('offline'));
    this.tray.setToolTip('Triplicate: starting…');
    // Windows and Linux: a click opens the window; macOS shows the menu on click by default.
    this.tray.on('click', () => {
      if (process.platform !== 'darwin') this.onCommand('open');
    });
    this.update(null, { state: 'connecting' });
  }

  private icon(state: TrayIconState): NativeImage {
    let img = this.icons.get(state);
    if (!img) {
      // tray-<state>.png (16 px) with tray-<state>@2x.png (32 px) beside it: Electron picks the right one.
      img = nativeImage.createFromPath(join(this.resourcesDir, `tray-${state}.png`));
      this.icons.set(state, img);
    }
    return img;
  }

  update(status: SyncStatus | null, link: EngineLink): void {
    const ts = trayState(status, link);
    const model = menuModel(status, link, { embedded: this.embedded });
    const key = JSON.stringify([ts, model]);
    if (key === this.lastKey) return; // status events come often; rebuild the native menu only on change
    this.lastKey = key;
    this.tray.setImage(this.icon(ts.icon));
    this.tray.setToolTip(ts.tooltip);
    const template: MenuItemConstructorOptions[] = model.map((m) => {
      if (m.kind === 'separator') return { type: 'separator' };
      if (m.kind === 'label') return { label: m.label, enabled: false };
      return { label: m.label, enabled: m.enabled, click: () => this.onCommand(m.id) };
    });
    this.tray.setContextMenu(Menu.buildFromTemplate(template));
  }

  destroy(): void {
    this.tray.destroy();
  }
}
