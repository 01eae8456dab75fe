"""Test oracle for native-models/checkpoint/gguf (never product code): gguf-py, the reference
reader/writer and numpy port of ggml's quantization, against which the TypeScript reader,
dequantizers and writer are checked.

  make-quants OUT.gguf REF.gguf SEED
      OUT: one tensor per ggml type gguf-py can dequantize, each made of random but valid raw
      blocks (random bytes; the f16 scale fields set to finite values), written by GGUFWriter
      with raw_dtype. REF: the same names as F32, holding gguf.quants.dequantize of each.
  read FILE [--tensors a,b,...] [--raw] [--hash] [--quantize-q8 NAME]
      JSON on stdout: version, metadata (value and type names; 64-bit integers as strings),
      tensors (name, type, shape row-major, absolute data offset, and with --tensors the named
      tensors' dequantized values as base64 float32, or with --hash their sha256 (for a real
      model's large tensors), and with --raw their bytes as base64).
      --quantize-q8 NAME: gguf.quants.quantize(Q8_0) of F32 tensor NAME, as base64 bytes.
"""

import base64
import hashlib
import json
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

# Byte offsets of the f16 scale fields inside each block (see quants.ts for the layouts).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

# Row-major shapes: several rows, and one 3-d tensor, so row order is checked too.
SHAPES = {32: (5, 3, 64), 256: (6, 512)}


def random_blocks(rng, qtype, n_blocks):
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for at in F16_FIELDS[qtype]:
        # Finite scales of both signs, from tiny (subnormal) to large-ish.
        scale = (rng.standard_normal(n_blocks) * 10.0 ** rng.integers(-6, 1, n_blocks)).astype(np.float16)
        blocks[:, at:at + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def make_quants(out_path, ref_path, seed):
    rng = np.random.default_rng(seed)
    out = gguf.GGUFWriter(out_path, arch='test')
    ref = gguf.GGUFWriter(ref_path, arch='test')
    for qtype in F16_FIELDS:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        shape = SHAPES[block_size]
        n_blocks = int(np.prod(shape)) // block_size
        raw = random_blocks(rng, qtype, n_blocks).reshape(*shape[:-1], shape[-1] // block_size * type_size)
        name = qtype.name.lower()
        out.add_tensor(name, raw, raw_dtype=qtype)
        ref.add_tensor(name, gguf.quants.dequantize(raw, qtype).astype(np.float32))
    # Plain float types: random finite values (the f16 ones as random bit patterns minus inf/NaN).
    f16 = rng.integers(0, 65536, size=(4, 96), dtype=np.uint16)
    f16[(f16 & 0x7C00) == 0x7C00] &= 0x3FFF
    out.add_tensor('f16', f16.view(np.float16))
    ref.add_tensor('f16', f16.view(np.float16).astype(np.float32))
    bf16 = rng.integers(0, 65536, size=(4, 96), dtype=np.uint16)
    bf16[(bf16 & 0x7F80) == 0x7F80] &= 0xBFFF
    raw = bf16.view(np.uint8).reshape(4, 192)
    out.add_tensor('bf16', raw, raw_dtype=T.BF16)
    ref.add_tensor('bf16', gguf.quants.dequantize(raw, T.BF16).astype(np.float32))
    f32 = rng.standard_normal((3, 7)).astype(np.float32)
    out.add_tensor('f32', f32)
    ref.add_tensor('f32', f32)
    for w in (out, ref):
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode('ascii')


def field_json(field):
    types = [t.name for t in field.types]
    value = field.contents()
    if field.types[0] in (gguf.GGUFValueType.UINT64, gguf.GGUFValueType.INT64):
        value = str(value)
    elif field.types[0] == gguf.GGUFValueType.ARRAY and field.types[-1] in (gguf.GGUFValueType.UINT64, gguf.GGUFValueType.INT64):
        value = [str(v) for v in value]
    return {'types': types, 'value': value}


def read(path, names, raw, digest, quantize_q8):
    r = gguf.GGUFReader(path)
    metadata = {}
    for name, field in r.fields.items():
        if name.startswith('GGUF.'):
            continue
        metadata[name] = field_json(field)
    tensors = []
    for t in r.tensors:
        entry = {
            'name': t.name,
            'type': t.tensor_type.name,
            'shape': [int(n) for n in reversed(t.shape)],
            'offset': int(t.data_offset),
        }
        if t.name in names:
            values = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
            if digest:
                entry['sha256'] = hashlib.sha256(values.tobytes()).hexdigest()
            else:
                entry['values'] = b64(values)
            if raw:
                entry['raw'] = b64(t.data)
        if t.name == quantize_q8:
            entry['q8'] = b64(gguf.quants.quantize(np.asarray(t.data, dtype=np.float32), T.Q8_0))
        tensors.append(entry)
    version = int(r.fields['GGUF.version'].contents())
    alignment = int(r.alignment)
    json.dump({'version': version, 'alignment': alignment, 'metadata': metadata, 'tensors': tensors}, sys.stdout)


def main(argv):
    if argv[0] == 'make-quants':
        make_quants(argv[1], argv[2], int(argv[3]))
    elif argv[0] == 'read':
        args = argv[2:]
        names = set()
        raw = '--raw' in args
        quantize_q8 = None
        for i, a in enumerate(args):
            if a == '--tensors':
                names = set(args[i + 1].split(','))
            if a == '--quantize-q8':
                quantize_q8 = args[i + 1]
        read(argv[1], names, raw, '--hash' in args, quantize_q8)
    else:
        raise SystemExit(f'unknown command {argv[0]}')


if __name__ == '__main__':
    main(sys.argv[1:])
