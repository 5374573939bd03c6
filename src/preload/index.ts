// Preload (sandboxed, CommonJS): exposes named functions only, never ipcRenderer itself.
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import { IPC } from './channels';
import type { TriplicateBridge, RendererCommand, DesktopSettingsPatch } from './bridge';

const str = (v: unknown, max = 4096): string => (typeof v === 'string' ? v.slice(0, max) : '');

const bridge: TriplicateBridge = {
  isElectron: true,
  platform: process.platform,
  getEngineConnection: () => ipcRenderer.invoke(IPC.getEngineConnection),
  pickFolder: (opts) => ipcRenderer.invoke(IPC.pickFolder, { title: str(opts?.title, 200), defaultPath: str(opts?.defaultPath) }),
  pathsForFiles: (files) => {
    const out: string[] = [];
    for (const f of Array.from(files)) {
      try {
        out.push(webUtils.getPathForFile(f));
      } catch {
        out.push('');
      }
    }
    return out;
  },
  prepareDrag: (fileKey) => ipcRenderer.invoke(IPC.prepareDrag, str(fileKey)),
  startDrag: (fileKey) => ipcRenderer.send(IPC.startDrag, str(fileKey)),
  openExternal: (url) => ipcRenderer.invoke(IPC.openExternal, str(url, 8192)),
  showItemInFolder: (path) => ipcRenderer.invoke(IPC.showItemInFolder, str(path)),
  onCommand: (cb) => {
    const listener = (_e: IpcRendererEvent, cmd: RendererCommand) => cb(cmd);
    ipcRenderer.on(IPC.command, listener);
    return () => {
      ipcRenderer.removeListener(IPC.command, listener);
    };
  },
  getDesktopSettings: () => ipcRenderer.invoke(IPC.getDesktopSettings),
  setDesktopSettings: (patch: DesktopSettingsPatch) => ipcRenderer.invoke(IPC.setDesktopSettings, patch),
  testWebhook: () => ipcRenderer.invoke(IPC.testWebhook),
  getAppInfo: () => ipcRenderer.invoke(IPC.getAppInfo),
  openLogFolder: () => ipcRenderer.invoke(IPC.openLogFolder),
};

contextBridge.exposeInMainWorld('triplicate', bridge);
