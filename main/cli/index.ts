// The `afd` command line: a table of subcommands, each a small module.
// Errors print one sentence on stderr (the stack only with --debug) and exit non-zero.

export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

// Each command's module is loaded only when the command runs, so that the store
// commands do not pay for loading ONNX Runtime and the model code.
const commands: Record<string, Command> = {
  doctor: { summary: 'check the installation: versions, execution providers, and a 20-step training run', run: async (a) => (await import('./doctor.ts')).doctor(a) },
  generate: { summary: 'generate a response from a model folder (the default model without --model)', run: async (a) => (await import('./generate.ts')).generateCommand(a) },
  score: { summary: 'log-probability of each token of a text under a model', run: async (a) => (await import('./generate.ts')).scoreCommand(a) },
  pretrain: { summary: 'build the embedded default model: a BPE tokenizer and a small GPT-2 trained on the HH transcripts', run: async (a) => (await import('./pretrain.ts')).pretrainCommand(a) },
  'bench generate': { summary: 'generation throughput (prefill and decode, batch 1 and 16), with --vs-torch against transformers, as JSON', run: async (a) => (await import('./bench.ts')).benchGenerate(a) },
  'bench train': { summary: 'training throughput of the engine (and PyTorch with --vs-torch), as JSON', run: async (a) => (await import('./bench.ts')).benchTrain(a) },
  'bench gpu': { summary: 'the prepared GPU check: training, LoRA and generation against PyTorch on the same machine, as one JSON (scripts/gpu-check.sh)', run: async (a) => (await import('./bench-gpu.ts')).benchGpu(a) },
  'datasets import': { summary: 'import a dataset file (HH, JSON Lines, CSV; .gz too) as a job, with progress', run: async (a) => (await import('./datasets.ts')).datasetsImport(a) },
  'datasets list': { summary: 'the datasets in the store, with their example counts', run: async (a) => (await import('./datasets.ts')).datasetsList(a) },
  'datasets show': { summary: "a dataset's examples, searchable and paged", run: async (a) => (await import('./datasets.ts')).datasetsShow(a) },
  'datasets export': { summary: 'a dataset as JSON Lines, to stdout or a file', run: async (a) => (await import('./datasets.ts')).datasetsExport(a) },
  run: { summary: 'run an AfD experiment (a YAML pipeline of stages) with progress; Ctrl-C pauses, --resume continues', run: async (a) => (await import('./experiment.ts')).runCommand(a) },
  demo: { summary: 'the HH-Harmless microcosm at small scale on the default model (about 10 minutes on 2 cores)', run: async (a) => (await import('./experiment.ts')).demoCommand(a) },
  repro: { summary: 'reproduce the HH-Harmless results: every method row, results.json, a table and plots', run: async (a) => (await import('./experiment.ts')).reproCommand(a) },
  'runs list': { summary: 'the jobs recorded in the store', run: async (a) => (await import('./runs.ts')).runsList(a) },
  'runs show': { summary: "a run's config, status, metrics, error and log", run: async (a) => (await import('./runs.ts')).runsShow(a) },
  'runs cancel': { summary: 'cancel a run (a running one stops at its next step, with a checkpoint)', run: async (a) => (await import('./runs.ts')).runsCancel(a) },
  'runs pause': { summary: 'pause a running run at its next step, with a checkpoint', run: async (a) => (await import('./runs.ts')).runsPause(a) },
  'runs resume': { summary: 'continue a paused, cancelled, failed or interrupted run from its checkpoint', run: async (a) => (await import('./runs.ts')).runsResume(a) },
  'train-tiny': { summary: 'train the built-in tiny GPT as a job (progress, Ctrl-C cancels, resumable)', run: async (a) => (await import('./train-tiny.ts')).trainTiny(a) },
  'models list': { summary: 'the models in the store', run: async (a) => (await import('./models.ts')).modelsList(a) },
  'models import': { summary: 'check a Hugging Face model folder (safetensors) and copy it into the store', run: async (a) => (await import('./models.ts')).modelsImport(a) },
  'models export': { summary: 'write a stored model as a Hugging Face folder (optionally as F16 or BF16)', run: async (a) => (await import('./models.ts')).modelsExport(a) },
  'export trl': { summary: 'an experiment as a Hugging Face TRL + accelerate project for GPU machines and clusters', run: async (a) => (await import('./trl.ts')).exportTrlCommand(a) },
  'import results': { summary: "a TRL project's outputs back into the store as a new experiment, its other stages run here", run: async (a) => (await import('./trl.ts')).importResultsCommand(a) },
  serve: { summary: 'the studio in a browser: its API and interface on this machine (prints the address with its access token)', run: async (a) => (await import('./serve.ts')).serveCommand(a) },
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
