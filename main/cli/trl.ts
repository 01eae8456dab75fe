// `afd export trl` and `afd import results`: an experiment as a TRL + accelerate project for
// machines with GPUs (main/experiments/trl/export.ts), and that project's outputs back into the
// store as a new experiment, whose remaining stages (the gold judge, the evaluation...)
// then run here (main/experiments/trl/import.ts).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { experimentToExport, exportTrl, TRL_SCRIPTS } from '../experiments/trl/export.ts';
import { importTrlResults } from '../experiments/trl/import.ts';
import { report, runExperiment } from './experiment.ts';
import { onePositional, printJson } from './output.ts';
import { DB_OPTION, DB_USAGE, withStudio } from './studio.ts';

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
  const gpus = values.gpus === undefined ? undefined : Number(values.gpus);
  return withStudio(values.db, async ({ db, files }) => {
    const { definition, experimentId } = await experimentToExport(db, which);
    const out = resolve(values.out!);
    const m = await exportTrl(db, files, definition, { out, experimentId, ...(gpus === undefined ? {} : { gpus }), ...(values.pi0 === undefined ? {} : { pi0: values.pi0 }) });
    if (values.json) {
      printJson({ out, ...m });
      return 0;
    }
    const exported = m.stages.filter((s) => s.exported), kept = m.stages.filter((s) => !s.exported);
    console.log(`Wrote ${out}: ${exported.length} of ${m.stages.length} stages of '${definition.name}' as TRL scripts, the data (${m.data.train} train, ${m.data.eval} eval prompts) and an accelerate config for ${m.gpus} GPU${m.gpus === 1 ? '' : 's'}.`);
    for (const s of exported) console.log(`  ${s.id} (${s.kind}): scripts/${s.script}`);
    if (kept.length > 0) {
      console.log('Not exported (the studio runs them after the import):');
      for (const s of kept) console.log(`  ${s.id} (${s.kind}): ${s.why}.`);
    }
    console.log(`Next: on the GPU machine, pip install -r requirements.txt and bash run.sh (README.md); then here, afd import results ${out}`);
    return 0;
  });
}

const IMPORT_USAGE = `usage: afd import results DIR [--no-run] [--json] [${DB_USAGE}]
  DIR: a project written by \`afd export trl\`, after its run.sh. Its outputs become a new experiment
  linked to the exported one; the stages that were not exported then run here (not with --no-run).`;

export async function importResultsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, 'no-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) return help(IMPORT_USAGE);
  const dir = onePositional(positionals, 'project folder', IMPORT_USAGE);
  return withStudio(values.db, async (studio) => {
    const r = await importTrlResults(studio.db, studio.files, dir);
    const err = process.stderr;
    err.write(`Experiment #${r.experimentId} (${r.definition.name}) from ${resolve(dir)}: imported ${r.imported.map((s) => s.id).join(', ')}.\n`);
    for (const s of r.local) err.write(`  ${s.id} (${s.kind}) runs here: ${s.why}.\n`);
    if (values['no-run'] || r.local.length === 0) {
      if (values.json) printJson(r);
      else if (r.local.length > 0) console.log(`${r.local.length} stage(s) left to run here: resume experiment #${r.experimentId} in the studio's Experiments view.`);
      return 0;
    }
    const outcome = await runExperiment(studio, r.definition, { experimentId: r.experimentId });
    return (await report(outcome, values.json, studio)).code;
  });
}

function help(usage: string): number {
  console.log(usage);
  return 0;
}
