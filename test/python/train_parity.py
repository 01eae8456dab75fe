"""The PyTorch side of the training parity tests (test/parity/training-parity.test.ts): a
test oracle only, never product code.

    python3 train_parity.py SPEC_JSON

SPEC_JSON lists cases that our engine has already trained. For each one this script loads
the same initial weights (a Hugging Face folder, overridden by the case's init safetensors
of every trained tensor), trains on the same rows in the same order with its own reading
of the objective, the optimizer groups, the learning-rate schedule and the clipping, and
prints one JSON line: per-step losses, gradient norms and learning rates, and the path of
a safetensors file with the final trained tensors under our names.

It is written from the maths and the documented conventions, not from our code:

- a row is (ids, start): prompt ids[:start], response ids[start:]; the model reads
  ids[:-1] and predicts ids[1:]; the response-only loss counts the targets ids[j] with
  j >= start (Hugging Face's labels with -100 on the prompt). Batches are right-padded and
  carry an attention mask.
- optimizer: torch.optim.AdamW with two groups, weight decay on tensors of two or more
  dimensions (matrices, embeddings, LoRA factors, the score head's weight) and none on
  biases and norm gains; the gradient norm clipped over the trained tensors only
  (clip_grad_norm_, whose returned norm is the one before clipping); the learning rate by
  LambdaLR, stepped after each optimizer step: step t (0-based) of n warms up linearly as
  lr (t + 1) / W for t < W = ceil(warmup * n), then decays along a cosine to lr / 10 at
  t = n.
- LoRA (hand-written, no peft): every attention and MLP projection of every block gets
  y += (alpha / r) (x A) B with A [in, r], B [r, out]; only A and B train.
- the scorer: a Linear(D, 1) head on the final hidden state (after the last norm) at the
  last real input position (the row's last id is a target only, so that is ids[-2]).
- DFT (dynamic fine-tuning): -sum_t m_t sg(p_t) log p_t / sum_t m_t over the response
  targets, p_t the target token's probability and sg() a detached copy (Wu et al. 2025's
  one-line change to SFT's token-mean cross-entropy).
- DPO: -mean log sigmoid(beta [(log pi - log ref)(chosen) - (log pi - log ref)(rejected)])
  with summed response log-probabilities, the reference frozen.
- policy gradient: rewards minus beta (log pi - log ref) of each sample (summed over the
  response, the policy's at the start of the step), RLOO (reward minus the mean of the
  other k - 1 of its prompt) or GRPO advantages over each prompt's k consecutive rows,
  loss -mean(A log pi).

A case may name `breaks`: the same training with one deliberately wrong setting, which the
test requires to disagree with ours (proof that the comparison can fail):
  decay-all            weight decay on every tensor, biases and norms included
  lora-alpha-x2        the LoRA scale doubled
  unmask-prompt-token  the last prompt token counted as a target
  schedule-shift       the learning-rate schedule one step ahead
  head-last-column     the score read at the batch's last column, padding or not
  no-clip              no gradient clipping
  ref-swapped          DPO with the reference's chosen and rejected log-probabilities swapped
  kl-sign              the KL term added to the reward instead of subtracted
  micro-mean           accumulation as the mean of micro-batch means (not the whole batch's mean)
  dft-weight-grad      DFT's weight p_t not detached (the gradient also flows through it)
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

BREAKS = {"decay-all", "lora-alpha-x2", "unmask-prompt-token", "schedule-shift", "head-last-column", "no-clip",
          "ref-swapped", "kl-sign", "micro-mean", "dft-weight-grad"}


def load_lm(folder):
    # eval(): GPT-2 folders carry Hugging Face's default dropout of 0.1; our engine has none.
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def backbone(lm):
    """The decoder without its LM head (GPT2Model / LlamaModel): last_hidden_state is after the final norm."""
    return lm.transformer if hasattr(lm, "transformer") else lm.model


class LoraAdapter(torch.nn.Module):
    """y = base(x) + scale (x A) B around a frozen projection (nn.Linear or GPT-2's Conv1D)."""

    def __init__(self, base, n_in, n_out, rank, scale):
        super().__init__()
        self.base, self.scale = base, scale
        self.lora_A = torch.nn.Parameter(torch.zeros(n_in, rank))
        self.lora_B = torch.nn.Parameter(torch.zeros(rank, n_out))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A) * self.scale @ self.lora_B


def projections(lm):
    """(module name, module, in, out) of every attention and MLP projection in the blocks."""
    out = []
    for name, m in lm.named_modules():
        in_block = ".h." in name or ".layers." in name
        if not in_block or not (".attn." in name or ".self_attn." in name or ".mlp." in name):
            continue
        if isinstance(m, torch.nn.Linear):
            out.append((name, m, m.in_features, m.out_features))
        elif type(m).__name__ == "Conv1D":  # GPT-2: weight [in, out]
            out.append((name, m, m.weight.shape[0], m.weight.shape[1]))
    return out


