// No import circles in src/ (`import type` and `import()` count: a circle of types is a circle of
// design). `npm run lint` runs the same check (scripts/import-cycles.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error a plain .mjs script without types
import { cycles, importGraph } from '../../scripts/import-cycles.mjs';
import { cleanup, tempDir } from '../helpers/engine';

type Graph = Map<string, Set<string>>;
const find = (dir?: string): string[][] => (cycles as (g: Graph) => string[][])((importGraph as (d?: string) => Graph)(dir));

describe('import circles', () => {
  it('src/ has none', () => {
    expect(find()).toEqual([]);
  });

  it('a circle through a type import is found, with the files in it', () => {
    const dir = tempDir('trip-cycles-');
    try {
      mkdirSync(join(dir, 'svc'));
      writeFileSync(join(dir, 'engine.ts'), "import { Media } from './svc/media';\nexport class Engine { m = new Media(); }\n");
      writeFileSync(join(dir, 'svc', 'media.ts'), "import type { Engine } from '../engine';\nexport class Media { e?: Engine; }\n");
      writeFileSync(join(dir, 'leaf.ts'), "import { Engine } from './engine';\nexport const e = Engine;\n");
      const found = find(dir);
      expect(found).toHaveLength(1);
      expect(found[0]!.map((p) => p.replace(/^.*trip-cycles-[^/]+\//, ''))).toEqual(['engine.ts', 'svc/media.ts']);
    } finally {
      cleanup(dir);
    }
  });
});
