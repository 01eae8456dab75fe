// Shapes with symbolic dimensions.
//
// A dimension is a number or a symbolic expression: a symbol such as 'B' (batch) or 'T'
// (sequence), or a polynomial of symbols when shapes are merged or joined ('B*T' after
// reshape [B, T, D] -> [B*T, D], 'P+T' after concatenating a cache of P positions with T
// new ones). Expressions are kept in a canonical form (terms sorted, coefficients
// combined), so two dimensions are equal exactly when their strings are; a polynomial
// that is a plain number is a number. The ONNX emitter computes a symbolic dimension at
// run time from the Shape of the graph input that carries each symbol.

export type Dim = number | string;
export type Shape = readonly Dim[];

/** A polynomial: map from a sorted '*'-joined symbol list ('' for the constant) to its coefficient. */
type Poly = Map<string, number>;

function parse(d: Dim): Poly {
  const p: Poly = new Map();
  if (typeof d === 'number') {
    if (d !== 0) p.set('', d);
    return p;
  }
  for (const term of d.split('+')) {
    let coef = 1;
    const syms: string[] = [];
    for (const f of term.split('*')) {
      if (/^-?\d+$/.test(f)) coef *= Number(f);
      else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(f)) syms.push(f);
      else throw new Error(`dimension '${d}' is not a product or sum of numbers and symbols`);
    }
    addTerm(p, syms.sort().join('*'), coef);
  }
  return p;
}

function addTerm(p: Poly, key: string, coef: number): void {
  const c = (p.get(key) ?? 0) + coef;
  if (c === 0) p.delete(key);
  else p.set(key, c);
}

function format(p: Poly): Dim {
  const keys = [...p.keys()].sort();
  if (keys.length === 0) return 0;
  if (keys.length === 1 && keys[0] === '') return p.get('')!;
  return keys
    .map((k) => {
      const c = p.get(k)!;
      if (k === '') return String(c);
      return c === 1 ? k : `${c}*${k}`;
    })
    .join('+');
}

export const isStatic = (d: Dim): d is number => typeof d === 'number';

/** The value of a dimension given its symbols' values, e.g. evalDim('T+-1', { T: 64 }) = 63. */
export function evalDim(d: Dim, sizes: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const [key, coef] of parse(d)) {
    let term = coef;
    for (const sym of key === '' ? [] : key.split('*')) {
      const v = sizes[sym];
      if (v === undefined) throw new Error(`dimension '${d}' needs a value for '${sym}'`);
      term *= v;
    }
    total += term;
  }
  return total;
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const p = parse(a);
  for (const [k, c] of parse(b)) addTerm(p, k, c);
  return format(p);
}

export function dimSub(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const p = parse(a);
  for (const [k, c] of parse(b)) addTerm(p, k, -c);
  return format(p);
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  const p: Poly = new Map();
  for (const [ka, ca] of parse(a)) {
    for (const [kb, cb] of parse(b)) {
      const syms = [...(ka ? ka.split('*') : []), ...(kb ? kb.split('*') : [])].sort();
      addTerm(p, syms.join('*'), ca * cb);
    }
  }
  return format(p);
}

/** a / b when b is a single term that divides every term of a exactly; undefined otherwise. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') return b !== 0 && a % b === 0 ? a / b : undefined;
  const pb = parse(b);
  if (pb.size !== 1) return undefined;
  const [[kb, cb]] = [...pb];
  const out: Poly = new Map();
  for (const [ka, ca] of parse(a)) {
    if (ca % cb !== 0) return undefined;
    const syms = ka ? ka.split('*') : [];
    for (const s of kb ? kb.split('*') : []) {
      const i = syms.indexOf(s);
      if (i < 0) return undefined;
      syms.splice(i, 1);
    }
    addTerm(out, syms.join('*'), ca / cb);
  }
  return format(out);
}

/** The terms of a dimension: coefficient and the symbols multiplied (for the emitter). */
export function dimTerms(d: Dim): { coef: number; syms: string[] }[] {
  return [...parse(d)].map(([k, coef]) => ({ coef, syms: k ? k.split('*') : [] }));
}

/** True when the dimension is a single symbol ('T'), the form a graph input declares. */
export const isSymbol = (d: Dim): d is string => typeof d === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(d);

export const numel = (s: Shape): Dim => s.reduce<Dim>((acc, d) => dimMul(acc, d), 1);

export const shapeEq = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Numpy broadcasting of two shapes, or undefined when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return undefined;
  }
  return out;
}

/** Normalizes a possibly negative axis for a tensor of the given rank. */
export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}
