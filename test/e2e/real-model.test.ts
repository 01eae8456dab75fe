// The studio at real scale (issues 19 and 13): SmolLM2-135M-Instruct imported from its
// GGUF through the Models view, the HH demonstrations imported through the Datasets view
// as chats rendered with SmolLM2's chat template, a short LoRA SFT of SmolLM2 on them as an
// experiment, then SmolLM2 beside its SFT in Compare on HH prompts, the SFT exported as a
// GGUF file and the loaded models in Settings. Every long wait is checked for its progress
// (a bar with the time left, generation phases per pane, a status bar that is not "idle"),
// a second Compare on loaded models is timed to its first tokens, and the screenshots of
// docs/screenshots/*-smollm2.png are taken on the way (AFD_SCREENSHOTS=docs/screenshots).
//
// It takes 5 to 8 minutes on 2 cores (the SFT is most of it), so it runs only when asked
// (AFD_REAL_E2E=1) where the real model and Chromium are (test/support/); otherwise, CI
// included, it is skipped with a notice. The fast studio.test.ts covers the same views
// with the embedded model.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { REPO, VIEWPORT, chromiumSkip, collectPageErrors, screenshot } from '../support/browser.ts';
import { smollm2GgufPath, smollm2Skip } from '../support/real-model.ts';
import { startStudio } from '../support/studio-server.ts';

const TESTS = 'studio with SmolLM2-135M-Instruct';
const slow = process.env.AFD_REAL_E2E === '1' ? false : 'it takes minutes; AFD_REAL_E2E=1 runs it';
if (slow) console.log(`# notice: skipping the ${TESTS}: ${slow}`);
const skip = slow || smollm2Skip(TESTS) || chromiumSkip(TESTS);
if (skip !== false) {
  test(`the ${TESTS}`, { skip }, () => undefined);
} else {
  await realModelSession();
}

/** Demonstrations of the shipped HH split as chats ({messages}), the final Assistant turn of "chosen" as the reply. */
function hhChats(count: number): string {
  const lines = gunzipSync(readFileSync(join(REPO, 'data/hh-rlhf/harmless-base-test.jsonl.gz'))).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  const chats: string[] = [];
  for (const line of lines) {
    const turns = (JSON.parse(line) as { chosen: string }).chosen.split(/\n\n(Human|Assistant): /).slice(1);
    const messages: { role: string; content: string }[] = [];
    for (let i = 0; i + 1 < turns.length; i += 2) messages.push({ role: turns[i] === 'Human' ? 'user' : 'assistant', content: turns[i + 1].trim() });
    const roles = messages.map((m) => m.role);
    // Chats that alternate, start with the user and end with a non-empty reply.
    if (messages.length < 2 || roles.some((r, i) => r !== (i % 2 === 0 ? 'user' : 'assistant')) || roles.at(-1) !== 'assistant' || messages.some((m) => m.content === '')) continue;
    chats.push(JSON.stringify({ messages }));
    if (chats.length === count) break;
  }
  return `${chats.join('\n')}\n`;
}

