// Forward-only graphs the pipeline writes itself (a scorer's scores, the endogenous
// reward, AIRL's discriminator), run on the stage's provider. Each graph is written for
// that provider's kernels (ir/emit.ts EmitTarget): under WebGPU it runs wholly on the GPU
// (CPU fallback disabled, so a node without a GPU kernel fails at creation instead of
// copying to the CPU each run), and its feeds are completed as a GPU graph needs them
// (runtime/device-feeds.ts: int64 inputs as int32, run-time sizes).
import type ort from 'onnxruntime-node';
import * as T from '../../native-models/ir/index.ts';
import type { EmitOptions, EmitTarget } from '../../native-models/ir/index.ts';
import { deviceFeeds, deviceInputsOf, type Feeds } from '../../native-models/runtime/device-feeds.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { SessionCache, type SessionOptions } from '../../native-models/runtime/session.ts';

export interface GraphSession {
  /** The graph's inputs in order (as the IR declared them). */
  inputNames: readonly string[];
  run(feeds: Feeds): Promise<ort.InferenceSession.OnnxValueMapType>;
  release(): Promise<void>;
}

export const emitTarget = (provider: ProviderName): EmitTarget => (provider === 'webgpu' ? 'webgpu' : 'cpu');

/** A session for the graph `o` describes, written for `session.provider`. */
export async function graphSession(o: Omit<EmitOptions, 'target'>, session: SessionOptions): Promise<GraphSession> {
  const target = emitTarget(session.provider);
  const graph = T.emitOnnx({ ...o, target });
  const sessions = new SessionCache();
  const s = await sessions.get(graph.bytes, { ...session, ...(target === 'webgpu' ? { cpuFallback: false } : {}) });
  const inputs = deviceInputsOf(graph);
  return {
    inputNames: graph.inputNames,
    run: (feeds) => s.run(deviceFeeds(inputs, feeds)),
    release: () => sessions.clear(),
  };
}
