// Component tests: the built renderer in Chromium against a fake studio (fake-bridge.js,
// installed as Electron's window.afd would be), checking what each view shows and does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { VIEWPORT, buildRenderer, chromiumSkip, collectPageErrors, launchChromium, serveDir } from '../../test/support/browser.ts';
import { STATUS, dataset, example, model, type Fixture } from './fixture.ts';

const FAKE = readFileSync(new URL('./fake-bridge.js', import.meta.url), 'utf8');
describe('the views in Chromium against a fake studio', { skip: chromiumSkip('renderer component tests') }, async () => {
  const [dir, browser] = await Promise.all([buildRenderer(), launchChromium()]);
  const server = await serveDir(dir);
  const origin = server.origin;
  after(() => server.close());

  /** A page of the app on `view` with the fake studio holding `fixture`. */
  async function open(view: string, fixture: Omit<Fixture, 'status'> & { status?: Fixture['status'] }): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = collectPageErrors(page);
    await page.addInitScript(`window.__afdFixture = ${JSON.stringify({ status: STATUS, ...fixture })};\n${FAKE}`);
    await page.goto(`${origin}/#/${view}`);
    await page.getByTestId('device-status').waitFor();
    return { page, errors };
  }

  const calls = (page: Page): Promise<{ method: string; params: Record<string, unknown> }[]> => page.evaluate(() => (window as unknown as { __afd: { calls: { method: string; params: Record<string, unknown> }[] } }).__afd.calls);
  const emit = (page: Page, event: unknown): Promise<void> => page.evaluate((e) => (window as unknown as { __afd: { emit(e: unknown): void } }).__afd.emit(e), event);

  test('datasets: the empty state says to import a file', async () => {
    const { page, errors } = await open('datasets', { datasets: [] });
    await page.getByText('No datasets yet.').waitFor();
    assert.match(await page.getByTestId('empty-state').innerText(), /Import a JSON Lines or CSV file/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('datasets: a table row per dataset, examples of the chosen one, its histogram', async () => {
    const examples = Array.from({ length: 5 }, (_, i) => example(i + 1, 2, `prompt ${i + 1}`, `response ${i + 1}`));
    const { page, errors } = await open('datasets', {
      datasets: [dataset(1, 'alpha', 3), dataset(2, 'beta', 5), dataset(3, 'gamma', 7)],
      examples,
      stats: { 2: { datasetId: 2, examples: 5, train: 4, eval: 1, withResponse: 5, withPair: 0, promptLength: { mean: 8, median: 8, min: 8, max: 8 }, responseLength: { mean: 10, median: 10, min: 10, max: 10 }, responseHistogram: { edges: [0, 5, 10, 15], counts: [1, 3, 1] }, tags: [] } },
    });
    const rows = page.getByTestId('datasets-table').locator('tbody tr');
    await rows.nth(2).waitFor();
    assert.equal(await rows.count(), 3);
    assert.deepEqual(await rows.locator('td:first-child').allInnerTexts(), ['alpha', 'beta', 'gamma']);

    // Keyboard: focus the second row and open it with Enter.
    await rows.nth(1).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'beta' }).waitFor();
    const exampleRows = page.getByTestId('examples-table').locator('tbody tr');
    await exampleRows.nth(4).waitFor();
    assert.equal(await exampleRows.count(), 5);

    await page.getByTestId('example-search').fill('prompt 3');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=examples-table] tbody tr').length === 1);
    await page.getByTestId('example-search').fill('nothing like this');
    await page.getByText('No example contains "nothing like this".').waitFor();

    await page.getByRole('tab', { name: 'Statistics' }).click();
    await page.getByTestId('histogram').waitFor();
    assert.equal(await page.getByTestId('histogram').locator('rect.bar').count(), 3);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('datasets: a failing import shows its sentence in the import form', async () => {
    const { page } = await open('datasets', { datasets: [], fail: { 'datasets.importText': 'The file has no "prompt" column; add one.' } });
    await page.getByTestId('import-file').setInputFiles({ name: 'demos.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"x":1}\n') });
    assert.equal(await page.getByTestId('import-name').inputValue(), 'demos');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const alert = page.getByRole('form', { name: 'Import a dataset' }).getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /no "prompt" column/);
    await page.close();
  });

  test("datasets: chat lines are rendered with the chosen model's chat template, the embedded model by default", async () => {
    const { page, errors } = await open('datasets', { datasets: [], models: [model(1, 'default'), model(2, 'my-llama')] });
    const chooseFile = (name: string) => page.getByTestId('import-file').setInputFiles({ name, mimeType: 'application/jsonl', buffer: Buffer.from('{"messages":[]}\n') });
    const select = page.getByTestId('import-chat-model');
    await select.waitFor();
    assert.equal(await select.inputValue(), '1');
    await chooseFile('chats.jsonl');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    // The import reads the file before it calls the studio: change the model only once it has.
    await page.waitForFunction(() => (window as unknown as { __afd: { calls: { method: string }[] } }).__afd.calls.some((c) => c.method === 'datasets.importText'));
    await select.selectOption({ label: 'my-llama' });
    await page.getByTestId('import-name').fill('chats-llama');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.waitForFunction(() => (window as unknown as { __afd: { calls: { method: string }[] } }).__afd.calls.filter((c) => c.method === 'datasets.importText').length === 2);
    const imports = (await calls(page)).filter((c) => c.method === 'datasets.importText');
    assert.deepEqual(imports.map((c) => c.params.chatModelId), [1, 2]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('compare: blind votes by keyboard update the tally; the keys are on screen', async () => {
    const pairs = Array.from({ length: 3 }, (_, i) => ({ pairId: `p${i}`, prompt: `question ${i}`, a: `left answer ${i}`, b: `right answer ${i}` }));
    const { page, errors } = await open('compare', { models: [model(1, 'default'), model(2, 'sft', 1, 'sft')], pairs });
    await page.getByTestId('blind-pair').waitFor();
    assert.match(await page.getByTestId('blind-pair').innerText(), /A left better.*B right better.*T tie.*S skip/s);
    assert.equal(await page.getByTestId('tally-a').innerText(), '0');
    assert.match(await page.getByTestId('win-rate').innerText(), /no votes yet/);

    await page.locator('body').press('a');
    await page.waitForFunction(() => document.querySelector('[data-testid=tally-a]')?.textContent === '1');
    assert.match(await page.getByTestId('blind-pair').innerText(), /question 1/);
    assert.match(await page.getByTestId('win-rate').innerText(), /^100% \(95% CI 21%–100%\)$/);
    await page.locator('body').press('t');
    await page.waitForFunction(() => document.querySelector('[data-testid=tally-ties]')?.textContent === '1');
    assert.match(await page.getByTestId('win-rate').innerText(), /^75%/);
    await page.getByRole('button', { name: /skip/ }).click();
    await page.getByText('No pairs left to judge for these two sides.').waitFor();
    assert.deepEqual((await calls(page)).filter((c) => c.method === 'compare.vote').map((c) => c.params.vote), ['A', 'tie', 'skip']);
    assert.match(await page.getByTestId('reveal').innerText(), /left was sft, right was default/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('compare: each pane shows its phase until its tokens come, Stop ends every unfinished one, the status bar counts generations and jobs', async () => {
    // Newest first, as the studio lists them; the two newest are chosen, and shown in lineage order.
    const { page, errors } = await open('compare', { models: [model(3, 'smollm2-sft', 2, 'sft'), model(2, 'smollm2'), model(1, 'default')] });
    const footer = page.getByTestId('activity');
    await footer.getByText('idle').waitFor();
    assert.deepEqual((await page.getByRole('form', { name: 'Side-by-side generation' }).locator('label.inline').allInnerTexts()).map((x) => x.trim()), ['default', 'smollm2', 'smollm2-sft']);
    await page.getByRole('button', { name: 'Generate side by side' }).click();
    await page.getByTestId('side-by-side').waitFor();
    assert.deepEqual((await calls(page)).find((c) => c.method === 'compare.start')?.params.columns, [{ modelId: 2 }, { modelId: 3 }], 'the base model before its SFT');
    assert.deepEqual(await page.locator('[data-testid=side-by-side] .response .name').allInnerTexts(), ['smollm2', 'smollm2-sft', 'smollm2', 'smollm2-sft']);
    const pane = (modelId: number, prompt: number) => page.locator(`[data-testid=side-by-side] .response[data-column="${modelId}"]`).nth(prompt);
    await pane(2, 0).getByText('Starting').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isEnabled(), true);

    // The studio counts the streams; the bar refreshes when one is queued.
    await page.evaluate(() => Object.assign((window as unknown as { __afdFixture: { status: object } }).__afdFixture.status, { runningGenerations: 4, runningRuns: [7] }));
    for (const id of ['m2p0', 'm2p1', 'm3p0', 'm3p1']) await emit(page, { type: 'generation.phase', streamId: id, phase: 'queued', done: 0, total: null, etaMs: null });
    await footer.getByText('4 generations · 1 job running').waitFor();
    assert.match(await pane(3, 0).innerText(), /Waiting for another model to load/);

    await emit(page, { type: 'generation.phase', streamId: 'm2p0', phase: 'loading', done: 269e6, total: 538e6, etaMs: 4000 });
    await pane(2, 0).getByText(/Reading the model: 269 MB of 538 MB · 50% · [34] s left/).waitFor();
    assert.equal(await pane(2, 0).getByRole('progressbar').getAttribute('aria-valuenow'), '50');
    await emit(page, { type: 'generation.phase', streamId: 'm2p0', phase: 'preparing', done: 0, total: null, etaMs: 6000 });
    await pane(2, 0).getByText(/Preparing the model \(building its ONNX Runtime session\).*s left/).waitFor();
    await emit(page, { type: 'generation.phase', streamId: 'm2p0', phase: 'generating', done: 0, total: 48, etaMs: null });
    await pane(2, 0).getByText('Generating: reading the prompt').waitFor();
    await emit(page, { type: 'generation.token', streamId: 'm2p0', index: 0, text: 'Boil ' });
    await pane(2, 0).getByText(/1 of at most 48 tokens/).waitFor();
    assert.match(await pane(2, 0).locator('pre').innerText(), /^Boil /);

    await page.getByRole('button', { name: 'Stop' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=side-by-side] .response')].every((c) => c.getAttribute('data-done') === 'true'));
    const cancelled = (await calls(page)).filter((c) => c.method === 'generation.cancel').map((c) => c.params.streamId).sort();
    assert.deepEqual(cancelled, ['m2p0', 'm2p1', 'm3p0', 'm3p1']);
    assert.equal(await page.getByText('Stopped.').count(), 4);
    assert.equal(await page.getByTestId('generation-phase').count(), 0);

    await page.evaluate(() => Object.assign((window as unknown as { __afdFixture: { status: object } }).__afdFixture.status, { runningGenerations: 0, runningRuns: [] }));
    await emit(page, { type: 'generation.done', streamId: 'm2p0', text: '', tokens: 0, finishReason: 'cancelled', error: null, generationId: null });
    await footer.getByText('idle').waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("compare: a Best-of-N column beside a plain one counts its samples, then their scoring, then shows the pick's reward and the other samples by reward; it is a side to vote on", async () => {
    // The reward model is not chosen as a plain column; it is the Best-of-N form's reward model.
    const { page, errors } = await open('compare', { models: [model(4, 'rm', 3, 'reward'), model(3, 'smollm2-sft', 2, 'sft'), model(2, 'smollm2')] });
    const form = page.getByRole('form', { name: 'Side-by-side generation' });
    await form.getByTestId('best-of-reward-model').waitFor();
    assert.deepEqual(await form.locator('label.inline input:checked').evaluateAll((xs) => xs.map((x) => (x as HTMLInputElement).value)), ['2', '3']);
    assert.deepEqual(await form.getByTestId('best-of-reward-model').locator('option').allInnerTexts(), ['rm'], 'only reward models score');
    assert.deepEqual(await form.locator('label.inline').allInnerTexts(), ['smollm2', 'smollm2-sft'], 'a reward model writes no answers: it is no column of its own');
    assert.deepEqual(await form.getByTestId('best-of-model').locator('option').allInnerTexts(), ['smollm2', 'smollm2-sft']);
    await form.getByRole('checkbox', { name: 'smollm2-sft' }).uncheck();
    await form.getByTestId('best-of-model').selectOption({ label: 'smollm2-sft' });
    await form.getByTestId('best-of-n').fill('1');
    await form.getByRole('button', { name: 'Add column' }).click();
    await form.getByRole('alert').getByText('N must be a whole number from 2 to 64.').waitFor();
    await form.getByTestId('best-of-n').fill('4');
    await form.getByRole('button', { name: 'Add column' }).click();
    assert.deepEqual(await form.getByTestId('best-of-column').locator('span').allInnerTexts(), ['smollm2-sft, best of 4 by rm']);
    assert.equal(await form.getByRole('button', { name: 'Remove smollm2-sft, best of 4 by rm' }).count(), 1);

    await form.getByTestId('compare-prompts').fill('How do I make tea?');
    await page.getByRole('button', { name: 'Generate side by side' }).click();
    await page.getByTestId('side-by-side').waitFor();
    assert.deepEqual((await calls(page)).find((c) => c.method === 'compare.start')?.params.columns, [{ modelId: 2 }, { modelId: 3, bestOf: { rewardModelId: 4, n: 4 } }]);
    assert.deepEqual(await page.locator('[data-testid=side-by-side] .response .name').allInnerTexts(), ['smollm2', 'smollm2-sft, best of 4 by rm']);
    const pane = page.locator('[data-testid=side-by-side] .response[data-column="3:best-of-4:4"]');

    await emit(page, { type: 'generation.phase', streamId: 'm3b4p0', phase: 'sampling', done: 1, total: 4, etaMs: null });
    await pane.getByText(/^Best-of-4: 1 of 4 samples drawn/).waitFor();
    assert.equal(await pane.getByRole('progressbar').getAttribute('aria-valuenow'), '25');
    await emit(page, { type: 'generation.phase', streamId: 'm3b4p0', phase: 'scoring', done: 0, total: 4, etaMs: null });
    await pane.getByText(/^Scoring 4 samples with the reward model: 0 done/).waitFor();

    const candidates = [['Boil water.', 0.5], ['Boil water, steep the tea 3 minutes.', 2.25], ['Tea.', -1], ['Use a kettle.', 1]].map(([text, reward]) => ({ text, tokens: 4, finishReason: 'eos', reward }));
    await emit(page, { type: 'generation.done', streamId: 'm3b4p0', text: candidates[1].text, tokens: 4, finishReason: 'eos', error: null, generationId: 9, bestOf: { rewardModelId: 4, n: 4, chosen: 1, candidates } });
    await emit(page, { type: 'generation.done', streamId: 'm2p0', text: 'Boil.', tokens: 2, finishReason: 'eos', error: null, generationId: 8 });
    await pane.getByTestId('best-of-reward').getByText('Reward 2.25: the highest of 4 samples.').waitFor();
    assert.equal(await pane.locator(':scope > pre').innerText(), 'Boil water, steep the tea 3 minutes.');
    const others = pane.getByTestId('best-of-candidates');
    assert.equal(await others.locator('li').first().isVisible(), false, 'folded until asked for');
    await others.getByText('The other 3 samples, by reward').click();
    assert.deepEqual(await others.locator('li .reward').allInnerTexts(), ['1.00', '0.500', '−1.00']);
    assert.deepEqual(await others.locator('li pre').allInnerTexts(), ['Use a kettle.', 'Boil water.', 'Tea.']);

    // Once the comparison is done, the blind vote sets the two columns against each other.
    await page.waitForFunction(() => (window as unknown as { __afd: { calls: { method: string; params: { bestOfB?: unknown } }[] } }).__afd.calls.some((c) => c.method === 'compare.nextPair' && c.params.bestOfB !== undefined));
    assert.deepEqual((await calls(page)).filter((c) => c.method === 'compare.nextPair').at(-1)?.params, { modelA: 2, modelB: 3, bestOfB: { rewardModelId: 4, n: 4 } });
    assert.equal(await page.getByTestId('vote-side-b').locator('option:checked').innerText(), 'smollm2-sft, best of 4 by rm');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('settings: the loaded models with their memory within the budget; release them all; change the budget', async () => {
    const loaded = (modelId: number, name: string, bytes: number, inUse = false, estimated = false, usedMsAgo = 0) => ({ modelId, name, provider: 'cpu', bytes, estimated, loadMs: 7400, lastUsedAt: new Date(Date.now() - usedMsAgo).toISOString(), inUse });
    const { page, errors } = await open('settings', { cache: { budgetBytes: 5.9e9, usedBytes: 3.6e9, models: [loaded(3, 'smollm2/sft', 1.8e9, true, true), loaded(2, 'smollm2', 1.8e9, false, false, 290_000)] } });
    const panel = page.getByTestId('model-cache');
    await panel.getByText('3.6 GB of 5.9 GB in use by 2 models.').waitFor();
    assert.deepEqual(await panel.locator('tbody tr').allInnerTexts(), ['smollm2/sft (generating)\tcpu\t≈ 1.8 GB\t7 s\tjust now', 'smollm2\tcpu\t1.8 GB\t7 s\t5 min ago']);
    assert.equal(await panel.getByTestId('model-cache-budget').inputValue(), '5.9');

    await panel.getByRole('button', { name: 'Release all' }).click();
    await panel.getByText('0 B of 5.9 GB in use by 0 models.').waitFor();
    assert.equal(await panel.getByRole('button', { name: 'Release all' }).isEnabled(), false);
    await panel.getByTestId('model-cache-budget').fill('2.5');
    await panel.getByRole('button', { name: 'Apply' }).click();
    await panel.getByText('0 B of 2.5 GB in use by 0 models.').waitFor();
    assert.deepEqual((await calls(page)).filter((c) => c.method === 'settings.set').map((c) => c.params), [{ modelCacheBytes: 2.5e9 }]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('compare: fewer than two models is an empty state that says what to do', async () => {
    const { page } = await open('compare', { models: [model(1, 'default')] });
    await page.getByText('Comparing needs at least two models.').waitFor();
    await page.close();
  });

  test('experiments: one click on a recipe starts it; progress, time left and a live loss curve follow', async () => {
    const definition = { name: 'quick', seed: 0, model: 'default', data: { source: 'hh-harmless', evalFraction: 0.2 }, stages: [{ id: 'sft', kind: 'sft', epochs: 1 }] };
    const detail = {
      id: 7, name: 'quick', createdAt: '2025-01-01T00:00:00Z', definition,
      progress: { experimentId: 7, stages: [{ id: 'sft', kind: 'sft', runId: 70, state: 'running' as const }] },
      runs: [{ id: 70, experimentId: 7, stage: 'afd-stage', status: 'running' as const, config: {}, seed: 0, provider: 'cpu', createdAt: '2025-01-01T00:00:00Z', startedAt: new Date(Date.now() - 65_000).toISOString(), finishedAt: null, error: null, checkpointPath: null, result: null }],
      memory: { available: 2e9, stages: { sft: { bytes: 2.5e9, phase: 'a training step', parts: [{ name: 'weights', bytes: 1e9, why: 'as read' }, { name: 'activations', bytes: 1.5e9, why: 'counted on the graph' }] } } },
    };
    const { page, errors } = await open('experiments', {
      experiments: [],
      recipes: [{ id: 'paper-recipe', title: "The paper's recipe", summary: 'SFT, reward, Best-of-N.', definition }],
      experimentDetails: { 7: detail },
      startedId: 7,
    });
    await page.getByText('No experiments yet.').waitFor();
    await page.getByTestId('recipe').getByRole('button', { name: 'Run now' }).click();
    await page.getByTestId('experiment-detail').waitFor();
    const start = (await calls(page)).find((c) => c.method === 'experiments.start');
    assert.deepEqual(start?.params, { definition });
    assert.equal(new URL(page.url()).hash, '#/experiments/7');

    // Each stage's estimated peak memory, marked when it is more than is available, its parts in the tooltip.
    const memory = page.getByTestId('stage-memory');
    assert.equal(await memory.textContent(), '2.5 GB');
    assert.equal(await memory.evaluate((e) => e.classList.contains('over')), true);
    assert.equal(await memory.getAttribute('title'), 'Estimated peak: 2.5 GB, during a training step, more than the 2.0 GB available now.\nactivations: 1.5 GB (counted on the graph)\nweights: 1.0 GB (as read)');

    // Before its first step (the model loading, the step being built) the bar counts the time.
    await page.getByTestId('stages-table').getByText(/^Running for 1 min [5-9] s · progress at its next step$/).waitFor();
    await emit(page, { type: 'run.progress', runId: 70, step: 5, total: 20, unit: 'steps', fraction: 0.25, etaMs: 90_000, rate: 1 });
    await page.getByText('5/20 steps · 25% · 1 min 30 s left').waitFor();
    for (const [step, loss] of [[1, 3], [2, 2.5], [3, 2.2]]) await emit(page, { type: 'run.metric', runId: 70, step, values: { loss } });
    await page.waitForFunction(() => (document.querySelector('path.line[data-series=loss]')?.getAttribute('d') ?? '').split('L').length === 3);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('results: a table row per result, one line per reward model, CSV and PNG exports', async () => {
    const ci = (m: number): [number, number] => [m - 0.1, m + 0.1];
    const rows = [
      { method: 'pi0', gold_mean: 0.1, gold_ci95: ci(0.1), win_rate_vs_sft: 0.4, mean_length: 20 },
      { method: 'sft', gold_mean: 0.3, gold_ci95: ci(0.3), win_rate_vs_sft: 0.5, mean_length: 22 },
      ...[1, 2, 4].flatMap((n) => [
        { method: 'bon sft-vs-init', n, gold_mean: 0.3 + 0.05 * n, gold_ci95: ci(0.3 + 0.05 * n), win_rate_vs_sft: 0.5 + 0.02 * n, mean_length: 22 },
        { method: 'bon demo-vs-init', n, gold_mean: 0.3 + 0.01 * n, gold_ci95: ci(0.3 + 0.01 * n), win_rate_vs_sft: 0.5, mean_length: 30 },
      ]),
    ];
    const { page, errors } = await open('results/7', {
      experiments: [{ id: 7, name: 'quick', createdAt: '2025-01-01T00:00:00Z', state: 'done', stages: 6, stagesDone: 6 }],
      results: { 7: { gold_judge_accuracy: 0.71, rows } },
    });
    await page.getByTestId('results-table').waitFor();
    assert.equal(await page.getByTestId('results-table').locator('tbody tr').count(), rows.length);
    assert.equal(await page.locator('path.line').count(), 2);
    assert.equal(await page.locator('path.band').count(), 2);
    assert.equal(await page.locator('line.reference').count(), 2);

    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    assert.equal(csv.suggestedFilename(), 'results-quick.csv');
    const text = readFileSync(await csv.path(), 'utf8').split('\r\n');
    assert.equal(text[0], 'method,n,gold_mean,gold_ci95_lo,gold_ci95_hi,gold_gain_vs_sft,gold_gain_ci95_lo,gold_gain_ci95_hi,win_rate_vs_sft,win_rate_ci95_lo,win_rate_ci95_hi,mean_length,distinct_2,kl_estimate');
    assert.equal(text.length, rows.length + 2);
    assert.equal(await page.getByTestId('results-table').getByText('Gain over shortest, length removed').count(), 0, 'an evaluation without length control keeps the plain table');
    const [png] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export plot as PNG' }).click()]);
    assert.equal(png.suggestedFilename(), 'results-quick.png');
    assert.deepEqual([...readFileSync(await png.path()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('results: an evaluation with length control shows the gain with length removed and the comparison with shortest-of-N', async () => {
    const row = { method: 'bon sft-vs-init', n: 4, gold_mean: 0.5, gold_ci95: [0.4, 0.6] as [number, number], win_rate_vs_sft: 0.6, mean_length: 18, gold_gain_length_adjusted: 0.12, gold_gain_length_adjusted_ci95: [0.02, 0.22] as [number, number], win_rate_vs_shortest: 0.45, win_rate_vs_shortest_ci95: [0.4, 0.5] as [number, number], gain_vs_shortest_length_adjusted: -0.031, gain_vs_shortest_length_adjusted_ci95: [-0.09, 0.03] as [number, number] };
    const { page, errors } = await open('results/7', {
      experiments: [{ id: 7, name: 'quick', createdAt: '2025-01-01T00:00:00Z', state: 'done', stages: 6, stagesDone: 6 }],
      results: { 7: { gold_judge_accuracy: 0.71, rows: [row] } },
    });
    const table = page.getByTestId('results-table');
    await table.waitFor();
    const headers = await table.locator('th').allInnerTexts();
    assert.deepEqual(headers.slice(8, 14), ['Gain, length removed', '95% CI', 'Win rate vs shortest-of-N', '95% CI', 'Gain over shortest, length removed', '95% CI']);
    assert.deepEqual((await table.locator('tbody td').allInnerTexts()).slice(8, 14), ['0.12', '[0.02, 0.22]', '45%', '[40%, 50%]', '-0.031', '[-0.09, 0.03]']);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('results: an experiment without results says when they will appear', async () => {
    const { page } = await open('results', { experiments: [{ id: 3, name: 'running', createdAt: '2025-01-01T00:00:00Z', state: 'running', stages: 6, stagesDone: 2 }] });
    await page.getByText('This experiment has no results yet.').waitFor();
    await page.close();
  });

  test('models: lineage in tree order, and a prompt shows its phase, then streams into the output', async () => {
    const { page, errors } = await open('models', { models: [model(3, 'rm-1', 2, 'reward'), model(2, 'sft-1', 1, 'sft'), model(1, 'default')], generateDelayMs: 400 });
    const names = page.getByTestId('models-table').locator('tbody td:first-child');
    await names.nth(2).waitFor();
    assert.deepEqual((await names.allInnerTexts()).map((s) => s.trim()), ['default', '└ sft-1', '└ rm-1']);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.locator('[data-testid=generation-phase][data-phase=loading]').getByText(/Reading the model: 269 MB of 538 MB/).waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid=try-output]')?.textContent === 'Boil the water.');
    await page.getByText('3 tokens · finished: eos').waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('shell: device in the header, Alt+digit switches views, the theme toggle, keyboard focus is visible', async () => {
    const { page } = await open('datasets', { datasets: [], models: [] });
    assert.match(await page.getByTestId('device-status').innerText(), /CPU · 2 threads.*No GPU: CUDA libraries are not installed/s);
    await page.keyboard.press('Alt+2');
    await page.getByRole('heading', { name: 'Models', exact: true }).waitFor();
    assert.equal(new URL(page.url()).hash, '#/models');
    const themes: string[] = [];
    for (let i = 0; i < 3; i++) {
      await page.getByRole('button', { name: /change theme/ }).click();
      themes.push(await page.evaluate(() => document.documentElement.dataset.theme ?? ''));
    }
    assert.deepEqual(themes.slice(0, 2), ['light', 'dark']);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
    assert.equal(outline, 'solid');
    await page.close();
  });
});
