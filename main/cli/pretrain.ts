// `afd pretrain`: builds the embedded default model (pi_0) from the HH transcripts.

import { parseArgs } from 'node:util';
import { pretrain } from '../stages/pretrain.ts';
import { ProgressBar } from './progress.ts';

export async function pretrainCommand(argv: string[]): Promise<number> {
  const num = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      out: num, data: num, steps: num, batch: num, seq: num, vocab: num, 'd-model': num, layers: num, heads: num, lr: num, 'eval-every': num, threads: num, seed: num,
      json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.out) {
    console.log('usage: afd pretrain --out DIR [--steps 1500] [--batch 8] [--seq 512] [--vocab 4096] [--d-model 256] [--layers 4] [--heads 4] [--lr 1e-3] [--eval-every 250] [--threads N] [--seed 0] [--data FILE] [--json]');
    return values.help ? 0 : 2;
  }
  const n = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name} must be a positive number, not '${v}'`);
    return x;
  };
  let bar: ProgressBar | undefined;
  const result = await pretrain({
    out: values.out, data: values.data, steps: n('steps', values.steps), batch: n('batch', values.batch), seq: n('seq', values.seq), vocabSize: n('vocab', values.vocab),
    model: Object.fromEntries(Object.entries({ nEmbd: n('d-model', values['d-model']), nLayer: n('layers', values.layers), nHead: n('heads', values.heads) }).filter(([, v]) => v !== undefined)),
    lr: n('lr', values.lr), evalEvery: n('eval-every', values['eval-every']), threads: n('threads', values.threads), seed: values.seed === undefined ? undefined : Number(values.seed),
    onProgress: (p) => {
      if (p.phase === 'train' && p.step !== undefined && p.steps !== undefined) {
        bar ??= new ProgressBar('pretrain', p.steps);
        bar.update(p.step, `loss ${p.loss?.toFixed(3)}`);
      } else if (p.phase === 'eval') console.error(`\nstep ${p.step}: held-out loss ${p.evalLoss?.toFixed(4)} (perplexity ${Math.exp(p.evalLoss ?? NaN).toFixed(2)})`);
      else if (p.message) console.error(p.message);
    },
  });
  if (values.json) console.log(JSON.stringify({ out: values.out, params: result.params, evalLoss: result.evalLoss, evalPerplexity: result.evalPerplexity, seconds: result.seconds, config: result.config }));
  else console.log(`wrote ${values.out}: ${result.params.toLocaleString('en')} parameters, held-out perplexity ${result.evalPerplexity.toFixed(2)} after ${result.curve.length} steps (${(result.seconds / 60).toFixed(1)} min)`);
  return 0;
}
