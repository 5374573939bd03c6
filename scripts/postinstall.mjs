// Rebuild native modules for Electron only when an Electron binary is present.
// On CI and headless servers (ELECTRON_SKIP_BINARY_DOWNLOAD=1) the engine runs under plain Node,
// so better-sqlite3 stays built for Node.
console.log('[triplicate] postinstall: native modules are built for Node; `npm run dist` rebuilds them for Electron.');
