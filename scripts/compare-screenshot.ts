// A screenshot of the Compare view on a studio database, as the results documents show it
// (docs/results/hh-harmless-smollm2.md): plain columns of some models and Best-of-N columns
// by a reward model, on one prompt, generated for real by `afd serve`'s server and the built
// renderer in Debian's Chromium. Not a test: it takes minutes with a real model.
//
//   node --import tsx scripts/compare-screenshot.ts --db STUDIO.db --models 'smollm2,hh/sft' \
//     --best-of 'hh/sft:hh/rm:16' --prompt '...' --max-tokens 96 --out docs/screenshots/x.png
//
// Models are named as the Models view lists them. The database is written to (the answers
// are stored as generations, as the window stores them): point it at a copy, beside a link
// to the original's files folder (`COPY.db.files -> ORIGINAL.db.files`); the copy removes
// nothing from a folder the original still uses (main/jobs/files.ts).
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { openDatabase } from '../db/database.ts';
import { startServer } from '../main/server/server.ts';
import { buildRenderer, CHROMIUM, VIEWPORT } from '../test/support/browser.ts';

const USAGE = "usage: compare-screenshot.ts --db DB --models 'A,B' [--best-of 'MODEL:REWARD:N' ...] --prompt TEXT [--max-tokens N] --out FILE.png";
const { values } = parseArgs({
  options: {
    db: { type: 'string' }, models: { type: 'string', default: '' }, 'best-of': { type: 'string', multiple: true, default: [] },
    prompt: { type: 'string' }, 'max-tokens': { type: 'string', default: '96' }, out: { type: 'string' }, timeout: { type: 'string', default: '1800' },
  },
});
if (values.db === undefined || values.prompt === undefined || values.out === undefined) throw new Error(USAGE);
const plain = values.models.split(',').map((m) => m.trim()).filter((m) => m !== '');
const bestOf = values['best-of'].map((spec) => {
  const [model, reward, n] = spec.split(':');
  if (model === undefined || reward === undefined || !/^\d+$/.test(n ?? '')) throw new Error(`--best-of takes MODEL:REWARD:N, not '${spec}'.`);
  return { model, reward, n: Number(n) };
});
const columns = plain.length + bestOf.length;
if (columns < 2) throw new Error(`Name at least two columns (--models and --best-of); ${USAGE}`);

const db = await openDatabase(resolve(values.db));
const [staticDir, browser] = await Promise.all([buildRenderer(), chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] })]);
const server = await startServer({ db, port: 0, staticDir });
try {
  const page = await browser.newPage({ viewport: VIEWPORT });
  page.setDefaultTimeout(120_000);
  await page.goto(server.url);
  await page.keyboard.press('Alt+4');
  const form = page.getByRole('form', { name: 'Side-by-side generation' });
  await form.locator('input[type=checkbox]').first().waitFor();
  // Exactly the named models checked, in the view's own (lineage) order.
  for (const box of await form.locator('label.inline').all()) {
    const name = (await box.innerText()).trim();
    await box.locator('input[type=checkbox]').setChecked(plain.includes(name));
  }
  for (const b of bestOf) {
    await page.getByTestId('best-of-model').selectOption({ label: b.model });
    await page.getByTestId('best-of-reward-model').selectOption({ label: b.reward });
    await page.getByTestId('best-of-n').fill(String(b.n));
    await form.getByRole('button', { name: 'Add column' }).click();
  }
  await page.getByTestId('compare-prompts').fill(values.prompt);
  await page.getByLabel('Max tokens').fill(values['max-tokens']);
  const t0 = performance.now();
  await page.getByRole('button', { name: 'Generate side by side' }).click();
  await page.waitForFunction((n) => {
    const cells = document.querySelectorAll('[data-testid=side-by-side] .response');
    return cells.length === n && [...cells].every((c) => c.getAttribute('data-done') === 'true');
  }, columns, { timeout: Number(values.timeout) * 1000 });
  await page.getByTestId('side-by-side').scrollIntoViewIfNeeded();
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  const answers = await page.locator('[data-testid=side-by-side] .response').evaluateAll((cells) => cells.map((c) => ({ column: c.querySelector('.name')?.textContent?.trim(), text: c.querySelector('pre')?.textContent?.trim() })));
  console.log(JSON.stringify({ out, seconds: Math.round((performance.now() - t0) / 1000), answers }, null, 1));
} finally {
  await browser.close();
  await server.close();
  db.close();
}