def add_lora(lm, rank, alpha):
    """Wraps every projection; returns {name: adapter module}."""
    for p in lm.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for name, m, n_in, n_out in projections(lm):
        parent_name, child = name.rsplit(".", 1)
        wrapped[name] = LoraAdapter(m, n_in, n_out, rank, alpha / rank)
        setattr(lm.get_submodule(parent_name), child, wrapped[name])
    return wrapped


def merged_weights(wrapped):
    """W + scale (A B) in each base weight's own layout, under the Hugging Face names."""
    out = {}
    for name, m in wrapped.items():
        delta = m.scale * (m.lora_A @ m.lora_B)  # [in, out]
        w = m.base.weight
        out[f"{name}.weight"] = (w + (delta if type(m.base).__name__ == "Conv1D" else delta.T)).detach().clone()
    return out


def lr_factor(t, n, warmup_fraction, shift):
    t = t + shift
    w = math.ceil(warmup_fraction * n)
    if t < w:
        return (t + 1) / w
    progress = min(1.0, (t - w) / max(1, n - w))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class Batch:
    """Right-padded rows: inputs ids[:-1], targets ids[1:], the response mask, real-token mask, last positions."""

    def __init__(self, rows, pad, unmask_prompt=False):
        width = max(len(ids) for ids, _ in rows) - 1
        b = len(rows)
        self.inputs = torch.full((b, width), pad, dtype=torch.long)
        self.targets = torch.full((b, width), pad, dtype=torch.long)
        self.response = torch.zeros(b, width)
        self.attention = torch.zeros(b, width, dtype=torch.long)
        self.last = torch.zeros(b, dtype=torch.long)
        for i, (ids, start) in enumerate(rows):
            n = len(ids) - 1
            self.inputs[i, :n] = torch.tensor(ids[:-1])
            self.targets[i, :n] = torch.tensor(ids[1:])
            self.attention[i, :n] = 1
            # Targets ids[j] with j >= first count; ids[j] is predicted at position j - 1.
            first = start - 1 if unmask_prompt else start
            self.response[i, max(0, first - 1):n] = 1
            self.last[i] = n - 1


def token_logprobs(lm, batch):
    logits = lm(input_ids=batch.inputs, attention_mask=batch.attention).logits
    return torch.log_softmax(logits, -1).gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)  # [B, T]


def sequence_logprobs(lm, batch):
    return (token_logprobs(lm, batch) * batch.response).sum(1)


