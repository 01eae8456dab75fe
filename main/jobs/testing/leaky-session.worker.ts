// The worker side of the test kind `leaky-session` (see leaky-session.ts).
import ort from 'onnxruntime-node';
import * as T from '../../../native-models/ir/index.ts';
import type { JsonObject } from '../../../db/json.ts';
import type { WorkerRun } from '../kind.ts';
import { LEAKED_SESSION_THREADS } from './leaky-session.ts';

const held: unknown[] = [];

export const run: WorkerRun<JsonObject> = async (ctx) => {
  ctx.started({});
  const x = T.input('x', 'float32', [2]);
  const session = await ort.InferenceSession.create(T.emitOnnx({ outputs: { y: T.add(x, x) }, name: 'leaky' }).bytes, { intraOpNumThreads: LEAKED_SESSION_THREADS });
  await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
  held.push(session, setInterval(() => held.length, 1000)); // neither released nor cleared
  return { status: 'done', result: { pid: process.pid, mallocTunables: process.env.GLIBC_TUNABLES ?? null } };
};
