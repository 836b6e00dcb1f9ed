#!/usr/bin/env python3
"""Makes the tokenizer test fixtures under tests/tokenizer/fixtures from HF.

    python3 tools/make_tokenizer_fixtures.py [--shared ../shared]

Reference: transformers AutoTokenizer (fast, i.e. HF `tokenizers` in Rust)
loaded from ../shared/tokenizers/qwen2 (vocab.json + merges.txt layout), and
transformers apply_chat_template for the chat templates (template sources are
PyPI copies: trl/chat_templates/*.jinja and the Qwen2 tokenizer_config).

Files written (all small; the corpus texts themselves are NOT copied, the C
test reads them from ../shared/data):
  qwen2_corpus.txt   one line per corpus text: "<file> <line> <field> <count> <hash>"
                     hash = FNV-1a 64 over the ids as little-endian uint32.
  qwen2_hard.txt     "<hex input bytes>\t<ids>\t<hex HF decode>" per hard string.
                     Invalid UTF-8 cannot reach HF (Rust &str / Python str):
                     the reference is HF on bytes.decode('utf-8', 'replace'),
                     which is what the C encoder does with invalid input.
  tiny_*.json        small synthetic tokenizer.json files trained with
                     `tokenizers` (merges as pairs and as "a b" strings, Qwen2
                     and Llama 3 regex with ignore_merges, GPT-2 ByteLevel regex) + tiny_slow/ (same
                     model as vocab.json + merges.txt with CRLF line ends).
  tiny_cases.txt     "<tokenizer files>\t<hex input>\t<ids>" for those.
  chat.json          chat template cases rendered by apply_chat_template.
"""
import argparse
import json
import os
import unicodedata

FNV_OFF = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def fnv(ids, every=0):
    """FNV-1a 64 of the ids (u32 little-endian); with every > 0 also the low
    32 bits of the running hash after each `every` ids (to locate a mismatch)."""
    h = FNV_OFF
    marks = []
    for k, i in enumerate(ids):
        for b in int(i).to_bytes(4, "little"):
            h ^= b
            h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
        if every and (k + 1) % every == 0:
            marks.append(h & 0xFFFFFFFF)
    return (h, marks) if every else h


def corpus(shared):
    """(file, line, field, text) in the order the C test reads them."""
    out = []
    for rel, fields in (("data/gsm8k/test.jsonl", ("question", "answer")),
                        ("data/math500/test.jsonl", ("problem", "solution"))):
        with open(os.path.join(shared, rel), encoding="utf-8") as f:
            for ln, line in enumerate(f):
                row = json.loads(line)
                for fi, key in enumerate(fields):
                    out.append((rel, ln, fi, row[key]))
    return out


HARD = [
    "", "a", " ", "  ", "hello world", "Hello World!", "   leading spaces", "trailing   ",
    "tabs\tand\t\ttabs", "line\nbreak", "crlf\r\nline\r\n\r\nend", "lone\rcr", "\n\n\n", " \n ",
    "a  \n  b", "x \t\n\t y", "1234567890", "3.14159 2718281828 000", "12 345 6789",
    "x=1+2*3-4/5", "$$\\frac{1}{2}$$", "\\boxed{42}",
    "I'm you're he's we've they'll I'd it's", "I'M YOU'RE HE'S WE'VE THEY'LL I'D IT'S",
    "We'Re tHeY'lL dOn'T", "don't won't can't", "'s 's 'S", "rock 'n' roll",
    "caf\u00e9", "cafe\u0301", "\u212b ngstr\u00f6m", "e\u0301\u0302\u0323", "\u1e9b\u0323",
    "\u1100\u1161\u11a8", "\u00c5\u0041\u030a", "\uff21\uff22\uff23 \uff11\uff12\uff13",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u0661\u0662\u0663",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440", "\u03b1\u03b2\u03b3 \u0394x",
    "\U0001F600\U0001F601 smile", "\U0001F469\u200d\U0001F4bb coder", "\U0001F1EB\U0001F1F7 flag",
    "\U0001F44D\U0001F3FD thumbs", "\u2764\ufe0f love", "a\u200bb\u200cc\u200dd",
    "nbsp\u00a0here", "ideo\u3000space", "nel\u0085x", "ls\u2028ps\u2029", "vt\x0bff\x0c",
    "mvs\u180e\\Sb \u180e x\u180e\u180e", "fs\x1c\x1dgs\x1e\x1fus",
    "\u00b2\u00b3 \u2165 \u00bd \u0967\u0968", "x\u0300\u0301", "\u0301start",
    "\ufeffbom", "\u00ad soft hyphen", "\x00nul\x01\x7f", "\u00ff\u0100\u0143",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>", "a<|im_end|>b", "<|im_start", "<|im_start|", "<<|im_end|>>",
    "<|im_start|><|im_end|>", " <|endoftext|> ", "<think>\nhmm\n</think>\n\nok",
    "x" * 300, " " * 50 + "x", "9" * 40, "\n" * 20 + "end", "!!!???...,,,", "a.b.c",
    "http://example.com/path?q=1&r=2", "snake_case_name camelCaseName", "user@example.com",
    "\u00e9" * 30, "\U0001F600" * 10,
]

