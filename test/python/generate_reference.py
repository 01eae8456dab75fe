"""transformers' greedy generate on a Hugging Face model folder: the oracle of the
real-model generation test (native-models/generate/smollm2.test.ts). A test oracle only,
never product code.

    python3 generate_reference.py MODEL_DIR SPEC_JSON
        SPEC_JSON: {"prompts": [[ids...], ...], "new_tokens": N, "eos": [ids...]}.
        The prompts run as ONE batch, left padded with an attention mask, greedy, with
        transformers' own KV cache; a row ends at one of the EOS ids. Prints JSON: each
        row's new tokens (up to and including its EOS) and the raw next-token logits of
        every step as float32 [steps, rows, V] (base64).
"""

import base64
import json
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main(model_dir, spec_path):
    spec = json.load(open(spec_path))
    prompts, n, eos = spec["prompts"], spec["new_tokens"], spec["eos"]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[eos[0]] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos[0], output_logits=True, return_dict_in_generate=True)
    tokens = []
    for row in out.sequences[:, width:].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        tokens.append(row[:end])
    logits = torch.stack(out.logits).float().numpy().astype(np.float32)  # [steps, rows, V]
    print(json.dumps({"tokens": tokens, "logits": base64.b64encode(logits.tobytes()).decode(), "logits_shape": list(logits.shape)}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
