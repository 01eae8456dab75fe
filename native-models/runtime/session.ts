// Compiled ONNX Runtime sessions, one per (model bytes, provider, threads, optimization
// level, ...), so that a graph run many times (a training step) is compiled once. A model
// whose weights are external data (ir/emit.ts ExternalTensor) is small: the key hashes
// its bytes, the folder its data is read from and what identifies those files, never the
// weights themselves.
import * as ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { ProviderName } from './providers.ts';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export type SessionOptions = {
  provider: ProviderName;
  /** Threads inside one op; default: os.availableParallelism(). */
  intraOpThreads?: number;
  /** Default 'all'. */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * Keep ORT's CPU memory arena (default true): on the training benchmark, steps are ~10%
   * faster than without it (no page faults on fresh memory each run).
   */
  memoryArena?: boolean;
  /** Let idle pool threads busy-wait for the next op (ORT's default); default false, see below. */
  spinning?: boolean;
  /**
   * The folder that the model's external data locations are relative to (ORT's
   * session.model_external_initializers_file_folder_path; the model comes as bytes, so it
   * has no folder of its own). ORT maps those files: weights are not copied into the
   * process, and sessions over the same file share its pages.
   */
  externalDataDir?: string;
  /** Identifies the content of the external data files (say their sizes and modification times), as part of the cache key. */
  externalDataIdentity?: string;
  /**
   * Let ORT copy constant GEMM weights into MLAS's packed layout once per session
   * (default true). Without it a session keeps mapped weights as they are, shared, but
   * packs them again in every product: see docs/benchmarks.md for what each costs.
   */
  prepacking?: boolean;
  /**
   * Let nodes the provider has no kernel for run on the CPU provider (default true). False
   * makes creating the session fail instead (ORT's session.disable_cpu_ep_fallback): the
   * graphs written for a provider's kernels (ir/emit.ts EmitTarget) run wholly on it.
   */
  cpuFallback?: boolean;
  /**
   * Outputs that stay in the device's memory ('gpu-buffer', WebGPU): tensors that can be
   * fed back as inputs without a copy, must be disposed, and cannot be read on the host
   * (runtime/read-back.ts). Other outputs come back to the host as usual.
   */
  deviceOutputs?: readonly string[];
};

type Entry = { session: Promise<ort.InferenceSession>; ready?: ort.InferenceSession };

export class SessionCache {
  readonly #entries = new Map<string, Entry>();

  /** The session for these bytes and options, created on first use. */
  get(bytes: Uint8Array, opts: SessionOptions): Promise<ort.InferenceSession> {
    const threads = opts.intraOpThreads ?? availableParallelism();
    const level = opts.graphOptimizationLevel ?? 'all';
    const hash = createHash('sha256').update(bytes).digest('hex');
    const arena = opts.memoryArena ?? true;
    const spinning = opts.spinning ?? false;
    const prepacking = opts.prepacking ?? true;
    const fallback = opts.cpuFallback ?? true;
    const deviceOutputs = [...(opts.deviceOutputs ?? [])].sort();
    const key = `${hash}|${opts.provider}|${threads}|${level}|${arena}|${spinning}|${prepacking}|${fallback}|${deviceOutputs.join(',')}|${opts.externalDataDir ?? ''}|${opts.externalDataIdentity ?? ''}`;
    // Session config entries, nested as onnxruntime-node joins them ('session.intra_op.allow_spinning').
    const config: Record<string, string | Record<string, string>> = {};
    // ORT's pool threads busy-wait after each parallel op by default. Every session has
    // its own pool, so when sessions alternate (prefill then decode, a policy then its
    // reward model) the previous session's spinning threads take the cores from the next
    // one: a batch-16 prefill right after decoding took 85-95 ms instead of 45 ms here.
    if (!spinning) config.intra_op = { allow_spinning: '0' };
    if (!prepacking) config.disable_prepacking = '1';
    if (!fallback) config.disable_cpu_ep_fallback = '1';
    if (opts.externalDataDir !== undefined) config.model_external_initializers_file_folder_path = opts.externalDataDir;
    const cached = this.#entries.get(key);
    if (cached) return cached.session;

    const entry: Entry = {
      session: ort.InferenceSession.create(bytes, {
        executionProviders: [opts.provider],
        intraOpNumThreads: threads,
        interOpNumThreads: 1, // sequential execution: no inter-op pool to size
        executionMode: 'sequential',
        graphOptimizationLevel: level,
        enableCpuMemArena: arena,
        // ORT's memory pattern pre-plans one block for all of a run's intermediate tensors;
        // on the training benchmark it raised peak RSS from 2.1 GB to 3.0 GB at the same
        // speed, and shapes that change between runs (decoding) defeat it anyway.
        enableMemPattern: false,
        ...(Object.keys(config).length > 0 ? { extra: { session: config } } : {}),
        ...(deviceOutputs.length > 0 ? { preferredOutputLocation: Object.fromEntries(deviceOutputs.map((n) => [n, 'gpu-buffer' as const])) } : {}),
        logSeverityLevel: 3, // errors only: ORT's node-placement warnings are expected on GPU providers
      }).then(
        (session) => {
          entry.ready = session;
          return session;
        },
        (err: unknown) => {
          this.#entries.delete(key); // let a later call retry
          const message = err instanceof Error ? err.message : String(err);
          // ORT does not name the nodes; its verbose log does ("Node(s) placed on [CPUExecutionProvider]").
          const which = !fallback && /fallback to CPU EP/.test(message) ? ' Some node of this graph has no kernel on that provider; ONNX Runtime\'s verbose log (logSeverityLevel 0) lists the nodes placed on the CPU.' : '';
          throw new Error(`ONNX Runtime could not load the model (${bytes.byteLength} bytes, sha256 ${hash.slice(0, 12)}) on ${opts.provider}: ${message}${which}`, { cause: err });
        },
      ),
    };
    this.#entries.set(key, entry);
    return entry.session;
  }

  /** Number of sessions created or being created. */
  get size(): number {
    return this.#entries.size;
  }

  /** Disposes one session obtained from get(); false if this cache does not hold it. */
  async release(session: ort.InferenceSession): Promise<boolean> {
    for (const [key, entry] of this.#entries) {
      if (entry.ready === session) {
        this.#entries.delete(key);
        await session.release();
        return true;
      }
    }
    return false;
  }

  /** Disposes every session, waiting for those still being created. */
  async clear(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((e) => e.session.then((s) => s.release(), () => undefined)));
  }
}

/**
 * Runs `session` writing its outputs into the given preallocated tensors (same dtype and
 * shape as the outputs), which are returned. onnxruntime-node 1.30 fills them in place
 * on the CPU provider, but still copies each output once more into a fresh tensor that
 * we drop, so this saves ORT's output allocation, not that copy.
 */
export async function runInto<T extends Record<string, ort.Tensor>>(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  outputs: T,
): Promise<T> {
  const names = Object.keys(outputs);
  const unknown = names.filter((n) => !session.outputNames.includes(n));
  // ORT would take an object without output names for run options and write nothing.
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(`runInto needs preallocated tensors for outputs of the model (${session.outputNames.join(', ')}); got ${names.length ? unknown.join(', ') : 'none'}.`);
  }
  await session.run(feeds, outputs);
  return outputs;
}
