// Import circles in src/: every relative import of every .ts/.tsx file, `import type` and
// `import()` included (a circle of types is a circle of design even when nothing runs in it;
// eslint-plugin-import-x's no-cycle skips type imports). Exit 1 and each circle printed when
// there is one. Run by `npm run lint` and by test/engine/layers.test.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec);
  for (const cand of [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts'), join(base, 'index.tsx')]) {
    if (/\.tsx?$/.test(cand) && existsSync(cand) && statSync(cand).isFile()) return cand;
  }
  return null;
}

/** file -> the files it imports (relative imports only). */
export function importGraph(dir = join(ROOT, 'src')) {
  const graph = new Map();
  for (const f of sourceFiles(dir)) {
    const info = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
    const deps = new Set();
    for (const r of info.importedFiles) {
      const to = resolveImport(f, r.fileName);
      if (to) deps.add(to);
    }
    graph.set(f, deps);
  }
  return graph;
}

/** The circles of a graph: its strongly connected components of more than one file (Tarjan). */
export function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v)?.has(v) ?? false)) out.push(comp.map((p) => relative(ROOT, p)).sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const found = cycles(importGraph());
  for (const c of found) console.error(`Import circle: ${c.join(' <-> ')}`);
  if (found.length) {
    console.error(`${found.length} import circle(s) in src/: break each one (move the shared part down a layer, or pass a function in from the composition root).`);
    process.exit(1);
  }
}