# Raw byte strings that are not valid UTF-8.
HARD_BYTES = [
    b"\xff", b"abc\xc3", b"\xe2\x82", b"\xed\xa0\x80x", b"\xf4\x90\x80\x80", b"\xc0\xaf",
    b"\xf0\x9f\x98 ok", b"mid\x80dle", b"\xe2\x28\xa1", b"\xf8\x88\x80\x80\x80",
]


def trained_tokenizers(texts):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, trainers)
    out = {}
    for name, pat, ignore in (("qwen2", QWEN2_RE, False), ("llama3", LLAMA3_RE, True),
                              ("gpt2", None, False)):
        tok = Tokenizer(models.BPE(ignore_merges=ignore))
        if pat is None:  # GPT-2: ByteLevel's own regex, no normalizer
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        else:
            tok.normalizer = normalizers.NFC()
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                         use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=700, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        tok.train_from_iterator(texts, trainer)
        tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                        AddedToken("</think>", special=False, normalized=False)])
        out[name] = tok
    return out


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "tokenizer", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    from transformers import AutoTokenizer
    qdir = os.path.join(args.shared, "tokenizers", "qwen2")
    tok = AutoTokenizer.from_pretrained(qdir)
    assert tok.is_fast

    def enc(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    # Corpus: counts + hashes only.
    texts = corpus(args.shared)
    with open(os.path.join(args.out, "qwen2_corpus.txt"), "w") as f:
        f.write("# file(0 gsm8k/test, 1 math500/test) line field count fnv1a64(ids as u32le) "
                "[low 32 bits of the running hash after every 128 ids]...\n")
        files = {"data/gsm8k/test.jsonl": 0, "data/math500/test.jsonl": 1}
        for rel, ln, fi, text in texts:
            ids = enc(text)
            dec = tok.decode(ids)
            assert dec == unicodedata.normalize("NFC", text), (rel, ln, fi)
            h, marks = fnv(ids, 128)
            extra = "".join(f" {m:08x}" for m in marks)
            f.write(f"{files[rel]} {ln} {fi} {len(ids)} {h:016x}{extra}\n")

    # Hard strings: full ids.
    with open(os.path.join(args.out, "qwen2_hard.txt"), "w") as f:
        f.write("# hex(input bytes)\tids\thex(HF decode); invalid UTF-8 goes to HF as "
                "bytes.decode('utf-8','replace')\n")
        for raw in [s.encode("utf-8", "surrogatepass") for s in HARD] + HARD_BYTES:
            s = raw.decode("utf-8", "replace")
            ids = enc(s)
            dec = tok.decode(ids).encode("utf-8")
            f.write(f"{raw.hex() or '-'}\t{' '.join(map(str, ids)) or '-'}\t{dec.hex() or '-'}\n")

    # Synthetic tokenizer.json files (trained on a corpus slice).
    trained = trained_tokenizers([t for _, _, _, t in texts[:600]])
    cases = []
    samples = [s.encode() for s in HARD[:70]] + HARD_BYTES[:4] + [b"xyz qqq 1234 axyz"] + \
        [t.encode() for _, _, _, t in texts[1000:1004]]
    for name, t in trained.items():
        js = json.loads(t.to_str())
        assert isinstance(js["model"]["merges"][0], list)  # tokenizers >= 0.20: pairs
        if name == "llama3":  # words no merge sequence builds: only ignore_merges finds them
            from tokenizers import Tokenizer
            top = max(list(js["model"]["vocab"].values()) + [a["id"] for a in js["added_tokens"]])
            for k, w in enumerate(("xyz", "\u0120qqq", "123")):
                js["model"]["vocab"].setdefault(w, top + 1 + k)
            t = Tokenizer.from_str(json.dumps(js))
        fn = f"tiny_{name}_pairs.json"
        with open(os.path.join(args.out, fn), "w") as f:
            json.dump(js, f, ensure_ascii=False, separators=(",", ":"))
        files = [fn]
        if name == "qwen2":
            legacy = json.loads(json.dumps(js))
            legacy["model"]["merges"] = [" ".join(m) for m in legacy["model"]["merges"]]
            with open(os.path.join(args.out, "tiny_qwen2_strings.json"), "w") as f:
                json.dump(legacy, f, ensure_ascii=False, indent=1)
            files.append("tiny_qwen2_strings.json")
            # Same model as the slow layout, CRLF line ends.
            sd = os.path.join(args.out, "tiny_slow")
            os.makedirs(sd, exist_ok=True)
            vocab = {k: v for k, v in js["model"]["vocab"].items()}
            with open(os.path.join(sd, "vocab.json"), "w", newline="") as f:
                f.write(json.dumps(vocab, ensure_ascii=False, indent=1).replace("\n", "\r\n"))
            with open(os.path.join(sd, "merges.txt"), "w", newline="") as f:
                f.write("#version: 0.2\r\n")
                for a, b in js["model"]["merges"]:
                    f.write(f"{a} {b}\r\n")
            dec = {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                        "single_word", "special")}
                   for a in js["added_tokens"]}
            with open(os.path.join(sd, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": dec,
                           "eos_token": "<|im_end|>"}, f, indent=1)
            files.append("tiny_slow")
        for raw in samples:  # the files of one model share its expected ids
            ids = t.encode(raw.decode("utf-8", "replace")).ids
            cases.append(f"{','.join(files)}\t{raw.hex() or '-'}\t{' '.join(map(str, ids)) or '-'}\n")
    with open(os.path.join(args.out, "tiny_cases.txt"), "w") as f:
        f.write("# tokenizer files (comma-separated)\thex(input)\tids (HF tokenizers)\n")
        f.writelines(cases)

    chat(args, qdir)


