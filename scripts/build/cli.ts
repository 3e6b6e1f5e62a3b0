/**
 * The second step of `npm run build`: bundles the CLI as tsc wrote it (dist/cli/main.js, with
 * yargs and chalk) into one module in its place, so that start-up reads and links one file
 * instead of about a hundred. The code of each command is split into chunks (dist/cli/chunks/)
 * that load when the command runs; the AWS SDK stays in node_modules. The library
 * (dist/index.js) stays as tsc wrote it.
 * See docs/performance.md, "Start-up".
 */
import { build, type Plugin } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const cliDir = dirname(main);

/**
 * string-width builds Unicode tables (an RGI_Emoji regular expression, an Intl.Segmenter) when
 * it is loaded, which cost more than the rest of yargs; yargs loads it (three copies, through
 * cliui and wrap-ansi) at start-up and needs it only to lay out help. Printable ASCII is as
 * wide as it is long; any other string goes to string-width, loaded the first time one comes.
 */
const lazyStringWidth: Plugin = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'real' });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      resolveDir: dirname(args.path),
      contents: `
        const printable = /^[\\x20-\\x7e]*$/;
        let real;
        export default function stringWidth(string, options) {
          if (typeof string === 'string' && printable.test(string)) return string.length;
          real ??= require(${JSON.stringify(args.path)}).default;
          return real(string, options);
        }`,
      loader: 'js',
    }));
  },
};

/**
 * yargs finds the package root (for its default version) from its own path up to
 * `node_modules`; in the bundle there is none, so it would search up from the working
 * directory, failing (an AssertionError built and caught) or finding another package.json.
 * Give it regfs's package root: two levels above dist/cli/main.js. (This names two files inside
 * yargs; a yargs that moves them fails this build, it does not build something else.)
 */
const yargsRoot: Plugin = {
  name: 'yargs-root',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]yargs[\\/]index\.mjs$/ }, (args) => ({
      resolveDir: dirname(args.path),
      contents: `
        import { fileURLToPath } from 'node:url';
        import shim from './lib/platform-shims/esm.mjs';
        import { YargsFactory } from './build/lib/yargs-factory.js';
        export default YargsFactory({ ...shim, mainFilename: fileURLToPath(new URL('../..', import.meta.url)) });`,
      loader: 'js',
    }));
  },
};

const chunks = join(cliDir, 'chunks');
rmSync(chunks, { recursive: true, force: true });
// tsc's source map describes the unbundled file.
rmSync(`${main}.map`, { force: true });
await build({
  entryPoints: [main],
  outdir: cliDir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [lazyStringWidth, yargsRoot],
  // The AWS SDK is CommonJS that requires Node's modules, which an ESM bundle cannot do; it
  // loads from node_modules, and only when an s3:// root is opened (src/storage/open.ts).
  external: ['@aws-sdk/*', '@smithy/*'],
  logLevel: 'warning',
});
