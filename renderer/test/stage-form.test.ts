// End to end: the Experiments view's stage forms in Chromium against `afd serve` (a real
// studio on a temporary database): a recipe customized in the form built from the stages'
// schemas, an invalid setting refused by the server's check beside its field with what was
// typed kept (a stage's setting, and a field of the definition's own), fixed, and the
// experiment started with the value typed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JsonObject } from '../../main/api/contract.ts';
import { VIEWPORT, chromiumSkip, collectPageErrors, screenshot } from '../../test/support/browser.ts';
import { startStudio } from '../../test/support/studio-server.ts';

describe('stage forms in Chromium against afd serve', { skip: chromiumSkip('stage form tests') }, async () => {
  const { browser, server } = await startStudio('stage-form');
  const url = new URL(server.url);
  const api = async <T>(method: string, params: JsonObject): Promise<T> => {
    const res = await fetch(`${url.origin}/api/${method}`, { method: 'POST', headers: { Authorization: `Bearer ${url.searchParams.get('token')}` }, body: JSON.stringify(params) });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as T;
  };

  test('a setting edited in the form: the error beside the field, fixed, then the experiment starts with it', { timeout: 180_000 }, async () => {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = collectPageErrors(page);
    page.setDefaultTimeout(60_000);
    await page.goto(server.url);
    await page.getByTestId('device-status').waitFor();
    await page.keyboard.press('Alt+3');
    await page.locator('[data-testid=recipe][data-recipe=quick]').getByRole('button', { name: 'Customize' }).click();

    const sft = page.locator('[data-testid=stage][data-stage=sft]');
    const epochs = sft.getByLabel('epochs', { exact: true });
    // The form is the schema's: bounds on the number, the recipe's value, defaults as placeholders, help, choices.
    assert.deepEqual(await epochs.evaluate((e: HTMLInputElement) => [e.type, e.min, e.max, e.step, e.value]), ['number', '1', '1000', '1', '1']);
    assert.equal(await sft.getByLabel('lr', { exact: true }).getAttribute('placeholder'), '0.0003');
    assert.equal(await sft.locator('[data-field=loraRank] .help').innerText(), 'LoRA rank (default 8)');
    assert.deepEqual(await sft.getByLabel('adaptation', { exact: true }).locator('option').allInnerTexts(), ['full (default)', 'full', 'lora']);
    assert.equal(await page.locator('[data-testid=stage][data-stage=judge]').getByLabel('allPrompts').getAttribute('type'), 'checkbox');

    // An invalid value: the server's sentence beside the field, what was typed kept.
    await epochs.fill('0');
    const problem = sft.locator('[data-field=epochs] [role=alert]');
    await problem.waitFor();
    assert.equal(await problem.innerText(), "stage 'sft' (sft): epochs must be a whole number from 1 to 1000, not 0.");
    assert.equal(await epochs.getAttribute('aria-invalid'), 'true');
    assert.equal(await epochs.inputValue(), '0');
    await sft.scrollIntoViewIfNeeded();
    await screenshot(page, 'stage-form');
    // Start refuses it: still there, nothing started.
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.waitForTimeout(500);
    assert.equal(await problem.innerText(), "stage 'sft' (sft): epochs must be a whole number from 1 to 1000, not 0.");
    assert.deepEqual(await api('experiments.list', {}), []);

    // The text editor shows what the form holds, and back.
    await sft.getByRole('button', { name: 'Edit as JSON' }).click();
    assert.match(await sft.locator('textarea').inputValue(), /"epochs": 0/);
    await sft.getByRole('button', { name: 'Edit as JSON' }).click();

    // Fixed: the error goes, and the experiment starts with the value typed.
    await sft.getByLabel('epochs', { exact: true }).fill('2');
    await problem.waitFor({ state: 'detached' });
    // A field of the definition's own: its problem beside it as well.
    const share = page.getByLabel('Eval share');
    await share.fill('2');
    const shareProblem = page.locator('label:has-text("Eval share") [role=alert]');
    await shareProblem.waitFor();
    assert.match(await shareProblem.innerText(), /evalFraction must be a number from 0\.01 to 0\.99, not 2/);
    assert.equal(await share.getAttribute('aria-invalid'), 'true');
    await share.fill('0.2');
    await shareProblem.waitFor({ state: 'detached' });
    await sft.getByLabel('batch', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.getByTestId('experiment-detail').waitFor();
    const [started] = await api<{ id: number }[]>('experiments.list', {});
    const detail = await api<{ definition: { stages: JsonObject[] } }>('experiments.get', { experimentId: started.id });
    const stage = detail.definition.stages.find((s) => s.id === 'sft');
    assert.deepEqual([stage?.epochs, stage?.batch, stage?.maxLength], [2, 2, 128]);
    await page.getByTestId('experiment-detail').getByRole('button', { name: 'Cancel' }).click();
    await page.locator('[data-testid=experiment-detail][data-state=stopped]').waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });
});
