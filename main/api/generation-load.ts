// Loading a model for generation in phases a user can follow (issue 19): reading its
// weight files (bytes read of the total), then preparing it (the ONNX graph built and ONNX
// Runtime's sessions compiled, the longest part on a CPU), then generating. The studio's
// generation worker and `afd generate` both load this way.
//
// The weight files are read once with progress first: on a cold disk that read is the
// slow part and is now measured, and ONNX Runtime then maps float32 weights from the
// operating system's cached pages (mapHfModel; other types are read and converted). The
// read costs about 0.3 s for SmolLM2's 538 MB when the pages were cached already.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mapHfModel } from '../../native-models/checkpoint/index.ts';
import { Generator } from '../../native-models/generate/generator.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { SessionCache, type SessionOptions } from '../../native-models/runtime/session.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { ProgressClock } from '../jobs/eta.ts';

/** Where a load is: bytes of the weight files read, or ONNX Runtime sessions built so far. */
export type LoadPhase =
  | { phase: 'loading'; done: number; total: number; etaMs: number | null }
  | { phase: 'preparing'; done: number; total: null; etaMs: number | null };

export interface LoadOptions {
  provider?: ProviderName;
  threads?: number;
  onPhase?: (p: LoadPhase) => void;
  /** What preparing took per weight byte on an earlier load (ms), for its time left; null when unknown. */
  prepareMsPerByte?: number | null;
}

export interface LoadedForGeneration {
  generator: Generator;
  tokenizer: Tokenizer;
  /** End-of-sequence ids from generation_config.json and the tokenizer. */
  eos: number[];
  /** Bytes of the weight files. */
  weightBytes: number;
  /** The weights stay in their files, mapped by ONNX Runtime (float32 folders), rather than read into memory. */
  weightsMapped: boolean;
  readMs: number;
  prepareMs: number;
  /** Releases the generator and its sessions. */
  release(): Promise<void>;
}

/** Least time between two progress reports of the read. */
const REPORT_MS = 100;

/** The safetensors files of a Hugging Face folder, with their sizes. */
export async function weightFiles(dir: string): Promise<{ path: string; bytes: number }[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort();
  return Promise.all(names.map(async (n) => ({ path: join(dir, n), bytes: (await stat(join(dir, n))).size })));
}

/** A session cache that says when each new session has been built. */
class ObservedSessions extends SessionCache {
  private built = 0;
  private readonly onBuilt: (count: number) => void;

  constructor(onBuilt: (count: number) => void) {
    super();
    this.onBuilt = onBuilt;
  }

  override get(bytes: Uint8Array, opts: SessionOptions): ReturnType<SessionCache['get']> {
    const before = this.size;
    const session = super.get(bytes, opts);
    if (this.size > before) session.then(() => this.onBuilt(++this.built), () => undefined);
    return session;
  }
}

export async function loadForGeneration(dir: string, opts: LoadOptions = {}): Promise<LoadedForGeneration> {
  const report = opts.onPhase ?? (() => undefined);
  const t0 = performance.now();
  const files = await weightFiles(dir);
  const total = files.reduce((s, f) => s + f.bytes, 0);
  const clock = new ProgressClock({ windowMs: 3000 });
  let done = 0;
  let reported = -Infinity;
  report({ phase: 'loading', done, total, etaMs: null });
  for (const f of files) {
    for await (const chunk of createReadStream(f.path, { highWaterMark: 4 << 20 })) {
      done += (chunk as Buffer).length;
      const now = performance.now();
      if (now - reported >= REPORT_MS) {
        reported = now;
        report({ phase: 'loading', done, total, etaMs: clock.update(done, total, now).etaMs });
      }
    }
  }
  report({ phase: 'loading', done: total, total, etaMs: 0 });
  const [model, tokenizer] = await Promise.all([mapHfModel(dir), Tokenizer.fromFolder(dir)]);
  const readMs = performance.now() - t0;

  const t1 = performance.now();
  const expected = opts.prepareMsPerByte === undefined || opts.prepareMsPerByte === null ? null : opts.prepareMsPerByte * total;
  const left = (): number | null => (expected === null ? null : Math.max(0, expected - (performance.now() - t1)));
  report({ phase: 'preparing', done: 0, total: null, etaMs: left() });
  // Sessions built later (scoring's, on first use) are not part of the load.
  let preparing = true;
  const sessions = new ObservedSessions((n) => preparing && report({ phase: 'preparing', done: n, total: null, etaMs: left() }));
  const generator = await Generator.create(model.family, model.config, model.weights, { provider: opts.provider, threads: opts.threads, sessions });
  preparing = false;
  const prepareMs = performance.now() - t1;
  const gc = model.generationConfig ?? {};
  const eos = [gc.eos_token_id, tokenizer.eosTokenId].flat().filter((x): x is number => typeof x === 'number');
  return {
    generator, tokenizer, eos: [...new Set(eos)], weightBytes: total, weightsMapped: !(model.weights instanceof Map), readMs, prepareMs,
    release: async () => {
      await generator.release();
      await sessions.clear(); // passed in, so the generator leaves them to us
    },
  };
}
