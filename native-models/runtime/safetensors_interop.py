"""Reference reads and writes with Python's `safetensors` package, for safetensors.test.ts.

  python3 safetensors_interop.py write SPEC.json OUT.safetensors
  python3 safetensors_interop.py read IN.safetensors      (prints JSON)

SPEC.json / the printed JSON: {"tensors": [{"name", "dtype" ("F32"...), "shape",
"data" (base64)}], "metadata": {str: str} or null}. Uses the package's raw-bytes API, so
neither numpy nor torch is needed.
"""
import base64
import ctypes
import json
import sys

import safetensors

# The dtype names the package's serializer takes.
SERIALIZER_DTYPE = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16",
                    "I64": "int64", "I32": "int32", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def write(spec_path, out_path):
    with open(spec_path) as f:
        spec = json.load(f)
    keep_alive = []
    tensors = {}
    for t in spec["tensors"]:
        data = base64.b64decode(t["data"])
        dtype = SERIALIZER_DTYPE[t["dtype"]]
        if hasattr(safetensors, "TensorSpec"):  # 0.8 and later: raw pointers
            buf = ctypes.create_string_buffer(data, max(len(data), 1))
            keep_alive.append(buf)
            tensors[t["name"]] = safetensors.TensorSpec(
                dtype=dtype, shape=t["shape"], data_ptr=ctypes.addressof(buf), data_len=len(data))
        else:  # earlier: dicts of bytes
            tensors[t["name"]] = {"dtype": dtype, "shape": t["shape"], "data": data}
    safetensors.serialize_file(tensors, out_path, metadata=spec["metadata"])


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    ours = {v: k for k, v in SERIALIZER_DTYPE.items()}
    tensors = [{"name": name, "dtype": ours.get(str(info["dtype"]), str(info["dtype"])), "shape": list(info["shape"]),
                "data": base64.b64encode(bytes(info["data"])).decode()}
               for name, info in safetensors.deserialize(raw)]
    with safetensors.safe_open(path, framework="np") as f:
        metadata = f.metadata()
    json.dump({"tensors": tensors, "metadata": metadata}, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    else:
        read(sys.argv[2])