def chat(args, qdir):
    import trl
    from transformers import AutoTokenizer
    tdir = os.path.join(os.path.dirname(trl.__file__), "chat_templates")
    tok = AutoTokenizer.from_pretrained(qdir)
    with open(os.path.join(qdir, "tokenizer_config.json")) as f:
        qwen2_base = json.load(f)["chat_template"]
    qwen2_instruct = (  # Qwen2-*-Instruct tokenizer_config.json chat_template
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

    def read(n):
        with open(os.path.join(tdir, n)) as f:
            return f.read()
    templates = {"qwen2-base": qwen2_base, "qwen2": qwen2_instruct,
                 "qwen2.5": read("qwen2_5.jinja"), "qwen3": read("qwen3.jinja"),
                 "llama3": read("llama3.jinja")}
    convs = [
        [{"role": "user", "content": "What is 2+2?"}],
        [{"role": "system", "content": "Reason step by step."},
         {"role": "user", "content": "Solve x^2=4.\nGive both roots."}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "  Sum 1..10?  "}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
         {"role": "assistant", "content": "<think>\nr1\n</think>\n\nA1"},
         {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}],
    ]
    cases = []
    for name, src in templates.items():
        for ci, msgs in enumerate(convs):
            for agp in (True, False):
                for think in ((True, False) if name == "qwen3" else (None,)):
                    kw = {"enable_thinking": think} if think is not None else {}
                    bos = "<|begin_of_text|>" if name == "llama3" else None
                    s = tok.apply_chat_template(msgs, chat_template=src, tokenize=False,
                                                add_generation_prompt=agp, bos_token=bos, **kw)
                    cases.append({"template": name, "conversation": ci, "add_generation_prompt": agp,
                                  "enable_thinking": think if think is not None else True,
                                  "expected": s})
    with open(os.path.join(args.out, "chat.json"), "w") as f:
        json.dump({"conversations": convs, "templates": templates, "cases": cases}, f,
                  ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
