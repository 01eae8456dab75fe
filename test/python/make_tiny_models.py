"""Tiny random Hugging Face causal LMs and their reference outputs: the oracle of the model
parity tests (native-models/checkpoint/parity.test.ts). A test oracle only, never product
code.

    python3 make_tiny_models.py make OUT_DIR
        Saves tiny GPT2LMHeadModel, LlamaForCausalLM and Qwen2ForCausalLM folders with odd
        shapes under OUT_DIR/<name>/ and writes OUT_DIR/reference.json with, per model,
        the logits and token log-probs of fixed token sequences and the greedy
        continuation transformers generates with its own KV cache.
    python3 make_tiny_models.py logits SPEC_JSON
        SPEC_JSON lists {"dir": ..., "tokens": [[...]]}; prints the logits transformers
        computes for each folder (to check that our exported folders load back).

The references come from the saved folders loaded back in float32, so a model saved in
bf16 or f16 is compared with the values its stored weights give.
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

torch.manual_seed(0)

# Token sequences the tests feed (all ids < the smallest vocabulary, 97).
SEQUENCES = [[3, 17, 42, 5, 96, 11, 60, 2], [8, 8, 1, 77, 23, 50, 4, 31]]
PROMPT = [5, 9, 33, 71, 2]
NEW_TOKENS = 6


def randomize(model):
    """Random weights of a visible size: zero biases and unit norms would hide layout bugs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "ln_" in name:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
            else:
                p.normal_(0.0, 0.15)


def models():
    # GPT-2: head size 20 (40 / 2), an MLP width that is not 4 * n_embd, tied head; saved in f16.
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=40, n_layer=2, n_head=2, n_inner=72,
                                      activation_function="gelu_new", layer_norm_epsilon=1e-5,
                                      bos_token_id=1, eos_token_id=2))
    # Llama: 4 query heads sharing 2 KV heads, head_dim 20 (not hidden / heads = 12), untied,
    # attention and MLP biases, Llama 3 rope scaling with a short original context; saved in bf16.
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=101, hidden_size=48, intermediate_size=88, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=20, max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_theta=5000.0, rope_scaling={"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 2.0, "original_max_position_embeddings": 16},
        attention_bias=True, mlp_bias=True, tie_word_embeddings=False))
    # Qwen2: q/k/v biases, 6 heads over 2 KV heads of size 6, tied embeddings; sharded.
    qwen2 = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=103, hidden_size=36, intermediate_size=60, num_hidden_layers=3, num_attention_heads=6,
        num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=True))
    return [
        ("gpt2", gpt2, {"dtype": torch.float16}),
        ("llama", llama, {"dtype": torch.bfloat16}),
        ("qwen2", qwen2, {"max_shard_size": "20KB"}),
    ]


def run(model, tokens, mask=None):
    with torch.no_grad():
        ids = torch.tensor(tokens, dtype=torch.long)
        return model(input_ids=ids, attention_mask=None if mask is None else torch.tensor(mask)).logits.float()


def make(out_dir):
    reference = {"sequences": SEQUENCES, "prompt": PROMPT, "models": {}}
    for name, model, save in models():
        randomize(model)
        folder = os.path.join(out_dir, name)
        dtype = save.get("dtype")
        (model.to(dtype) if dtype else model).save_pretrained(folder, safe_serialization=True,
                                                              **({"max_shard_size": save["max_shard_size"]} if "max_shard_size" in save else {}))
        loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        logits = run(loaded, SEQUENCES)
        logp = torch.log_softmax(logits, -1)
        targets = torch.tensor(SEQUENCES)[:, 1:]
        token_logp = logp[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            greedy = loaded.generate(torch.tensor([PROMPT]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                     use_cache=True, pad_token_id=0)
        reference["models"][name] = {
            "dir": folder,
            "vocab": loaded.config.vocab_size,
            "logits": logits.flatten().tolist(),
            "token_logprobs": token_logp.tolist(),
            "sequence_logprobs": token_logp.sum(-1).tolist(),
            "greedy": greedy[0, len(PROMPT):].tolist(),
        }
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f)


def logits(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    out = []
    for item in spec:
        model = AutoModelForCausalLM.from_pretrained(item["dir"], dtype=torch.float32).eval()
        out.append(run(model, item["tokens"]).flatten().tolist())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"make": make, "logits": logits}[sys.argv[1]](sys.argv[2])
