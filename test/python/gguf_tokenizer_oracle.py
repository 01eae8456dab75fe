"""Test oracle for native-models/checkpoint/gguf/tokenizer.ts (never product code).

Usage: python3 gguf_tokenizer_oracle.py WORKDIR

1. Writes small GGUF files (metadata only, no tensors) into WORKDIR:
   - bpe-<pre>.gguf: a byte-level BPE ('gpt2' model) trained here with Python `tokenizers`
     on GPT-2's split (so digits merge: "2024", "12345"), with control tokens
     <|endoftext|> <|im_start|> <|im_end|> and the user-defined token <think>, one file per
     pre-tokenizer name in PRE_NAMES; bpe-llama-bpe-nobos.gguf lacks add_bos_token.
   - spm.gguf: a SentencePiece BPE ('llama' model: scores, byte tokens, no merges) trained
     with the `sentencepiece` package, as llama.cpp's converter writes TinyLlama or Llama 2.
2. Reads WORKDIR/request.json: {"files": [paths], "texts": [...], "decode": [[ids]...],
   "chats": [[{"role", "content"}]...]} (files may also name the real SmolLM2 GGUF) and
   writes WORKDIR/oracle.json with, per file: what transformers' AutoTokenizer
   (from_pretrained(dir, gguf_file=...)) gives, and for byte-level files what llama.cpp
   gives, emulated below from llama.cpp's own regex table (src/llama-vocab.cpp).
"""
import json
import os
import sys

import gguf
import numpy as np
import regex
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!",
    "Human: How do I bake bread at home?\n\nAssistant: Mix flour, water, salt and yeast, then let it rise.",
    "Il était une fois une élève très appliquée à l'école, qui préférait le café crème.",
    "Größe, Übermut und Ärger: schöne Grüße aus München. Привет, как дела? مرحبا بالعالم",
    "東京は日本の首都です。我喜欢学习中文和日本語。한국어도 재미있어요.",
    "Emoji time: 😀😃😄 👍🏽 🇫🇷 ❤️ 🎉🎉🎉",
    "def f(x):\n\tif x > 0:\n\t\treturn x * 2\n    return -x  # spaces   and\ttabs\n",
    "Numbers like 12345, 3.14159 and 2024-12-04 appear in 2024 and 1999; 100 200 300 1234567.",
    "She said: \"don't\", he'd've said 'can't' — it's the user's choice… I'LL DO IT, WE'RE OK.",
    "Multiple   spaces,\n\n\nnewlines and \t\t tabs   everywhere   \n",
]

CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA2 = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe), applied one
# after the other, each splitting the pieces of the one before. GPT-2's is written with the
# trailing "|\s+" that llama.cpp's hand-written GPT-2 splitter implements.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA_CPP = {
    "gpt-2": ([GPT2], False, False),
    "llama-bpe": ([LLAMA3], True, True),  # (regexes, ignore_merges, add_bos when the file does not say)
    "qwen2": ([QWEN2], False, False),
    "smollm": ([r"\p{N}", GPT2], False, False),
    "default": ([r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"], False, False),
}
PRE_NAMES = list(LLAMA_CPP)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>"]


def train_bytelevel():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000, min_frequency=2, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    data = json.loads(tok.to_str())
    tokens = [t for t, _ in sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])]
    merges = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    return tokens, merges


