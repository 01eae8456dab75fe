import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Generator } from '../../../native-models/generate/generator.ts';
import { demonstrations, type Demonstrations } from '../data.ts';
import { encodePair, loadModel } from '../lm.ts';
import { buildToyModel, MARKER, toyDemonstrations } from '../toy.ts';
import { dpoStage } from './dpo.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
// Chosen = the demonstration (ends with the marker); rejected = the same reply without it.
const toy = toyDemonstrations();
const data: Demonstrations = demonstrations(toy.train.map((d) => ({ ...d, rejected: d.response.replace(MARKER, '') })), toy.eval);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-dpo-'));
  await buildToyModel(join(root, 'pi0'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Mean of log pi(chosen) - log pi(rejected) over the train pairs, by an independent scorer (Generator.score). */
async function logpGap(dir: string): Promise<number> {
  const m = await loadModel(dir);
  const g = await Generator.create(m.family, m.config, m.weights, { provider: 'cpu', threads: 1 });
  try {
    const gap = async (which: 'response' | 'rejected'): Promise<number[]> => {
      const rows = data.train.map((d) => encodePair(m, d.prompt, d[which]!, 64));
      return (await g.score(rows.map((r) => r.ids.slice(0, r.start)), rows.map((r) => r.ids.slice(r.start)))).map((s) => s.sum);
    };
    const [c, r] = [await gap('response'), await gap('rejected')];
    return c.reduce((a, x, i) => a + x - r[i], 0) / c.length;
  } finally {
    await g.release();
  }
}

test('dpo parses its defaults (policy sft, reference = policy, beta 0.1) and refuses data without rejected responses', async () => {
  const c = dpoStage.parse({});
  assert.deepEqual([c.policy, c.reference, c.beta], ['sft', 'sft', 0.1]);
  await assert.rejects(
    runStage(dpoStage, { policy: 'pi0' }, { policy: pi0(join(root, 'pi0')), reference: pi0(join(root, 'pi0')) }, { dir: join(root, 'no-rejected'), data: toy }),
    /DPO needs a rejected response for every train prompt, but 96 of 96 have none/,
  );
});

test('DPO starts at loss log 2 when policy = reference, and the chosen-vs-rejected margin grows', async (t) => {
  const gapBefore = await logpGap(join(root, 'pi0'));
  const run = await runStage(dpoStage, { policy: 'pi0', beta: 0.1, epochs: 3, batch: 8, lr: 1e-3, warmup: 0 }, { policy: pi0(join(root, 'pi0')), reference: pi0(join(root, 'pi0')) }, { dir: join(root, 'dpo'), data });
  assert.equal(run.outcome.status, 'done');
  const steps = run.metrics;
  assert.equal(steps.length, 36);
  // Reference log-probs come from the generator's scoring graph, the policy's from the training graph: equal weights, equal numbers.
  assert.ok(Math.abs(steps[0].values.loss - Math.LN2) < 1e-4, `first loss ${steps[0].values.loss}`);
  assert.ok(Math.abs(steps[0].values.margin) < 1e-3, `first margin ${steps[0].values.margin}`);
  const late = steps.slice(-6).map((s) => s.values);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  t.diagnostic(`loss ${steps[0].values.loss.toFixed(4)} -> ${mean(late.map((v) => v.loss)).toFixed(4)}; margin ${steps[0].values.margin.toFixed(3)} -> ${mean(late.map((v) => v.margin)).toFixed(3)}; accuracy -> ${mean(late.map((v) => v.accuracy)).toFixed(2)}`);
  assert.ok(mean(late.map((v) => v.margin)) > 2, 'the margin grows');
  assert.ok(mean(late.map((v) => v.loss)) < 0.6, 'the loss falls below log 2');
  // The saved model prefers the chosen responses more than pi_0 did, by the same margin.
  const gapAfter = await logpGap(join(root, 'dpo', 'model'));
  t.diagnostic(`log pi(chosen) - log pi(rejected): ${gapBefore.toFixed(3)} -> ${gapAfter.toFixed(3)}`);
  assert.ok(gapAfter > gapBefore + 2, `gap ${gapBefore} -> ${gapAfter}`);
});
