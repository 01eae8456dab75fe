// A fake of the Electron preload's window.afd for component tests: the studio's API over an
// in-page fixture (window.__afdFixture), recording every call, with window.__afd.emit(event)
// to push events as the studio would. Plain browser JavaScript, injected before the app.
(() => {
  const f = window.__afdFixture;
  const listeners = new Set();
  const calls = [];
  const emit = (e) => { for (const l of listeners) l(e); };
  let nextRun = 100;
  const votes = [];
  const fail = f.fail ?? {};
  // The loaded models (generation.cache): the fixture's, emptied by generation.unload.
  let cache = f.cache ?? { budgetBytes: 4e9, usedBytes: 0, models: [] };

  function tally(modelA, modelB) {
    const t = { modelA, modelB, n: 0, winsA: 0, winsB: 0, ties: 0, skips: 0, winRateA: null, ci95: [0, 1], leftWinRate: null };
    for (const v of votes) {
      if (v === 'A') t.winsA++; else if (v === 'B') t.winsB++; else if (v === 'tie') t.ties++; else t.skips++;
    }
    t.n = t.winsA + t.winsB + t.ties;
    if (t.n > 0) {
      // Wilson interval, ties as half (as the service computes it).
      const z = 1.959964, p = (t.winsA + t.ties / 2) / t.n, z2 = z * z;
      const c = (p + z2 / (2 * t.n)) / (1 + z2 / t.n);
      const h = (z / (1 + z2 / t.n)) * Math.sqrt((p * (1 - p)) / t.n + z2 / (4 * t.n * t.n));
      t.winRateA = p;
      t.ci95 = [Math.max(0, c - h), Math.min(1, c + h)];
    }
    return t;
  }

  const methods = {
    'status': () => f.status,
    'settings.get': () => ({ dataFolder: f.status.dataFolder, forcedProvider: f.status.forcedProvider, modelCacheBytes: cache.budgetBytes }),
    'settings.set': (p) => {
      if (p.modelCacheBytes !== undefined) cache = { ...cache, budgetBytes: p.modelCacheBytes };
      return { dataFolder: f.status.dataFolder, forcedProvider: f.status.forcedProvider, modelCacheBytes: cache.budgetBytes, restartRequired: false, message: 'Saved.' };
    },
    'generation.cache': () => cache,
    'generation.unload': () => (cache = { ...cache, usedBytes: 0, models: [] }),
    // Streams of compare.start stay open (the test emits their events); cancelling ends them.
    'generation.cancel': (p) => {
      setTimeout(() => emit({ type: 'generation.done', streamId: p.streamId, text: '', tokens: 0, finishReason: 'cancelled', error: null, generationId: null }), 5);
      return { cancelled: true };
    },
    // Stream ids: m<model>p<prompt>, m<model>b<N>p<prompt> for a Best-of-N column.
    'compare.start': (p) => ({
      compareId: 'c1',
      streams: (p.columns ?? p.modelIds.map((modelId) => ({ modelId }))).flatMap((c, column) => p.prompts.map((prompt, promptIndex) => ({
        streamId: `m${c.modelId}${c.bestOf ? `b${c.bestOf.n}` : ''}p${promptIndex}`, modelId: c.modelId, column, bestOf: c.bestOf ?? null, promptIndex, prompt,
      }))),
    }),
    'logs.app': () => f.appLogs ?? [],
    'runs.list': () => f.runs ?? [],
    'runs.logs': () => [],
    'runs.metrics': () => [],
    'runs.get': (p) => ({ run: (f.runs ?? []).find((r) => r.id === p.runId) ?? { id: p.runId, status: 'running', stage: 'x', error: null }, metrics: [], logs: [] }),
    'datasets.list': () => f.datasets ?? [],
    'datasets.examples': (p) => {
      const items = (f.examples ?? []).filter((e) => e.datasetId === p.datasetId && (p.text === undefined || e.prompt.includes(p.text) || (e.response ?? '').includes(p.text)) && (p.split === undefined || e.split === p.split));
      const offset = p.offset ?? 0, limit = p.limit ?? 50;
      return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
    },
    'datasets.stats': (p) => f.stats[p.datasetId],
    'datasets.history': () => [],
    'datasets.importText': (p) => ({ id: nextRun++, stage: 'import-dataset', status: 'queued', config: { name: p.name } }),
    'models.list': () => f.models ?? [],
    'models.generate': (p) => {
      const streamId = `s${nextRun++}`;
      const words = ['Boil ', 'the ', 'water.'];
      // f.generateDelayMs holds the answer back (a model being read): the phases come first.
      const wait = f.generateDelayMs ?? 0;
      setTimeout(() => emit({ type: 'generation.phase', streamId, phase: 'loading', done: 269e6, total: 538e6, etaMs: 2000 }), 5);
      words.forEach((w, i) => setTimeout(() => emit({ type: 'generation.token', streamId, index: i, text: w }), wait + 20 * (i + 1)));
      setTimeout(() => emit({ type: 'generation.done', streamId, text: words.join(''), tokens: 3, finishReason: 'eos', error: null, generationId: 1 }), wait + 100);
      return { streamId, modelId: p.modelId, column: 0, bestOf: null, promptIndex: 0, prompt: p.prompt };
    },
    'experiments.recipes': () => f.recipes ?? [],
    'experiments.stageKinds': () => f.stageKinds ?? [],
    'experiments.check': () => f.problems ?? [],
    'experiments.list': () => f.experiments ?? [],
    'experiments.get': (p) => f.experimentDetails[p.experimentId],
    'experiments.start': (p) => ({ ...f.experimentDetails[f.startedId], definition: p.definition }),
    'compare.nextPair': () => (f.pairs ?? [])[votes.length] ?? null,
    'compare.tally': (p) => ({ ...tally(p.modelA, p.modelB), bestOfA: p.bestOfA ?? null, bestOfB: p.bestOfB ?? null }),
    'compare.vote': (p) => {
      votes.push(p.vote);
      const [a, b] = f.models;
      return { judgmentId: votes.length, reveal: { a: { modelId: b.id, bestOf: null, name: b.name }, b: { modelId: a.id, bestOf: null, name: a.name } }, tally: { ...tally(a.id, b.id), bestOfA: null, bestOfB: null } };
    },
    'results.get': (p) => (f.results ?? {})[p.experimentId] ?? null,
  };

  window.__afd = { calls, emit };
  window.afd = {
    async call(method, params) {
      calls.push({ method, params });
      await new Promise((r) => setTimeout(r, 1));
      if (fail[method] !== undefined) throw new Error(fail[method]);
      const m = methods[method];
      if (m === undefined) throw new Error(`The fake studio has no method "${method}".`);
      return structuredClone(m(params ?? {}));
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
})();
