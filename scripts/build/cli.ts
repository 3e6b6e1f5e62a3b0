/**
 * The second step of `npm run build`: bundles the CLI as tsc wrote it (dist/cli/main.js, with
 * yargs and chalk) into one CommonJS file in its place, so that start-up reads and links one
 * file instead of about a hundred, without Node's ES module loader. The code of each command is
 * split into chunks (dist/cli/chunks/) that load when the command runs; the AWS SDK stays in
 * node_modules. The library (dist/index.js) stays as tsc wrote it.
 * See docs/performance.md, "Start-up".
 */
import { build, transform, type Plugin } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCodeCaches } from './code-cache.js';

const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
const main = join(packageRoot, 'dist', 'cli', 'main.js');
const cliDir = dirname(main);

/**
 * A package imported by `name`, replaced in the bundle by a stand-in (`standIn(path)`, the
 * real module's path given) that loads the real module with a bare `require` of that path:
 * esbuild bundles the real module so that it is evaluated on that first call, not at start-up.
 */
function lazyPackage(name: string, standIn: (path: string) => string): Plugin {
  const namespace = `lazy-${name}`;
  return {
    name: namespace,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${name}$`) }, async (args) => {
        if (args.pluginData === 'real') return undefined;
        const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'real' });
        if (real.errors.length > 0) return { errors: real.errors };
        // Named in the bundle by its path from node_modules, not on the machine that built it.
        const inModules = real.path.split(sep).indexOf('node_modules');
        const path = inModules < 0 ? basename(real.path) : real.path.split(sep).slice(inModules).join('/');
        return { path, namespace, pluginData: real.path };
      });
      b.onLoad({ filter: /.*/, namespace }, (args) => {
        const real = args.pluginData as string;
        return { resolveDir: dirname(real), contents: standIn(JSON.stringify(real)), loader: 'js' };
      });
    },
  };
}

/**
 * string-width builds Unicode tables (an RGI_Emoji regular expression, an Intl.Segmenter) when
 * it is loaded, which cost more than the rest of yargs; yargs loads it (three copies, through
 * cliui and wrap-ansi) at start-up and needs it only to lay out help. Printable ASCII is as
 * wide as it is long; any other string goes to string-width, loaded the first time one comes.
 */
const lazyStringWidth = lazyPackage(
  'string-width',
  (path) => `
    const printable = /^[\\x20-\\x7e]*$/;
    let real;
    export default function stringWidth(string, options) {
      if (typeof string === 'string' && printable.test(string)) return string.length;
      real ??= require(${path}).default;
      return real(string, options);
    }`,
);

/**
 * yargs finds the package root (for its default version) from its own path up to
 * `node_modules`; in the bundle there is none, so it would search up from the working
 * directory, failing (an AssertionError built and caught) or finding another package.json.
 * Give it regfs's package root: two levels above dist/cli/main.js. Its platform shim
 * (lib/platform-shims/esm.mjs) is replaced by the same shim made lazy: it loaded node:assert
 * and node:util for checks that never fail and messages rarely printed, and read
 * `process.stdout.columns` when loaded, which makes stdout (loading net or tty) before regfs
 * has decided anything. Here node:assert and node:util load when first called, and the
 * columns are read when help is laid out. (This names files inside yargs; a yargs that moves
 * them fails this build, it does not build something else.) cliui (with wrap-ansi and
 * ansi-styles), which lays help out, is evaluated when help is first shown: a bare
 * `require` of a bundled module makes esbuild evaluate it on that call, not at start-up.
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
    b.onLoad({ filter: /[\\/]node_modules[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => ({
      resolveDir: dirname(args.path),
      contents: `
        import escalade from 'escalade/sync';
        import { fileURLToPath } from 'node:url';
        import Parser from 'yargs-parser';
        import { basename, dirname, extname, relative, resolve, join } from 'node:path';
        import { getProcessArgvBin } from '../../build/lib/utils/process-argv.js';
        import stringWidth from 'string-width';
        import y18n from 'y18n';
        import { createRequire } from 'node:module';
        import getCallerFile from 'get-caller-file';
        import { readFileSync, readdirSync } from 'node:fs';
        const nodeRequire = createRequire(import.meta.url);
        const __dirname = fileURLToPath(import.meta.url);
        export default {
          assert: {
            notStrictEqual: (a, b, message) => { if (Object.is(a, b)) nodeRequire('node:assert').notStrictEqual(a, b, message); },
            strictEqual: (a, b, message) => { if (!Object.is(a, b)) nodeRequire('node:assert').strictEqual(a, b, message); },
          },
          cliui: (opts) => require('cliui').default(opts),
          findUp: escalade,
          getEnv: (key) => process.env[key],
          inspect: (...a) => nodeRequire('node:util').inspect(...a),
          getProcessArgvBin,
          mainFilename: process.cwd(),
          Parser,
          path: { basename, dirname, extname, relative, resolve, join },
          process: {
            argv: () => process.argv,
            cwd: process.cwd,
            emitWarning: (warning, type) => process.emitWarning(warning, type),
            execPath: () => process.execPath,
            exit: (code) => { process.exit(code); },
            nextTick: process.nextTick,
            get stdColumns() { return typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null; },
          },
          readFileSync,
          readdirSync,
          require: nodeRequire,
          getCallerFile: () => {
            const callerFile = getCallerFile(3);
            return callerFile.match(/^file:\\/\\//) ? fileURLToPath(callerFile) : callerFile;
          },
          stringWidth,
          y18n: y18n({ directory: resolve(__dirname, '../../../locales'), updateFiles: false }),
        };`,
      loader: 'js',
    }));
  },
};

/**
 * After starting a command's handler, yargs renders the whole help text and keeps it, in case
 * the program calls showHelp() later from an asynchronous handler; regfs never does, and the
 * rendering cost every command about 6 ms (cliui and string-width over every option). The call
 * is taken out of yargs's command runner; the build fails if yargs no longer makes it there.
 */
const noCachedHelp: Plugin = {
  name: 'no-cached-help',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]yargs[\\/]build[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const call = 'yargs.getInternalMethods().getUsageInstance().cacheHelpMessage();';
      if (text.split(call).length !== 2) return { errors: [{ text: `yargs's command.js does not call cacheHelpMessage() once as expected; see scripts/build/cli.ts` }] };
      return { contents: text.replace(call, '/* help not cached: scripts/build/cli.ts */'), loader: 'js' };
    });
  },
};