def write_gguf(path, meta):
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    meta(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_bytelevel(workdir):
    tokens, merges = train_bytelevel()
    types = [3 if t in SPECIALS[:3] else 4 if t == "<think>" else 1 for t in tokens]
    for pre in PRE_NAMES + ["llama-bpe-nobos"]:
        def meta(w, pre=pre):
            w.add_tokenizer_model("gpt2")
            w.add_tokenizer_pre(pre.replace("-nobos", ""))
            w.add_token_list(tokens)
            w.add_token_types(types)
            w.add_token_merges(merges)
            w.add_bos_token_id(1)
            w.add_eos_token_id(2)
            w.add_unk_token_id(0)
            w.add_pad_token_id(0)
            if not pre.endswith("-nobos"):
                w.add_add_bos_token(pre == "llama-bpe")
            w.add_chat_template(CHATML)
        write_gguf(os.path.join(workdir, f"bpe-{pre}.gguf"), meta)


def build_spm(workdir):
    import sentencepiece as spm

    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_prefix=prefix, model_type="bpe", vocab_size=600,
        byte_fallback=True, character_coverage=0.98, user_defined_symbols=["<|im_start|>"],
        control_symbols=["<|im_end|>"], num_threads=1, minloglevel=2, hard_vocab_limit=False,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        tokens.append(piece)
        scores.append(sp.get_score(i))
        # llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 4 if piece == "<|im_start|>" else 1)

    def meta(w):
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(sp.bos_id())
        w.add_eos_token_id(sp.eos_id())
        w.add_unk_token_id(sp.unk_id())
        w.add_add_space_prefix(True)
        w.add_chat_template(LLAMA2)

    write_gguf(os.path.join(workdir, "spm.gguf"), meta)
    return sp


def read_meta(path):
    reader = gguf.GGUFReader(path)
    out = {}
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token"):
        field = reader.fields.get(key)
        if field is not None:
            out[key] = field.contents()
    return out


def llama_cpp_encode(meta, texts):
    """Token ids as llama.cpp's BPE tokenizer gives them (parse_special=true): the text cut at
    control and user-defined tokens, each remaining fragment split by the pre-tokenizer's regexes
    in turn, each piece encoded by BPE on its own (whole when ignore_merges and in the vocab)."""
    regexes, ignore_merges, default_bos = LLAMA_CPP[meta["tokenizer.ggml.pre"]]
    add_bos = meta.get("tokenizer.ggml.add_bos_token", default_bos)
    tokens = meta["tokenizer.ggml.tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ")) for m in meta["tokenizer.ggml.merges"]]
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    specials = sorted((t for t, k in zip(tokens, meta["tokenizer.ggml.token_type"]) if k in (3, 4)), key=len, reverse=True)
    special_re = regex.compile("|".join(regex.escape(s) for s in specials))
    out = []
    for text in texts:
        ids = [meta["tokenizer.ggml.bos_token_id"]] if add_bos else []
        pos = 0
        fragments = []
        for m in special_re.finditer(text):
            fragments.append((text[pos:m.start()], False))
            fragments.append((m.group(), True))
            pos = m.end()
        fragments.append((text[pos:], False))
        for fragment, special in fragments:
            if special:
                ids.append(vocab[fragment])
                continue
            pieces = [fragment] if fragment else []
            for expr in regexes:
                split = []
                for piece in pieces:
                    start = 0
                    for m in regex.finditer(expr, piece):
                        if m.start() > start:
                            split.append(piece[start:m.start()])
                        if m.end() > m.start():
                            split.append(m.group())
                        start = m.end()
                    if start < len(piece):
                        split.append(piece[start:])
                pieces = split
            for piece in pieces:
                ids.extend(bpe.encode(piece, add_special_tokens=False).ids)
        out.append(ids)
    return out


def render(tok, chat, gen):
    try:
        return tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
    except Exception as err:  # noqa: BLE001 - the message is the result
        return {"error": str(err)}


def oracle(path, request):
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    texts = request["texts"]
    special = [tok(t)["input_ids"] for t in texts]
    plain = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    vocab_size = len(tok)
    result = {
        "transformers": {
            "special": special,
            "plain": plain,
            "decoded": [tok.decode(ids) for ids in plain],
            "decodedSkip": [tok.decode(ids, skip_special_tokens=True) for ids in special],
            "decode": [tok.decode([i for i in ids if i < vocab_size]) for ids in request["decode"]],
            "chats": [{"gen": render(tok, c, True), "nogen": render(tok, c, False)} for c in request["chats"]],
            "bos": tok.bos_token_id, "eos": tok.eos_token_id, "unk": tok.unk_token_id, "pad": tok.pad_token_id,
            "specialIds": sorted(i for i, t in tok.added_tokens_decoder.items() if t.special),
            "len": vocab_size,
        },
    }
    meta = read_meta(path)
    if meta.get("tokenizer.ggml.model") == "gpt2" and meta.get("tokenizer.ggml.pre") in LLAMA_CPP:
        result["llamacpp"] = llama_cpp_encode(meta, texts)
    return result


def main():
    workdir = sys.argv[1]
    build_bytelevel(workdir)
    build_spm(workdir)
    with open(os.path.join(workdir, "request.json"), encoding="utf-8") as f:
        request = json.load(f)
    result = {os.path.basename(p): oracle(os.path.join(workdir, p), request) for p in request["files"]}
    with open(os.path.join(workdir, "oracle.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
