// Writes docs/default-model.md and docs/default-model-curve.svg from
// models/default/training.json (written by `afd pretrain`).
import { readFileSync, writeFileSync } from 'node:fs';
import type { PretrainResult } from '../main/stages/pretrain.ts';
import { linePlotSvg } from '../main/report/svg-plot.ts';

const r = JSON.parse(readFileSync('models/default/training.json', 'utf8')) as PretrainResult;
const evals = r.curve.filter((p) => p.evalLoss !== undefined);
// Training loss is noisy step to step: plot a 20-step running mean.
const smooth = r.curve.map((p, i) => {
  const w = r.curve.slice(Math.max(0, i - 19), i + 1);
  return { x: p.step, y: w.reduce((s, q) => s + q.loss, 0) / w.length };
});
writeFileSync('docs/default-model-curve.svg', linePlotSvg(
  [{ name: 'train (20-step mean)', points: smooth }, { name: 'held-out', points: evals.map((p) => ({ x: p.step, y: p.evalLoss! })) }],
  { title: 'Default model: pretraining loss (nats per token)', xLabel: 'step', yLabel: 'cross-entropy' },
) + '\n');
const c = r.config;
const md = `# The embedded default model (pi_0)

\`models/default/\` is a Hugging Face folder (GPT-2 architecture, safetensors in float16,
byte-level BPE \`tokenizer.json\`, HH chat template) built by \`afd pretrain\` from the
HH-RLHF harmless-base data shipped in \`data/hh-rlhf/\` (Bai et al. 2022, MIT; see its
README). It is pi_0 of the HH-Harmless reproduction: it was trained on the full
transcripts, chosen **and** rejected, of the train prompts (80% by a stable hash of the
prompt), so it imitates the unfiltered mix of helpful and harmful replies. The evaluation
prompts' transcripts were never trained on; they give the held-out perplexity below.

Rebuild it (about ${Math.round(r.seconds / 60)} minutes on this 2-core machine) with \`scripts/build-default-model.sh\`.

| | |
| --- | --- |
| architecture | GPT-2, ${c.nLayer} layers, width ${c.nEmbd}, ${c.nHead} heads, context ${c.nPositions} |
| vocabulary | ${c.vocabSize} byte-level BPE tokens learned on the train transcripts |
| parameters | ${r.params.toLocaleString('en')} |
| training tokens | ${r.trainTokens.toLocaleString('en')} (train transcripts), ${r.curve.length} steps of ${r.options.batch} x ${r.options.seq} tokens, AdamW, cosine schedule from ${r.options.lr} |
| held-out tokens | ${r.evalTokens.toLocaleString('en')} (evaluation transcripts) |
| **held-out loss** | **${r.evalLoss.toFixed(4)} nats/token, perplexity ${r.evalPerplexity.toFixed(2)}** (float32 weights, before the float16 export) |
| wall time | ${(r.seconds / 60).toFixed(1)} min |

![training curve](default-model-curve.svg)

| step | train loss | held-out loss | held-out perplexity |
| ---: | ---: | ---: | ---: |
${evals.map((p) => `| ${p.step} | ${p.loss.toFixed(3)} | ${p.evalLoss!.toFixed(4)} | ${Math.exp(p.evalLoss!).toFixed(2)} |`).join('\n')}
`;
writeFileSync('docs/default-model.md', md);
console.log('wrote docs/default-model.md and docs/default-model-curve.svg');
