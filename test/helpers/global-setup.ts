// Before any test: the compiled engine (out/engine) is current, so the tests that start
// `bin/triplicate.mjs` run the code under test, as it ships.
// @ts-expect-error: a plain .mjs script without types
import { ensureBuilt } from '../../scripts/ensure-built.mjs';

export function setup(): void {
  (ensureBuilt as (names: string[]) => void)(['engine']);
}
