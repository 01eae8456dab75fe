#!/usr/bin/env node
// The `afd` command. The sources are TypeScript; tsx compiles them on load so that
// the CLI, the tests and the app always run the same code with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