def run_case(case, brk):
    torch.manual_seed(0)
    lm = load_lm(case["model"])
    adaptation = case["adaptation"]
    init = load_file(case["init"])
    trained = {}
    wrapped = None
    if adaptation["kind"] == "lora":
        alpha = adaptation["alpha"] * (2 if brk == "lora-alpha-x2" else 1)
        wrapped = add_lora(lm, adaptation["rank"], alpha)
        for name, m in wrapped.items():
            trained[f"{name}.lora_A"], trained[f"{name}.lora_B"] = m.lora_A, m.lora_B
    else:
        # Tied weights appear once, under the first name (transformer.wte / model.embed_tokens).
        trained.update(dict(lm.named_parameters()))
    head = None
    if case["objective"] in ("bce", "bt"):
        d = lm.config.hidden_size
        head = torch.nn.Linear(d, 1)
        trained["score.weight"], trained["score.bias"] = head.weight, head.bias
    with torch.no_grad():
        for name, p in trained.items():
            if name not in init:
                raise SystemExit(f"{case['name']}: the init file has no tensor {name}; our side trains another set of tensors")
            value = init[name]
            if name == "score.weight":
                value = value.T  # ours [D, 1], Linear's [1, D]
            p.copy_(value.reshape(p.shape))
        missing = sorted(set(init) - set(trained))
        if missing:
            raise SystemExit(f"{case['name']}: our side trains tensors this oracle does not: {missing[:5]}")
    reference = load_lm(case["reference"]) if case.get("reference") else None

    opt = case["optimizer"]
    params = list(trained.values())
    decay = [p for p in params if p.dim() >= 2 or brk == "decay-all"]
    no_decay = [p for p in params if not (p.dim() >= 2 or brk == "decay-all")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": opt["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=opt["lr"], betas=(0.9, 0.999), eps=1e-8)
    n = len(case["steps"])
    shift = 1 if brk == "schedule-shift" else 0
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_factor(t, n, opt["warmup"], shift))
    pad = case["pad"]
    objective = case["objective"]
    out = {"name": case["name"], "break": brk, "losses": [], "grad_norms": [], "lrs": []}
    extra = out.setdefault("extra", {})

    def scores(batch):
        h = backbone(lm)(input_ids=batch.inputs, attention_mask=batch.attention).last_hidden_state
        pos = torch.full_like(batch.last, batch.inputs.shape[1] - 1) if brk == "head-last-column" else batch.last
        return head(h[torch.arange(len(pos)), pos]).squeeze(-1)

    for step in case["steps"]:
        rows = [(r["ids"], r["start"]) for r in step["rows"]]
        optimizer.zero_grad(set_to_none=True)
        unmask = brk == "unmask-prompt-token"
        if objective == "sft":
            groups = step.get("micro") if brk == "micro-mean" else None
            if groups:
                # The naive accumulation: each micro-batch's token mean, averaged.
                loss = sum(F.cross_entropy(*sft_terms(lm, Batch([rows[i] for i in g], pad, unmask))) for g in groups) / len(groups)
            else:
                loss = F.cross_entropy(*sft_terms(lm, Batch(rows, pad, unmask)))
        elif objective == "dft":
            batch = Batch(rows, pad, unmask)
            logp = token_logprobs(lm, batch)
            weight = logp.exp() if brk == "dft-weight-grad" else logp.exp().detach()
            loss = -(weight * logp * batch.response).sum() / batch.response.sum()
        elif objective == "bce":
            s = scores(Batch(rows, pad))
            loss = F.binary_cross_entropy_with_logits(s, torch.tensor(step["labels"], dtype=torch.float32))
        elif objective == "bt":
            s = scores(Batch(rows, pad))
            c = torch.tensor([p[0] for p in step["pairs"]]); r = torch.tensor([p[1] for p in step["pairs"]])
            loss = -F.logsigmoid(s[c] - s[r]).mean()
        elif objective == "dpo":
            batch = Batch(rows, pad, unmask)
            logp = sequence_logprobs(lm, batch)
            with torch.no_grad():
                ref = sequence_logprobs(reference, batch)
            c = torch.tensor([p[0] for p in step["pairs"]]); r = torch.tensor([p[1] for p in step["pairs"]])
            rc, rr = (ref[r], ref[c]) if brk == "ref-swapped" else (ref[c], ref[r])
            loss = -F.logsigmoid(case["beta"] * ((logp[c] - rc) - (logp[r] - rr))).mean()
            extra.setdefault("ref_logp", []).append(ref.tolist())
        elif objective == "pg":
            batch = Batch(rows, pad, unmask)
            logp = sequence_logprobs(lm, batch)
            with torch.no_grad():
                ref = sequence_logprobs(reference, batch)
            sign = -1.0 if brk == "kl-sign" else 1.0
            penalized = torch.tensor(step["rewards"], dtype=torch.float64) - sign * case["beta"] * (logp.detach().double() - ref.double())
            adv = advantages(penalized, case["k"], case["estimator"]).float()
            loss = -(adv * logp).mean()
            extra.setdefault("policy_logp", []).append(logp.tolist())
            extra.setdefault("ref_logp", []).append(ref.tolist())
        else:
            raise SystemExit(f"unknown objective {objective}")
        loss.backward()
        clip = opt["clipNorm"]
        if brk == "no-clip":
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        out["lrs"].append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
        out["losses"].append(loss.item())
        out["grad_norms"].append(norm.item())

    final = {name: p.detach().clone().contiguous() for name, p in trained.items()}
    if "score.weight" in final:
        final["score.weight"] = final["score.weight"].T.contiguous()
    if wrapped is not None:
        final.update({f"merged:{k}": v for k, v in merged_weights(wrapped).items()})
    path = case["out"] if brk is None else case["out"].replace(".safetensors", f".{brk}.safetensors")
    save_file(final, path)
    out["weights"] = path
    return out


def sft_terms(lm, batch):
    """Logits and labels for F.cross_entropy over the response targets only (-100 elsewhere)."""
    logits = lm(input_ids=batch.inputs, attention_mask=batch.attention).logits
    labels = torch.where(batch.response > 0, batch.targets, torch.full_like(batch.targets, -100))
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)


def advantages(rewards, k, estimator):
    groups = rewards.reshape(-1, k)
    if estimator == "rloo":
        others = (groups.sum(1, keepdim=True) - groups) / (k - 1)
        return (groups - others).reshape(-1)
    mean = groups.mean(1, keepdim=True)
    std = groups.std(1, unbiased=False, keepdim=True)
    return ((groups - mean) / (std + 1e-6)).reshape(-1)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    for case in spec["cases"]:
        for brk in [None, *case.get("breaks", [])]:
            if brk is not None and brk not in BREAKS:
                raise SystemExit(f"{case['name']}: unknown break {brk!r} (known: {sorted(BREAKS)})")
            print(json.dumps(run_case(case, brk)), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    # fp32 means fp32: no reduced-precision matmuls.
    torch.set_float32_matmul_precision("highest")
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1])
