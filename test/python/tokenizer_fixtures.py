"""Test oracle for native-models/tokenizer (never product code).

Usage: python3 tokenizer_fixtures.py WORKDIR

1. Builds tokenizer folders with Python `tokenizers` + transformers into WORKDIR:
   - py-bytelevel: GPT-2 style byte-level BPE, saved by transformers' save_pretrained
     (v5 layout: tokenizer_config.json + chat_template.jinja), ChatML template.
   - py-llama: Llama style (Metaspace prepend "first", split off; BPE with byte
     fallback; <0x00>..<0xFF> in the vocab; "<s> $A" post-processor), written by hand
     the way older Hub checkpoints look: tokenizer_config.json with add_bos_token,
     added_tokens_decoder and a list of named chat templates.
   - py-llama-legacy: the same vocabulary with the legacy sentencepiece layout
     (Prepend + Replace normalizer, no pre-tokenizer), special_tokens_map.json and
     no added_tokens_decoder (so transformers reads that file).
   - py-extra-specials: py-llama's tokenizer.json with a config whose special tokens
     are missing from it (transformers adds them and assigns ids).
2. Reads WORKDIR/request.json: {"folders": [{"folder", "texts", "decode", "chats", "tokens"}],
   "train": {"corpus", "vocab_size", "special_tokens", "min_frequency"}} and writes
   WORKDIR/oracle.json: what transformers' AutoTokenizer produces for each folder, and
   the vocab and merges of Python's BpeTrainer (byte-level, GPT-2 alphabet) on the corpus.
"""
import json
import os
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!",
    "Human: How do I bake bread at home?\n\nAssistant: Mix flour, water, salt and yeast, then let it rise.",
    "Il était une fois une élève très appliquée à l'école, qui préférait le café crème.",
    "Größe, Übermut und Ärger: schöne Grüße aus München.",
    "東京は日本の首都です。我喜欢学习中文和日本語。한국어도 재미있어요.",
    "Emoji time: 😀😃😄 👍🏽 🇫🇷 👨‍👩‍👧‍👦 ❤️ 🎉🎉🎉",
    "def f(x):\n\tif x > 0:\n\t\treturn x * 2\n    return -x  # spaces   and\ttabs\n",
    "Numbers like 12345, 3.14159 and 2024-06-01 appear in text; so do URLs: https://example.com/a?b=c.",
    "She said: \"don't\", he'd've said 'can't' — it's the user's choice…",
    "Multiple   spaces,\n\n\nnewlines and \t\t tabs   everywhere   \n",
]


def corpus(repeat=30):
    out = []
    for r in range(repeat):
        for i, line in enumerate(CORPUS):
            # A little variety so that frequencies differ.
            out.append(line if (r + i) % 3 else line.lower())
    return out


CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '' }}{% endif %}"
)

TOOL_USE = "{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}"


def build_bytelevel(out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=700, min_frequency=2, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        chat_template=CHATML, model_max_length=512,
    )
    fast.save_pretrained(out)


def llama_vocab():
    # Train merges on whitespace-split words (as sentencepiece does), then lay the vocab out
    # like Llama's: <unk> <s> </s>, the 256 byte tokens, then the learned pieces.
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=900, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    data = json.loads(tok.to_str())
    trained = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in trained:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in data["model"]["merges"]]
    return vocab, merges


def llama_tokenizer(vocab, merges, legacy):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<unk>", "<s>", "</s>"]])
    if legacy:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def added(content):
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}


def build_llama(out, vocab, merges):
    os.makedirs(out, exist_ok=True)
    llama_tokenizer(vocab, merges, legacy=False).save(os.path.join(out, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": {"__type": "AddedToken", **added("<s>")},
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1000000000000000019884624838656,
        "added_tokens_decoder": {"0": added("<unk>"), "1": added("<s>"), "2": added("</s>")},
        "chat_template": [{"name": "default", "template": LLAMA2}, {"name": "tool_use", "template": TOOL_USE}],
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)


def build_llama_legacy(out, vocab, merges):
    os.makedirs(out, exist_ok=True)
    llama_tokenizer(vocab, merges, legacy=True).save(os.path.join(out, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": True,  # ignored for BPE models by transformers v5
        "chat_template": LLAMA2,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    # Read by transformers only because tokenizer_config.json has no added_tokens_decoder.
    with open(os.path.join(out, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}, f, indent=2)


def build_extra_specials(out, vocab, merges):
    os.makedirs(out, exist_ok=True)
    llama_tokenizer(vocab, merges, legacy=False).save(os.path.join(out, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "additional_special_tokens": ["<|tool|>"],
        # The key is not the id the token gets: the backend assigns the next free id.
        "added_tokens_decoder": {"900": {**added("<x>"), "special": False}},
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)


def oracle(entry, workdir):
    folder = os.path.join(workdir, entry["folder"])
    tok = AutoTokenizer.from_pretrained(folder)
    out = {
        "len": len(tok),
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "pad": tok.pad_token_id,
        "unk": tok.unk_token_id,
        "tokenIds": [tok.convert_tokens_to_ids(t) for t in entry.get("tokens", [])],
        "encode": [],
        "decode": [],
        "chats": [],
    }
    for text in entry.get("texts", []):
        ids = tok.encode(text, add_special_tokens=True)
        plain = tok.encode(text, add_special_tokens=False)
        out["encode"].append({
            "special": ids,
            "plain": plain,
            "decoded": tok.decode(ids),
            "decodedSkip": tok.decode(ids, skip_special_tokens=True),
        })
    for ids in entry.get("decode", []):
        out["decode"].append({"text": tok.decode(ids), "skip": tok.decode(ids, skip_special_tokens=True)})
    for chat in entry.get("chats", []):
        result = {}
        for gen in (False, True):
            try:
                result["gen" if gen else "nogen"] = tok.apply_chat_template(
                    chat["messages"], chat_template=chat.get("template"), tokenize=False, add_generation_prompt=gen,
                )
            except Exception as e:  # e.g. the template's raise_exception
                result["gen" if gen else "nogen"] = {"error": str(e)}
        out["chats"].append(result)
    return out


def hf_train(spec, workdir):
    with open(os.path.join(workdir, spec["corpus"]), encoding="utf-8") as f:
        texts = json.load(f)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"], min_frequency=spec["min_frequency"], special_tokens=spec["special_tokens"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    return {"vocab": model["vocab"], "merges": merges}


def main():
    workdir = sys.argv[1]
    vocab, merges = llama_vocab()
    build_bytelevel(os.path.join(workdir, "py-bytelevel"))
    build_llama(os.path.join(workdir, "py-llama"), vocab, merges)
    build_llama_legacy(os.path.join(workdir, "py-llama-legacy"), vocab, merges)
    build_extra_specials(os.path.join(workdir, "py-extra-specials"), vocab, merges)
    with open(os.path.join(workdir, "request.json"), encoding="utf-8") as f:
        request = json.load(f)
    result = {"folders": {entry["folder"]: oracle(entry, workdir) for entry in request["folders"]}}
    if request.get("train"):
        result["train"] = hf_train(request["train"], workdir)
    with open(os.path.join(workdir, "oracle.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
