#!/usr/bin/env node
// Draws the tray icons (resources/tray-<state>.png, 16 px + @2x 32 px), the window icon, the drag
// icon and the app icons (build/icon.png 1024, build/icon.ico, build/icon.icns) from SVG with sharp.
// ICO and ICNS are written by hand: both are simple containers of PNG images.
// Run: node scripts/make-icons.mjs (the outputs are committed).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const res = join(root, 'resources');
const build = join(root, 'build');
mkdirSync(res, { recursive: true });
mkdirSync(build, { recursive: true });

// --- tray: a coloured dot with a dark rim (visible on light and dark task bars) and a glyph
const TRAY = {
  green: { fill: '#1f9d55', glyph: 'check' },
  syncing: { fill: '#2f6fde', glyph: 'arrow' },
  behind: { fill: '#e69500', glyph: 'bang' },
  failing: { fill: '#d93025', glyph: 'cross' },
  paused: { fill: '#7d8794', glyph: 'pause' },
  offline: { fill: 'none', glyph: 'none' },
};

function glyph(kind) {
  const s = 'stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round" fill="none"';
  switch (kind) {
    case 'check':
      return `<path d="M10 16.5l4 4 8-9" ${s}/>`;
    case 'arrow':
      return `<path d="M16 22V10M11 15l5-5 5 5" ${s}/>`;
    case 'bang':
      return `<path d="M16 9v8" ${s}/><circle cx="16" cy="22" r="1.7" fill="#fff"/>`;
    case 'cross':
      return `<path d="M11 11l10 10M21 11L11 21" ${s}/>`;
    case 'pause':
      return `<path d="M13 10v12M19 10v12" ${s}/>`;
    default:
      return '';
  }
}

function traySvg(state) {
  const { fill, glyph: g } = TRAY[state];
  if (fill === 'none') {
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="12" fill="none" stroke="#7d8794" stroke-width="3.5"/><circle cx="16" cy="16" r="14" fill="none" stroke="#00000040" stroke-width="1"/></svg>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" fill="${fill}" stroke="#00000059" stroke-width="1.5"/>${glyph(g)}</svg>`;
}

async function png(svg, size) {
  return sharp(Buffer.from(svg), { density: Math.max(72, (72 * size) / 32) * 4 })
    .resize(size, size)
    .png({ compressionLevel: 9 })
    .toBuffer();
}

for (const state of Object.keys(TRAY)) {
  writeFileSync(join(res, `tray-${state}.png`), await png(traySvg(state), 16));
  writeFileSync(join(res, `tray-${state}@2x.png`), await png(traySvg(state), 32));
}

// --- app icon: three stacked copies on a blue tile
const APP_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1024 1024">
  <defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2f74e6"/><stop offset="1" stop-color="#1a4fb0"/></linearGradient></defs>
  <rect x="64" y="64" width="896" height="896" rx="200" fill="url(#g)"/>
  <rect x="250" y="250" width="150" height="524" rx="48" fill="#ffffff"/>
  <rect x="437" y="250" width="150" height="524" rx="48" fill="#ffffff" fill-opacity="0.78"/>
  <rect x="624" y="250" width="150" height="524" rx="48" fill="#ffffff" fill-opacity="0.55"/>
</svg>`;

const appPng = async (size) => sharp(Buffer.from(APP_SVG), { density: Math.max(72, (72 * size) / 1024) * 2 }).resize(size, size).png({ compressionLevel: 9 }).toBuffer();

writeFileSync(join(build, 'icon.png'), await appPng(1024));
writeFileSync(join(res, 'icon.png'), await appPng(256));

// ICO: header, one directory entry per image, then the PNG data (Vista+ reads PNG entries).
async function ico(sizes) {
  const images = await Promise.all(sizes.map((s) => appPng(s)));
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(images.length, 4);
  const dir = Buffer.alloc(16 * images.length);
  let offset = 6 + dir.length;
  images.forEach((img, i) => {
    const s = sizes[i];
    const e = i * 16;
    dir.writeUInt8(s >= 256 ? 0 : s, e);
    dir.writeUInt8(s >= 256 ? 0 : s, e + 1);
    dir.writeUInt8(0, e + 2);
    dir.writeUInt8(0, e + 3);
    dir.writeUInt16LE(1, e + 4);
    dir.writeUInt16LE(32, e + 6);
    dir.writeUInt32LE(img.length, e + 8);
    dir.writeUInt32LE(offset, e + 12);
    offset += img.length;
  });
  return Buffer.concat([header, dir, ...images]);
}
writeFileSync(join(build, 'icon.ico'), await ico([16, 24, 32, 48, 64, 128, 256]));

// ICNS: 'icns' + total length, then (type, length, PNG) entries.
async function icns(entries) {
  const parts = [];
  for (const [type, size] of entries) {
    const data = await appPng(size);
    const h = Buffer.alloc(8);
    h.write(type, 0, 'ascii');
    h.writeUInt32BE(data.length + 8, 4);
    parts.push(h, data);
  }
  const body = Buffer.concat(parts);
  const h = Buffer.alloc(8);
  h.write('icns', 0, 'ascii');
  h.writeUInt32BE(body.length + 8, 4);
  return Buffer.concat([h, body]);
}
writeFileSync(
  join(build, 'icon.icns'),
  await icns([
    ['icp4', 16],
    ['icp5', 32],
    ['icp6', 64],
    ['ic07', 128],
    ['ic08', 256],
    ['ic09', 512],
    ['ic10', 1024],
    ['ic11', 32],
    ['ic12', 64],
    ['ic13', 256],
    ['ic14', 512],
  ]),
);

// Linux desktop icons (electron-builder picks build/icons/<size>x<size>.png)
mkdirSync(join(build, 'icons'), { recursive: true });
for (const s of [16, 32, 48, 64, 128, 256, 512]) writeFileSync(join(build, 'icons', `${s}x${s}.png`), await appPng(s));

// --- drag icon: a small document
const DRAG_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M8 3h11l6 6v20H8z" fill="#ffffff" stroke="#1a4fb0" stroke-width="2" stroke-linejoin="round"/><path d="M19 3v6h6" fill="none" stroke="#1a4fb0" stroke-width="2" stroke-linejoin="round"/></svg>`;
writeFileSync(join(res, 'drag.png'), await png(DRAG_SVG, 32));

console.log('icons written to resources/ and build/');
