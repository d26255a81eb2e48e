// Builds dist/hubbub.min.js: the browser build of the client (ES module,
// minified, no MessagePack), which the hub embeds and serves at /client.js.
// Run with `npm run build` (esbuild is a pinned dev dependency); the output
// is committed so that building the hub never needs npm.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const common = { bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2020', external: ['ws'], legalComments: 'none' };
await build({ ...common, entryPoints: ['src/index.js'], outfile: 'dist/hubbub.min.js' });
await build({ ...common, entryPoints: ['src/msgpack.js'], outfile: 'dist/msgpack.min.js' });
for (const f of ['dist/hubbub.min.js', 'dist/msgpack.min.js']) {
  const b = readFileSync(f);
  console.log(`${f}: ${b.length} bytes, ${gzipSync(b, { level: 9 }).length} gzipped`);
}
