// Node options of the engine process, given by everything that starts it (the desktop app's
// utilityProcess, the service files, `npm run serve`/`demo`, the tests and benchmarks that run it as
// shipped; test/engine/engine-flags.test.ts checks they agree).
//
// --min-semi-space-size=16: V8's young generation starts at 1 MiB and grows only when many objects
// survive, so the objects of each upload in flight (a few tens of ms) outlive two scavenges, get
// promoted and pile up as old garbage until a full collection: a 100,000-file sync peaked at
// 318-361 MB RSS without it, 221-226 MB with it (docs/benchmarks.md). 16 MiB is V8's own maximum.
export const ENGINE_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16'];
