// End to end: the built renderer in Debian's Chromium against `afd serve` (startServer) on
// a temporary database, the embedded GPT-2 for generation, and the pipeline's quick recipe.
// One session walks through the views in order (each test builds on the one before) and
// saves a 1280x800 screenshot of each (AFD_SCREENSHOTS=docs/screenshots to keep them).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO, VIEWPORT, chromiumSkip, collectPageErrors, screenshot } from '../support/browser.ts';
import { startStudio } from '../support/studio-server.ts';

describe('a studio session in Chromium', { skip: chromiumSkip('end-to-end studio tests') }, async () => {
  const { tmp, browser, server } = await startStudio('e2e');
  const origin = new URL(server.url).origin;

  const page = await browser.newPage({ viewport: VIEWPORT });
  const errors = collectPageErrors(page);
  // Every request the page makes, to check that nothing leaves the local server.
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));
  page.setDefaultTimeout(60_000);

  test('the API refuses requests without the token', async () => {
    const res = await fetch(`${origin}/api/datasets.list`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 401);
    assert.equal((await fetch(`${origin}/api/events`)).status, 401);
    assert.equal((await fetch(`${origin}/api/status`, { method: 'POST', headers: { Authorization: 'Bearer wrong' }, body: '{}' })).status, 401);
  });

  test('the page opens with the printed address, hides the token and cannot reach Node', async () => {
    await page.goto(server.url);
    await page.getByTestId('device-status').locator('strong', { hasText: /threads|CUDA|WebGPU/ }).waitFor();
    assert.equal(new URL(page.url()).search, '', 'the token is removed from the visible URL');
    const reach = await page.evaluate(() => ({ require: typeof (globalThis as { require?: unknown }).require, process: typeof (globalThis as { process?: unknown }).process, module: typeof (globalThis as { module?: unknown }).module }));
    assert.deepEqual(reach, { require: 'undefined', process: 'undefined', module: 'undefined' });
    // A reload keeps working: the token is in sessionStorage.
    await page.reload();
    await page.getByText('No datasets yet.').waitFor();
  });

  test('datasets: import a JSONL file with progress, browse, edit with history, statistics', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `How do I water plant number ${i}?`, response: `Give plant ${i} ${'a little '.repeat(i % 7)}water every ${(i % 5) + 1} days.` }));
    const file = tmp.file('garden.jsonl', `${lines.join('\n')}\n`);
    await page.getByTestId('import-file').setInputFiles(file);
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.locator('[data-testid=run-progress][data-status=done]').waitFor();
    const row = page.getByTestId('datasets-table').locator('tbody tr', { hasText: '1-garden' });
    await row.waitFor();
    assert.match(await row.innerText(), /40/);
    await row.click();
    await page.getByTestId('examples-table').locator('tbody tr').first().waitFor();
    assert.equal(await page.getByTestId('examples-table').locator('tbody tr').count(), 20);

    await page.getByTestId('example-search').fill('plant number 7?');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=examples-table] tbody tr').length === 1);
    await page.getByTestId('examples-table').locator('tbody tr').first().click();
    const editor = page.getByRole('form', { name: /Edit example/ });
    await editor.getByLabel('Response').fill('Water plant 7 twice a week.');
    await editor.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('edit-history').getByText('Water plant 7 twice a week.').waitFor();
    await editor.getByRole('button', { name: 'Close' }).click();
    await page.getByTestId('example-search').fill('');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=examples-table] tbody tr').length === 20);
    await screenshot(page, 'datasets');

    await page.getByRole('tab', { name: 'Statistics' }).click();
    await page.getByTestId('histogram').locator('rect.bar').first().waitFor();
    assert.match(await page.getByTestId('dataset-stats').innerText(), /Examples\s+40/);
  });

  test('models: import a Hugging Face folder; the list shows it; a prompt streams', async () => {
    await page.keyboard.press('Alt+2');
    await page.getByTestId('model-dir').fill(join(REPO, 'models/default'));
    await page.getByRole('form', { name: 'Import a model' }).getByPlaceholder('from the folder').fill('gpt2-copy');
    await page.getByRole('form', { name: 'Import a model' }).getByRole('button', { name: 'Import' }).click();
    await page.getByTestId('models-table').getByText('gpt2-copy').waitFor();
    assert.ok(await page.getByTestId('models-table').locator('tbody tr').count() >= 2);

    await page.getByTestId('models-table').locator('tbody tr', { hasText: 'gpt2-copy' }).click();
    await page.getByRole('form', { name: /Try a prompt on gpt2-copy/ }).getByLabel('Max tokens').fill('12');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByText(/tokens · finished: (eos|length|stop)/).waitFor();
    assert.ok((await page.getByTestId('try-output').innerText()).length > 0);
  });

  test('compare: two models side by side, then blind votes update the tally', async () => {
    await page.keyboard.press('Alt+4');
    await page.getByTestId('compare-prompts').fill('How do I make tea?\nWhat should I plant in spring?');
    await page.getByLabel('Max tokens').fill('10');
    await page.getByRole('button', { name: 'Generate side by side' }).click();
    await page.waitForFunction(() => {
      const cells = document.querySelectorAll('[data-testid=side-by-side] .response');
      return cells.length === 4 && [...cells].every((c) => c.getAttribute('data-done') === 'true');
    });
    await page.getByTestId('blind-pair').waitFor();
    assert.equal(await page.getByTestId('tally').locator('td.num').first().innerText(), '0');
    await page.locator('body').press('a');
    await page.getByTestId('reveal').waitFor();
    const wins = async (): Promise<number> => Number(await page.getByTestId('tally-a').innerText()) + Number(await page.getByTestId('tally-b').innerText());
    assert.equal(await wins(), 1);
    await page.getByTestId('tally').scrollIntoViewIfNeeded();
    await screenshot(page, 'compare');
    await page.locator('body').press('t');
    await page.waitForFunction(() => document.querySelector('[data-testid=tally-ties]')?.textContent === '1');
    assert.match(await page.getByTestId('win-rate').innerText(), /% \(95% CI/);
  });

  test('experiments: the quick recipe runs to the end with progress, curves and logs', async () => {
    await page.keyboard.press('Alt+3');
    const recipe = page.locator('[data-testid=recipe][data-recipe=quick]');
    await recipe.getByRole('button', { name: 'Run now' }).click();
    await page.getByTestId('experiment-detail').waitFor();
    // A stage running shows its progress bar on the way.
    await page.locator('[data-testid=stages-table] tr[data-state=running], [data-testid=experiment-detail][data-state=done]').first().waitFor();
    await page.locator('[data-testid=experiment-detail][data-state=done]').waitFor({ timeout: 150_000 });
    assert.ok(await page.locator('path.line').count() >= 1, 'a loss curve is drawn');
    assert.ok((await page.getByTestId('log-panel').innerText()).length > 0);
    await screenshot(page, 'experiments');
  });

  test('results: the evaluation table of the experiment; models: the trained models in their lineage', async () => {
    await page.getByRole('button', { name: 'Results' }).click();
    await page.getByRole('heading', { name: 'Results' }).waitFor();
    await page.getByTestId('results-table').waitFor();
    assert.ok(await page.getByTestId('results-table').locator('tbody tr').count() >= 2, 'a row for SFT and for each N of Best-of-N');
    await screenshot(page, 'results');
    await page.keyboard.press('Alt+2');
    for (const name of ['quick/sft', 'quick/rm-sft-vs-init']) await page.getByTestId('models-table').getByText(name).waitFor();
    await screenshot(page, 'models');
    await page.keyboard.press('Alt+6');
    await page.getByRole('heading', { name: 'Settings and status' }).waitFor();
    await screenshot(page, 'settings');
  });

  test('the whole session made requests to the local server only, without page errors', () => {
    assert.ok(requested.length > 10);
    const foreign = requested.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
  });
});
