#!/usr/bin/env node
/** The `regfs` executable. */
import { hideBin } from 'yargs/helpers';
import { main } from './app.js';

process.exitCode = await main(hideBin(process.argv));