/**
 * yargs-parser and y18n (yargs's messages) take `format` from node:util: node:util (with what
 * it loads) then loads only when a message is formatted.
 */
const lazyUtil: Plugin = {
  name: 'lazy-util',
  setup(b) {
    b.onResolve({ filter: /^(node:)?util$/ }, (args) =>
      /[\\/]node_modules[\\/](yargs-parser|y18n)[\\/]/.test(args.importer) ? { path: 'util', namespace: 'lazy-util' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-util' }, () => ({
      contents: `
        import { createRequire } from 'node:module';
        const require = createRequire(import.meta.url);
        export const format = (...a) => require('node:util').format(...a);`,
      loader: 'js',
    }));
  },
};

/**
 * regfs's own modules make a Chalk only when a message is coloured (src/cli/output.ts): chalk
 * (with ansi-styles) is evaluated then, through a stand-in whose constructor makes the real
 * one. Only `Chalk` is taken from chalk; a module asking for more fails this build.
 */
const lazyChalk = lazyPackage(
  'chalk',
  (path) => `
    export class Chalk {
      constructor(options) {
        return new (require(${path}).Chalk)(options);
      }
    }`,
);

/**
 * chalk's own colour detection (its vendored supports-color, which loads node:tty and node:os
 * when chalk is loaded) decides nothing in regfs: every Chalk regfs makes is given the level
 * src/cli/color.ts decides. It is replaced by "no colour" for chalk's unused default instance.
 */
const noSupportsColor: Plugin = {
  name: 'no-supports-color',
  setup(b) {
    b.onResolve({ filter: /^#supports-color$/ }, () => ({ path: 'supports-color', namespace: 'no-supports-color' }));
    b.onLoad({ filter: /.*/, namespace: 'no-supports-color' }, () => ({
      contents: `export default { stdout: false, stderr: false };`,
      loader: 'js',
    }));
  },
};

// The bundle is built as ES modules, which is how esbuild splits code into chunks, then each file
// is turned into CommonJS: Node starts a CommonJS program without its ES module loader, which
// cost regfs --version about 3 ms of its 16 over `node -e 0`, and each chunk a command loads
// about 1 ms more. dist/cli/package.json says the files are CommonJS. import.meta.url becomes
// the file's own URL; a dynamic import() of a chunk becomes a require. The entry is
// dist/cli/bundle.js, beside where tsc put main.js, so that paths made from its URL (the
// package root, package.json) stay what they were.
// What a previous build left in dist/cli: its package.json would make esbuild read tsc's ES
// modules there as CommonJS (a different bundle from a build from nothing, as npm pack makes).
rmSync(join(cliDir, 'package.json'), { force: true });
const bundled = await build({
  entryPoints: [{ in: main, out: 'bundle' }],
  outdir: cliDir,
  write: false,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [lazyStringWidth, yargsRoot, noCachedHelp, lazyUtil, lazyChalk, noSupportsColor],
  // The AWS SDK is CommonJS that requires Node's modules; it loads from node_modules, and only
  // when an s3:// root is opened (src/storage/open.ts).
  external: ['@aws-sdk/*', '@smithy/*'],
  logLevel: 'warning',
});
// The executable, dist/cli/main.js, is scripts/build/loader.ts: it runs the bundle's files with
// their V8 code caches (made below).
const loader = await build({
  entryPoints: [fileURLToPath(new URL('./loader.ts', import.meta.url))],
  write: false,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
// tsc's modules of dist/cli are all in the bundle now; what is left of them would be ES modules
// in a CommonJS directory.
rmSync(cliDir, { recursive: true, force: true });
mkdirSync(join(cliDir, 'chunks'), { recursive: true });
writeFileSync(join(cliDir, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
for (const file of bundled.outputFiles) {
  const esm = file.text.replace(/^#!.*\n/, '');
  const metaUrl = 'var __import_meta_url = require("node:url").pathToFileURL(__filename).href;';
  const cjs = await transform(esm, {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    supported: { 'dynamic-import': false },
    define: { 'import.meta.url': '__import_meta_url' },
    banner: esm.includes('import.meta.url') ? metaUrl : '',
    logLevel: 'warning',
  });
  writeFileSync(file.path, cjs.code);
}
writeFileSync(main, loader.outputFiles[0]!.text, { mode: 0o755 });
makeCodeCaches(main, { root: join(packageRoot, 'fixtures', 'registry'), list: join(packageRoot, 'fixtures', 'demo.list') });
