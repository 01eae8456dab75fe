// Pretraining pi_0, the studio's embedded default model (DESIGN.md §3): a byte-level BPE
// tokenizer learned on the corpus, then a small GPT-2 trained on the transcripts (chosen
// AND rejected) of the HH microcosm's train prompts, so that it imitates the unfiltered
// mix of helpful and harmful replies. Held-out perplexity is measured on the transcripts
// of the evaluation prompts.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { gpt2Defaults, gpt2Family, gpt2Init, gpt2NextTokenLoss, type Gpt2Config } from '../../native-models/models/gpt2.ts';
import { adamw } from '../../native-models/optim/adamw.ts';
import { learningRate, type Schedule } from '../../native-models/optim/schedule.ts';
import { trainBpe, writeTokenizerFolder } from '../../native-models/tokenizer/bpe-trainer.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { LossEvaluator } from '../../native-models/train/evaluator.ts';
import { TokenStream } from '../../native-models/train/lm-data.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { buildTrainStep } from '../../native-models/train/step.ts';
import { Trainer } from '../../native-models/train/trainer.ts';
import { HH_HARMLESS_FILE, loadHhMicrocosm, transcripts } from '../datasets/hh.ts';

/** Renders chat messages in the HH transcript format the model is trained on. */
export const HH_CHAT_TEMPLATE =
  "{% for m in messages %}{% if m['role'] == 'user' %}{{ '\n\nHuman: ' + m['content'] }}{% else %}{{ '\n\nAssistant: ' + m['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '\n\nAssistant:' }}{% endif %}";

export interface PretrainOptions {
  out: string;
  data?: string;
  vocabSize?: number;
  model?: Partial<Omit<Gpt2Config, 'vocabSize'>>;
  steps?: number;
  batch?: number;
  seq?: number;
  lr?: number;
  warmupSteps?: number;
  evalEvery?: number;
  /** Evaluation windows per evaluation (default: the whole held-out stream). */
  evalBatches?: number;
  seed?: number;
  threads?: number;
  provider?: 'cpu' | 'webgpu' | 'cuda';
  onProgress?: (p: { phase: 'tokenizer' | 'train' | 'eval' | 'export'; step?: number; steps?: number; loss?: number; evalLoss?: number; message?: string }) => void;
}

export interface CurvePoint { step: number; loss: number; lr: number; evalLoss?: number }

export interface PretrainResult {
  config: Gpt2Config;
  params: number;
  trainTokens: number;
  evalTokens: number;
  curve: CurvePoint[];
  evalLoss: number;
  evalPerplexity: number;
  seconds: number;
  options: Omit<PretrainOptions, 'onProgress' | 'out'>;
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const t0 = performance.now();
  const opts = {
    data: o.data ?? HH_HARMLESS_FILE, vocabSize: o.vocabSize ?? 4096, steps: o.steps ?? 1500, batch: o.batch ?? 8, seq: o.seq ?? 512,
    lr: o.lr ?? 1e-3, warmupSteps: o.warmupSteps ?? 100, evalEvery: o.evalEvery ?? 250, evalBatches: o.evalBatches, seed: o.seed ?? 0,
    threads: o.threads, provider: o.provider ?? 'cpu', model: o.model ?? {},
  };
  const say = o.onProgress ?? (() => {});
  const hh = await loadHhMicrocosm(opts.data);
  const trainTexts = transcripts(hh.train), evalTexts = transcripts(hh.eval);

  say({ phase: 'tokenizer', message: `learning a ${opts.vocabSize}-token byte-level BPE on ${trainTexts.length} transcripts` });
  const bpe = trainBpe(trainTexts, { vocabSize: opts.vocabSize, specialTokens: ['<|endoftext|>'] });
  const tokenizerDir = await mkdtemp(join(tmpdir(), 'afd-tokenizer-'));
  try {
    await writeTokenizerFolder(tokenizerDir, bpe, { modelMaxLength: opts.model.nPositions ?? opts.seq, chatTemplate: HH_CHAT_TEMPLATE });
    const tokenizer = await Tokenizer.fromFolder(tokenizerDir);
    const eos = tokenizer.eosTokenId;
    if (eos === undefined) throw new Error('the trained tokenizer has no end-of-text token');
    const encode = (texts: string[]) => texts.map((t) => tokenizer.encode(t, { addSpecialTokens: false }));
    const trainStream = new TokenStream(encode(trainTexts), eos);
    const evalStream = new TokenStream(encode(evalTexts), eos);

    const config = gpt2Defaults({ nPositions: opts.seq, nEmbd: 256, nLayer: 4, nHead: 4, ...opts.model, vocabSize: bpe.vocabSize });
    const { loss, params } = gpt2NextTokenLoss(config);
    const graphs = buildTrainStep({ loss, trainable: [...params.values()], optimizer: adamw({ beta2: 0.95, weightDecay: 0.1 }), clipNorm: 1 });
    const trainer = await Trainer.create(graphs, gpt2Init(config, new Rng(opts.seed)), { provider: opts.provider, threads: opts.threads, seed: opts.seed + 1 });
    const evaluator = await LossEvaluator.create(loss, [...params.values()], { provider: opts.provider, intraOpThreads: opts.threads });
    const schedule: Schedule = { kind: 'cosine', lr: opts.lr, warmupSteps: opts.warmupSteps, totalSteps: opts.steps, minLr: opts.lr / 10 };
    const evaluate = async () => {
      const all = [...evalStream.sequentialBatches(opts.batch, opts.seq)];
      return evaluator.mean(opts.evalBatches ? all.slice(0, opts.evalBatches) : all, trainer.state);
    };

    const curve: CurvePoint[] = [];
    for (let step = 0; step < opts.steps; step++) {
      const lr = learningRate(schedule, step);
      const r = await trainer.step(trainStream.randomBatch(opts.batch, opts.seq, trainer.rng), lr);
      const point: CurvePoint = { step: r.step, loss: r.loss, lr };
      if (r.step % opts.evalEvery === 0 || r.step === opts.steps) {
        point.evalLoss = await evaluate();
        say({ phase: 'eval', step: r.step, steps: opts.steps, loss: r.loss, evalLoss: point.evalLoss });
      }
      curve.push(point);
      say({ phase: 'train', step: r.step, steps: opts.steps, loss: r.loss });
    }
    const evalLoss = curve[curve.length - 1].evalLoss!;
    say({ phase: 'export', message: `writing ${o.out}` });
    const weights = trainer.parameters();
    await exportHfModel(o.out, {
      family: gpt2Family, config, weights, tokenizerFrom: tokenizerDir, dtype: 'F16',
      generationConfig: { eos_token_id: eos, bos_token_id: eos, pad_token_id: eos, max_new_tokens: 128, do_sample: true, temperature: 1.0, top_p: 1.0 },
      baseConfig: { bos_token_id: eos, eos_token_id: eos },
    });
    await trainer.release();
    await evaluator.release();
    const { onProgress: _p, out: _o, ...recorded } = o;
    const result: PretrainResult = {
      config, params: [...weights.values()].reduce((s, w) => s + w.length, 0), trainTokens: trainStream.length, evalTokens: evalStream.length,
      curve, evalLoss, evalPerplexity: Math.exp(evalLoss), seconds: (performance.now() - t0) / 1000, options: { ...recorded, ...opts },
    };
    await writeFile(join(o.out, 'training.json'), `${JSON.stringify(result, null, 1)}\n`);
    return result;
  } finally {
    await rm(tokenizerDir, { recursive: true, force: true });
  }
}
