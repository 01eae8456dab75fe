"""transformers reading a GGUF file: the oracle of the GGUF parity tests
(native-models/checkpoint/gguf/*.test.ts). A test oracle only, never product code.

    python3 gguf_reference.py run GGUF_FILE SPEC_JSON
        SPEC_JSON: {"texts": [...], "sequences": [[ids...], ...], "chat": [messages...],
        "new_tokens": N}. Prints JSON: the token ids transformers' GGUF tokenizer gives
        each text, the float32 logits [B, T, V] of the sequences (base64), the chat
        prompt rendered by the GGUF's template and its ids, and the greedy continuation
        of that prompt (N new tokens, transformers' own KV cache).

    python3 gguf_reference.py logits SPEC_JSON
        SPEC_JSON: {"files": [...], "sequences": [[ids...]], "chat_ids": [...], "new_tokens": N}.
        For each GGUF file (one we exported): gguf-py's reader must accept it (its tensor
        count and types are printed), and transformers' logits of the sequences (base64)
        and, with chat_ids, its greedy continuation.

transformers dequantizes the GGUF to float32 itself (gguf_file=), so it is an
independent reader of the same file.
"""

import base64
import json
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def run(gguf_path, spec_path):
    spec = json.load(open(spec_path))
    folder, name = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    out = {"ids": [tok(t)["input_ids"] for t in spec.get("texts", [])]}
    with torch.no_grad():
        if spec.get("sequences"):
            logits = model(torch.tensor(spec["sequences"])).logits.float().numpy().astype(np.float32)
            out["logits"] = base64.b64encode(logits.tobytes()).decode()
            out["logits_shape"] = list(logits.shape)
        if spec.get("chat"):
            text = tok.apply_chat_template(spec["chat"], tokenize=False, add_generation_prompt=True)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            gen = model.generate(torch.tensor([ids]), max_new_tokens=spec.get("new_tokens", 8), do_sample=False,
                                 pad_token_id=tok.eos_token_id)
            out["chat_text"] = text
            out["chat_ids"] = ids
            out["greedy"] = gen[0, len(ids):].tolist()
    print(json.dumps(out))


def logits(spec_path):
    import gguf
    spec = json.load(open(spec_path))
    out = []
    for path in spec["files"]:
        reader = gguf.GGUFReader(path)
        types = sorted({t.tensor_type.name for t in reader.tensors})
        folder, name = os.path.split(os.path.abspath(path))
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
        entry = {"file": path, "tensors": len(reader.tensors), "types": types}
        with torch.no_grad():
            lg = model(torch.tensor(spec["sequences"])).logits.float().numpy().astype(np.float32)
            entry["logits"] = base64.b64encode(lg.tobytes()).decode()
            if spec.get("chat_ids"):
                gen = model.generate(torch.tensor([spec["chat_ids"]]), max_new_tokens=spec.get("new_tokens", 8),
                                     do_sample=False, pad_token_id=0)
                entry["greedy"] = gen[0, len(spec["chat_ids"]):].tolist()
        out.append(entry)
    print(json.dumps(out))


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"run": run, "logits": logits}[sys.argv[1]](*sys.argv[2:])
