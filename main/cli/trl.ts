// `afd export trl` and `afd import results`: an experiment as a TRL + accelerate project for
// machines with GPUs, and that project's outputs back into the store as a new experiment,
// whose remaining stages (the gold judge, the evaluation...) then run here. Both through
// the service (experiments.exportTrl, experiments.importTrl, experiments.resume).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { JsonObject } from '../../db/json.ts';
import type { StudioService } from '../api/service.ts';
import { readExperimentFile } from '../experiments/experiment.ts';
import { TRL_SCRIPTS } from '../experiments/trl/export.ts';
import { report, runExperiment } from './experiment.ts';
import { onePositional, printJson, wholeNumber } from './output.ts';
import { DB_OPTION, DB_USAGE, withService } from './studio.ts';

const EXPORT_USAGE = `usage: afd export trl EXPERIMENT --out DIR [--gpus N] [--pi0 PATH|HUB_ID] [--json] [${DB_USAGE}]
  EXPERIMENT: an experiment file (e.g. experiments/demo.yaml), or a stored experiment's name or id.
  --gpus N: the GPUs of the one machine accelerate.yaml describes (default 8).
  --pi0: where the project's machines find the initial model; without it, its folder is copied into the project.
  Exported stage kinds: ${[...new Set(Object.keys(TRL_SCRIPTS))].join(', ')}; the others run in the studio after the import.`;

export async function exportTrlCommand(argv: string[]): Promise<number> {
  const str = { type: 'string' } as const;
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, out: str, gpus: str, pi0: str, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) return help(EXPORT_USAGE);
  const which = onePositional(positionals, 'experiment file, name or id', EXPORT_USAGE);
  if (values.out === undefined) throw new Error(`Say where to write the project with --out: ${EXPORT_USAGE}`);
  const gpus = values.gpus === undefined ? undefined : wholeNumber('gpus', values.gpus, 8, 1);
  return withService(values.db, async ({ service }) => {
    const m = await service.call('experiments.exportTrl', {
      ...(await experimentToExport(service, which)), out: resolve(values.out!),
      ...(gpus === undefined ? {} : { gpus }), ...(values.pi0 === undefined ? {} : { pi0: values.pi0 }),
    });
    if (values.json) {
      printJson(m);
      return 0;
    }
    const exported = m.stages.filter((s) => s.exported), kept = m.stages.filter((s) => !s.exported);
    console.log(`Wrote ${m.out}: ${exported.length} of ${m.stages.length} stages of '${m.experiment.name}' as TRL scripts, the data (${m.data.train} train, ${m.data.eval} eval prompts) and an accelerate config for ${m.gpus} GPU${m.gpus === 1 ? '' : 's'}.`);
    for (const s of exported) console.log(`  ${s.id} (${s.kind}): scripts/${s.script}`);
    if (kept.length > 0) {
      console.log('Not exported (the studio runs them after the import):');
      for (const s of kept) console.log(`  ${s.id} (${s.kind}): ${s.why}.`);
    }
    console.log(`Next: on the GPU machine, pip install -r requirements.txt and bash run.sh (README.md); then here, afd import results ${m.out}`);
    return 0;
  });
}

/** An experiment file's definition, or a stored experiment's id from its id or name. */
async function experimentToExport(service: StudioService, which: string): Promise<{ definition: JsonObject } | { experimentId: number }> {
  if (existsSync(which)) return { definition: (await readExperimentFile(which)) as unknown as JsonObject };
  const id = /^#?\d+$/.test(which) ? Number(which.replace('#', '')) : null;
  const stored = (await service.call('experiments.list', {})).find((e) => (id !== null ? e.id === id : e.name === which));
  if (stored === undefined) throw new Error(`There is no experiment file ${which}, nor a stored experiment ${id !== null ? `#${id}` : `named '${which}'`}; give an experiment file (e.g. experiments/demo.yaml), or the name or id of an experiment the Experiments view lists.`);
  return { experimentId: stored.id };
}

const IMPORT_USAGE = `usage: afd import results DIR [--no-run] [--json] [${DB_USAGE}]
  DIR: a project written by \`afd export trl\`, after its run.sh. Its outputs become a new experiment
  linked to the exported one; the stages that were not exported then run here (not with --no-run).`;

export async function importResultsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, 'no-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) return help(IMPORT_USAGE);
  const dir = resolve(onePositional(positionals, 'project folder', IMPORT_USAGE));
  return withService(values.db, async (open) => {
    const r = await open.service.call('experiments.importTrl', { dir });
    const err = process.stderr;
    err.write(`Experiment #${r.experimentId} (${r.name}) from ${dir}: imported ${r.imported.map((s) => s.id).join(', ')}.\n`);
    for (const s of r.local) err.write(`  ${s.id} (${s.kind}) runs here: ${s.why}.\n`);
    if (values['no-run'] || r.local.length === 0) {
      if (values.json) printJson(r);
      else if (r.local.length > 0) console.log(`${r.local.length} stage(s) left to run here: resume experiment #${r.experimentId} in the studio's Experiments view.`);
      return 0;
    }
    const end = await runExperiment(open, { experimentId: r.experimentId });
    return (await report(end, values.json, open.service)).code;
  }, { recover: true });
}

function help(usage: string): number {
  console.log(usage);
  return 0;
}
