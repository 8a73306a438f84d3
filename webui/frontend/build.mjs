// build.mjs: bundles src/ into ../assets with esbuild. The output depends
// only on the sources and the versions pinned in package-lock.json, so
// that .ci/run can rebuild it and compare it with the committed assets.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';

const out = new URL('../assets/', import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: ['src/app.js', 'src/style.css'],
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  legalComments: 'eof',
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  charset: 'utf8',
  logLevel: 'warning',
});
copyFileSync('src/index.html', out + 'index.html');