async function realModelSession(): Promise<void> {
  const { tmp, browser, server } = await startStudio('e2e-real');
  const page = await browser.newPage({ viewport: VIEWPORT });
  const errors = collectPageErrors(page);
  page.setDefaultTimeout(120_000);
  const timings: Record<string, number> = {};
  const since = (t0: number): number => Math.round(performance.now() - t0);
  /** The label of a progress bar that says how long is left, seen before `done` resolves. */
  const timeLeftSeen = async (scope: string, timeout = 120_000): Promise<string> => {
    const label = page.locator(`${scope} .progress span`, { hasText: / left$/ }).first();
    await label.waitFor({ timeout });
    return label.innerText();
  };

  // Two prompts of the HH harmless split (not among the demonstrations trained on below).
  const prompts = ['Is it possible to download a car?', 'Is it okay for me to leave a couple of quarts of oil out of a car engine I serviced?'];

  test('models: the GGUF file imports with a progress bar and time left; the list shows its family, size and source', async (t) => {
    await page.goto(server.url);
    await page.keyboard.press('Alt+2');
    const form = page.getByRole('form', { name: 'Import a model' });
    await page.getByTestId('model-dir').fill(smollm2GgufPath());
    await form.getByPlaceholder('from the folder').fill('smollm2');
    const t0 = performance.now();
    await form.getByRole('button', { name: 'Import' }).click();
    t.diagnostic(`import progress: ${await timeLeftSeen('[data-testid=run-progress]')}`);
    await page.locator('[data-testid=run-progress][data-status=done]').waitFor({ timeout: 300_000 });
    timings.importMs = since(t0);
    const row = page.getByTestId('models-table').locator('tbody tr', { hasText: 'smollm2' });
    await row.waitFor();
    assert.match(await row.innerText(), /smollm2\s+base\s+llama\s+135M\s+GGUF Q4_1/);
  });

  test('datasets: the HH demonstrations import as chats with SmolLM2\'s template', async () => {
    await page.keyboard.press('Alt+1');
    await page.getByTestId('import-file').setInputFiles(tmp.file('hh-chat.jsonl', hhChats(150)));
    await page.getByTestId('import-name').fill('hh-chat');
    await page.getByTestId('import-chat-model').selectOption({ label: 'smollm2' });
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.locator('[data-testid=run-progress][data-status=done]').waitFor();
    const row = page.getByTestId('datasets-table').locator('tbody tr', { hasText: 'hh-chat' });
    await row.waitFor();
    assert.match(await row.innerText(), /150/);
  });

  /** Starts Compare on the checked models and resolves with the ms from the click to the first token of each model's first pane. */
  async function compare(maxTokens: number, during?: () => Promise<void>): Promise<Record<string, number>> {
    await page.getByTestId('compare-prompts').fill(prompts.join('\n'));
    await page.getByLabel('Max tokens').fill(String(maxTokens));
    // A model's first token: the text of its first pane changes from what it showed at the
    // click (the last comparison's answer, or nothing) to a new non-empty text. (Tokens can
    // come before the call that started the streams returns.) A string, not a function:
    // tsx's helpers for named functions do not exist in the page.
    await page.evaluate(`(() => {
      const firsts = {};
      const before = new Map();
      const panes = () => {
        const first = new Map();
        for (const c of document.querySelectorAll('[data-testid=side-by-side] .response')) {
          const model = c.getAttribute('data-model');
          if (!first.has(model)) first.set(model, (c.querySelector('pre')?.textContent ?? '').replace('▍', ''));
        }
        return first;
      };
      for (const [model, text] of panes()) before.set(model, text);
      const t0 = performance.now();
      window.firsts = firsts;
      window.firstsObserver?.disconnect();
      window.firstsObserver = new MutationObserver(() => {
        for (const [model, text] of panes()) {
          if (text !== '' && text !== (before.get(model) ?? '') && !(model in firsts)) firsts[model] = performance.now() - t0;
        }
      });
      window.firstsObserver.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    })()`);
    await page.getByRole('button', { name: 'Generate side by side' }).click();
    await during?.();
    await page.waitForFunction(() => {
      const cells = document.querySelectorAll('[data-testid=side-by-side] .response');
      return cells.length === 4 && [...cells].every((c) => c.getAttribute('data-done') === 'true');
    }, undefined, { timeout: 300_000 });
    return page.evaluate(() => (window as unknown as { firsts: Record<string, number> }).firsts);
  }

  test('compare: SmolLM2 cold shows its phases per pane and a busy status bar; a second compare on the loaded models streams within a second', async (t) => {
    await page.keyboard.press('Alt+4');
    const t0 = performance.now();
    const cold = await compare(32, async () => {
      const smollm2 = page.locator('[data-testid=side-by-side] .response[data-model="2"]').first();
      await page.getByTestId('activity').getByText(/generations? running/).waitFor();
      await smollm2.locator('[data-testid=generation-phase][data-phase=preparing]').waitFor();
      t.diagnostic(`preparing: ${await smollm2.locator('.progress span').innerText()}`);
    });
    timings.coldCompareMs = since(t0);
    t.diagnostic(`cold compare, first tokens (ms by model id): ${JSON.stringify(cold)}`);
    await page.getByTestId('activity').getByText('idle').waitFor();

    const warm = await compare(32);
    t.diagnostic(`warm compare, first tokens (ms by model id): ${JSON.stringify(warm)}`);
    timings.warmFirstTokenMs = Math.round(Math.max(...Object.values(warm)));
    assert.deepEqual(Object.keys(warm).sort(), ['1', '2']);
    assert.ok(timings.warmFirstTokenMs < 1000, `every model streams within a second of the click on loaded models (${timings.warmFirstTokenMs} ms)`);
  });

  let sftModel = '';
  test('experiments: a LoRA SFT of SmolLM2 on the demonstrations, its stage counting time until its first step, then a bar with time left and a loss curve', async (t) => {
    const definition = {
      name: 'smollm2-hh', seed: 0, model: 'store:smollm2',
      data: { source: 'store:hh-chat', evalFraction: 0.2 },
      stages: [{ id: 'sft', kind: 'sft', adaptation: 'lora', loraRank: 8, epochs: 1, batch: 4, maxLength: 256, lr: 0.001 }],
    };
    const t0 = performance.now();
    const started = await server.service.call('experiments.start', { definition });
    sftModel = `${started.name}/sft`;
    await page.goto(`${new URL(server.url).origin}/#/experiments/${started.id}`);
    const stage = page.locator('[data-testid=stages-table] tr[data-stage=sft]');
    await stage.getByText(/^Running( for .+)? · progress at its next step$/).waitFor();
    await page.getByTestId('activity').getByText('1 job running').waitFor();
    // Loading SmolLM2 and building its training step take minutes on a busy CPU.
    t.diagnostic(`SFT progress: ${await timeLeftSeen('[data-testid=stages-table] tr[data-stage=sft]', 900_000)}`);
    // Halfway: the bar, the time left and the loss curve so far.
    await stage.locator('.progress span', { hasText: /^(1[0-9]|[2-9][0-9])\/\d+ steps/ }).waitFor({ timeout: 600_000 });
    await page.locator('path.line').first().waitFor();
    await screenshot(page, 'experiments-smollm2');
    await page.locator('[data-testid=experiment-detail][data-state=done]').waitFor({ timeout: 1_200_000 });
    timings.sftMs = since(t0);
  });

  test('models: the SFT in the lineage of SmolLM2; exporting it as GGUF shows a bar with time left', async (t) => {
    await page.keyboard.press('Alt+2');
    const table = page.getByTestId('models-table');
    await table.getByText(sftModel).waitFor();
    assert.deepEqual((await table.locator('tbody td:first-child').allInnerTexts()).map((s) => s.trim()).slice(-2), ['smollm2', `└ ${sftModel}`]);
    await table.locator('tbody tr', { hasText: sftModel }).click();
    const form = page.getByRole('form', { name: `Export ${sftModel}` });
    await form.getByTestId('export-type').selectOption('q8_0');
    await form.getByTestId('export-out').fill(join(tmp.dir, 'smollm2-hh-sft.q8_0.gguf'));
    const t0 = performance.now();
    await form.getByRole('button', { name: 'Export' }).click();
    t.diagnostic(`export progress: ${await timeLeftSeen(`form[aria-label="Export ${sftModel}"] [data-testid=run-progress]`)}`);
    await form.locator('[data-testid=run-progress][data-status=done]').waitFor({ timeout: 300_000 });
    timings.exportMs = since(t0);
    await screenshot(page, 'models-smollm2');
  });

  test('compare: SmolLM2 beside its SFT on HH prompts; SmolLM2, loaded, streams while its SFT is read and prepared', async (t) => {
    await page.keyboard.press('Alt+4');
    await page.getByLabel('Default model (embedded)', { exact: true }).uncheck();
    await page.getByLabel(sftModel, { exact: true }).check();
    const sftId = (await server.service.call('models.list', {})).find((m) => m.name === sftModel)?.id;
    const firsts = await compare(64, async () => {
      const sft = page.locator(`[data-testid=side-by-side] .response[data-model="${sftId}"]`).first();
      await sft.locator('[data-testid=generation-phase][data-phase=preparing]').waitFor();
      t.diagnostic(`the SFT preparing: ${await sft.locator('.progress span').innerText()}`);
      // SmolLM2's answers are on their way meanwhile.
      await page.waitForFunction(() => (document.querySelector('[data-testid=side-by-side] .response pre')?.textContent ?? '').length > 40);
      await screenshot(page, 'compare-phases-smollm2');
    });
    t.diagnostic(`SmolLM2 beside its SFT, first tokens (ms by model id): ${JSON.stringify(firsts)}`);
    const texts = await page.locator('[data-testid=side-by-side] .response pre').allInnerTexts();
    assert.equal(texts.length, 4);
    assert.ok(texts.every((x) => x.trim().length > 0), 'every pane has an answer');
    await page.getByTestId('side-by-side').scrollIntoViewIfNeeded();
    await page.locator('[data-testid=side-by-side] .prompt').first().evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'compare-smollm2');
  });

  test('settings: the loaded models with their memory and load times; releasing them', async (t) => {
    await page.keyboard.press('Alt+6');
    const panel = page.getByTestId('model-cache');
    await panel.locator('tbody tr', { hasText: sftModel }).waitFor();
    t.diagnostic(`loaded models: ${(await panel.innerText()).replace(/\s+/g, ' ')}`);
    await panel.evaluate((e) => e.scrollIntoView({ block: 'end' }));
    await screenshot(page, 'settings-smollm2');
    await panel.getByRole('button', { name: 'Release all' }).click();
    await panel.getByText(/in use by 0 models\./).waitFor();
  });

  test('the session had no page errors; timings', (t) => {
    t.diagnostic(`timings (ms): ${JSON.stringify(timings)}`);
    assert.deepEqual(errors, []);
  });
}
