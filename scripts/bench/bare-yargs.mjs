// The start-up floor of a yargs CLI: yargs with one command and a version, nothing of regfs.
// `npm run bench` bundles it into one file with esbuild (as regfs's CLI is bundled) and times
// its `--version` beside `node -e 0` and `regfs --version`: what yargs itself costs to start.
import yargs from 'yargs';

yargs(process.argv.slice(2))
  .scriptName('bare')
  .version('0.0.0')
  .command('ls <root>', 'list', (y) => y.positional('root', { type: 'string' }))
  .strict()
  .parse();
