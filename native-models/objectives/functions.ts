// Numerically stable scalar functions the objectives need, composed from IR primitives.

import * as T from '../ir/index.ts';

/** |x| as relu(x) + relu(-x) (its gradient is sign(x), 0 at 0). */
export const abs = (x: T.Value): T.Value => T.add(T.relu(x), T.relu(T.neg(x)));

/** log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): never overflows. */
export const softplus = (x: T.Value): T.Value => T.add(T.relu(x), T.log(T.add(T.exp(T.neg(abs(x))), 1)));

/** log sigmoid(x) = -softplus(-x). */
export const logSigmoid = (x: T.Value): T.Value => T.neg(softplus(T.neg(x)));
