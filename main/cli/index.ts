// The `afd` command line: a table of subcommands, each a small module.
// Errors print one sentence on stderr (the stack only with --debug) and exit non-zero.

import { doctor } from './doctor.ts';
import { benchTrain } from './bench.ts';
import { pretrainCommand } from './pretrain.ts';

export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  doctor: { summary: 'check the installation: versions, execution providers, and a 20-step training run', run: doctor },
  pretrain: { summary: 'build the embedded default model: a BPE tokenizer and a small GPT-2 trained on the HH transcripts', run: pretrainCommand },
  'bench train': { summary: 'training throughput of the engine (and PyTorch with --vs-torch), as JSON', run: benchTrain },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: afd <command> [options]', '', ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`), '', 'Add --help after a command for its options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  if (args.length === 0 || args[0] === '--help' || args[0] === 'help') {
    console.log(usage());
    return args.length === 0 ? 1 : 0;
  }
  const name = [`${args[0]} ${args[1] ?? ''}`, args[0]].find((n) => n in commands);
  if (!name) {
    console.error(`afd: unknown command '${args.slice(0, 2).join(' ')}'.\n\n${usage()}`);
    return 2;
  }
  try {
    return await commands[name].run(args.slice(name.split(' ').length));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`afd ${name}: ${err.message}`);
    if (debug && err.stack) console.error(err.stack);
    return 1;
  }
}
