// IPC channel names shared by the preload script and the main process. Plain constants so both
// bundles agree; nothing here is exposed to the page (the page sees only the named functions).
export const IPC = {
  getEngineConnection: 'triplicate:get-engine-connection',
  pickFolder: 'triplicate:pick-folder',
  prepareDrag: 'triplicate:prepare-drag',
  startDrag: 'triplicate:start-drag',
  openExternal: 'triplicate:open-external',
  showItemInFolder: 'triplicate:show-item-in-folder',
  getDesktopSettings: 'triplicate:get-desktop-settings',
  setDesktopSettings: 'triplicate:set-desktop-settings',
  testWebhook: 'triplicate:test-webhook',
  getAppInfo: 'triplicate:get-app-info',
  openLogFolder: 'triplicate:open-log-folder',
  /** main -> renderer */
  command: 'triplicate:command',
} as const;
