#!/usr/bin/env python3
"""make_gemma4_tokenizer_fixture.py -- a synthetic Gemma 4 tokenizer and llama.cpp's ids for it.

No real Gemma 4 tokenizer is available offline, so this script makes one with the
same shape: a BPE vocabulary learned from tests/fixtures/tokenizer/gemma4_corpus.txt
(multilingual prose and code) by a plain BPE trainer, laid out as the llama.cpp
converter (conversion/gemma.py, Gemma4Model.set_vocab) writes a Gemma 4 GGUF:

  ids 0..4      <pad> <eos> <bos> <unk> <mask>              CONTROL
  ids 5..104    Gemma 4 markup (<|channel>, <|tool_call>, ...) and <unusedN>
  ids 105, 106  <|turn> <turn|>                             CONTROL
  then          "</s>", the 256 byte tokens <0x00>..<0xFF>   BYTE
                newline runs "\\n" x 1..8, the characters seen at least twice,
                then one token per learned merge             NORMAL
  scores        -1000 for every token (LlamaHfVocab.get_token_score)
  merges        "left right", rank = index; spaces are U+2581 throughout

It then asks llama.cpp itself (PyPI llama-cpp-python, vocab-only load) for the
ids of many texts and writes, in tests/fixtures/tokenizer/:

  gemma4_vocab.gguf  the vocabulary (general.architecture = gemma4, no tensors)
  gemma4.tsv         hex(text) TAB ids TAB hex(detokenized)   add_bos, parse_special
  gemma4_raw.tsv     hex(text) TAB ids                        no BOS, no parse_special
  gemma4_detok.tsv   id TAB hex(token_to_piece(id, special=false)) for every id
  gemma4_chat.tsv    hex(system) or - TAB hex(user) TAB hex(prompt)
                     the official Gemma 4 Jinja template (--template FILE, e.g.
                     llama.cpp's models/templates/google-gemma-4-31B-it.jinja)
                     rendered with jinja2 as transformers does, thinking off

Lines starting with '#' are comments naming the versions.  Everything is
deterministic, so a rerun with the same llama.cpp gives identical files.

Usage: make_gemma4_tokenizer_fixture.py --template google-gemma-4-31B-it.jinja [--out DIR]
Needs: llama-cpp-python (0.3.36 made the committed files), gguf, jinja2.
"""
import argparse
import collections
import ctypes
import hashlib
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXDIR = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

SP = "\u2581"
N_MERGES = 1800          # learned merges (fewer if pairs run out before)
CONTROL, USER_DEFINED, NORMAL, BYTE = 3, 4, 1, 6

# ---------------------------------------------------------------- vocabulary

HEAD = [("<pad>", CONTROL), ("<eos>", CONTROL), ("<bos>", CONTROL), ("<unk>", CONTROL),
        ("<mask>", CONTROL)]
# Markup of the Gemma 4 chat template.  The converter writes these seven as
# USER_DEFINED ("visible_tokens"); the rest as the tokenizer's special set.
MARKUP = [("<|channel>", USER_DEFINED), ("<channel|>", USER_DEFINED),
          ("<|tool_call>", USER_DEFINED), ("<tool_call|>", USER_DEFINED),
          ("<|tool_response>", USER_DEFINED), ("<tool_response|>", USER_DEFINED),
          ('<|"|>', USER_DEFINED), ("<|think|>", CONTROL), ("<|tool>", CONTROL),
          ("<tool|>", CONTROL), ("<|image>", CONTROL), ("<image|>", CONTROL),
          ("<|audio>", CONTROL), ("<audio|>", CONTROL), ("<|image|>", CONTROL),
          ("<|audio|>", CONTROL), ("<|video|>", CONTROL)]
TURN = [("<|turn>", CONTROL), ("<turn|>", CONTROL)]


def read_corpus():
    with open(os.path.join(FIXDIR, "gemma4_corpus.txt"), encoding="utf-8", newline="") as f:
        return f.read()


def runs(text):
    """The gemma4 pre-split: runs of newlines and runs of anything else."""
    out, at = [], 0
    while at < len(text):
        nl = text[at] == "\n"
        end = at + 1
        while end < len(text) and (text[end] == "\n") == nl:
            end += 1
        out.append(text[at:end])
        at = end
    return out


def training_text(corpus):
    """The corpus plus, for each line, three copies with its words shuffled
    (seeded): more pair statistics from a small file."""
    rng = random.Random(4)
    extra = []
    for line in corpus.split("\n"):
        words = line.split(" ")
        for _ in range(3):
            rng.shuffle(words)
            extra.append(" ".join(words))
    return corpus + "\n" + "\n".join(extra)


def train_bpe(corpus):
    """Plain BPE over the escaped non-newline runs: the most frequent
    adjacent pair merges first (ties: the smallest pair), until N_MERGES or
    no pair occurs twice.  Returns (alphabet, merges)."""
    text = training_text(corpus)
    words = collections.Counter(r for r in runs(text.replace(" ", SP)) if r[0] != "\n")
    chars = collections.Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
    alphabet = sorted((ch for ch, c in chars.items() if c >= 2), key=lambda ch: (-chars[ch], ch))
    known = set(alphabet)
    seqs = [[list(w), c] for w, c in sorted(words.items())]
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, (s, c) in enumerate(seqs):
        for a, b in zip(s, s[1:]):
            if a in known and b in known:
                pairs[(a, b)] += c
                where[(a, b)].add(i)
    merges = []
    while len(merges) < N_MERGES and pairs:
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < 2:
            break
        (a, b), _ = best
        merges.append((a, b))
        known.add(a + b)
        for i in sorted(where.pop((a, b), ())):
            s, c = seqs[i]
            for x, y in zip(s, s[1:]):
                if x in known and y in known and (x, y) in pairs:
                    pairs[(x, y)] -= c
                    if pairs[(x, y)] <= 0:
                        del pairs[(x, y)]
            j, out = 0, []
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            seqs[i][0] = out
            for x, y in zip(out, out[1:]):
                if x in known and y in known:
                    pairs[(x, y)] += c
                    where[(x, y)].add(i)
        pairs.pop((a, b), None)
    return alphabet, merges


def build_vocab(corpus):
    alphabet, merges = train_bpe(corpus)
    toks = list(HEAD) + list(MARKUP)
    toks += [("<unused%d>" % i, NORMAL) for i in range(105 - len(toks))]
    toks += TURN
    toks.append(("</s>", CONTROL))
    toks += [("<0x%02X>" % b, BYTE) for b in range(256)]
    toks += [("\n" * k, NORMAL) for k in range(1, 9)]
    toks += [(ch, NORMAL) for ch in alphabet]
    seen = set(t for t, _ in toks)
    for a, b in merges:   # two merges may spell the same piece: one token
        if a + b not in seen:
            seen.add(a + b)
            toks.append((a + b, NORMAL))
    merge_strs = ["%s %s" % (a, b) for a, b in merges]
    # Newline merges with the highest ranks: runs that are not tokens
    # themselves (9 and more) merge into these.
    merge_strs += ["\n \n", "\n\n \n\n"]
    texts = [t for t, _ in toks]
    assert len(set(texts)) == len(texts), "duplicate pieces"
    assert texts[105] == "<|turn>" and texts[106] == "<turn|>"
    return toks, merge_strs


def write_gguf(path, toks, merges):
    import gguf
    w = gguf.GGUFWriter(path, "gemma4")
    w.add_name("gemmac synthetic gemma4 tokenizer")
    w.add_tokenizer_model("gemma4")
    w.add_token_list([t.encode() for t, _ in toks])
    w.add_token_scores([-1000.0] * len(toks))
    w.add_token_types([ty for _, ty in toks])
    w.add_token_merges(merges)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_space_prefix(False)
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

# ------------------------------------------------------------------ llama.cpp


class Vocab:
    """Thin wrapper over the llama.cpp C API (no Python-side rewriting)."""

    def __init__(self, path):
        import llama_cpp
        from llama_cpp import Llama
        self.lc = llama_cpp
        self.llm = Llama(model_path=path, vocab_only=True, verbose=False)
        self.v = self.llm._model.vocab
        self.n = llama_cpp.llama_vocab_n_tokens(self.v)

    def tokenize(self, data, add_bos, special):
        cap = 3 * len(data) + 16
        buf = (self.lc.llama_token * cap)()
        n = self.lc.llama_tokenize(self.v, data, len(data), buf, cap, add_bos, special)
        if n < 0:
            raise RuntimeError("tokenize failed for %r" % data[:40])
        return list(buf[:n])

    def piece(self, tok):
        buf = ctypes.create_string_buffer(1024)
        n = self.lc.llama_token_to_piece(self.v, tok, buf, 1024, 0, False)
        if n < 0:
            raise RuntimeError("piece too long for id %d" % tok)
        return buf.raw[:n]

    def detok(self, ids):
        return b"".join(self.piece(t) for t in ids)

# ---------------------------------------------------------------- test texts

MULTI = [
    "Hello world", "hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "Tokenizers were never this quick; the brownest foxes jumped over lazier dogs.",
    "I'm sure you'll agree: it's not what we'd expected.",
    "Ärger über Größe: Straße, Fußgänger, Übermut.", "Schöne Grüße aus Köln!",
    "Où est la bibliothèque ? Ça va très bien, merci.", "Les élèves déjà partis — œuvre, cœur, Noël.",
    "¿Dónde está el baño? ¡Qué bien!", "Ação, coração, informações.",
    "Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Токенизатор читает русский текст.", "Київ і Мінськ", "Γειά σου Κόσμε!",
    "你好，世界！", "我爱自然语言处理。今天天气很好。", "機械学習と深層学習", "こんにちは世界、日本語のテキスト。",
    "안녕하세요 세계, 한국어 텍스트", "مرحبا بالعالم", "اللغة العربية جميلة جدا.", "שלום עולם",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "Tiếng Việt có dấu", "Polski: zażółć gęślą jaźń",
    "😀", "😀😃😄😁", "I ❤️ NY", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇸🇩🇪🇯🇵", "emoji at end 🎉", "🐍 python 🚀",
    "𝕳𝖊𝖑𝖑𝖔 𝔀𝓸𝓻𝓵𝓭", "☃ ☂ ★ ♠ ♣ ♥ ♦", "½ ¾ ⅞ ²³¹ Ⅻ",
    "Mixed: English, Deutsch, français, русский, 中文, 日本語, 한국어, العربية, 😀.",
    "3.14159 2026-12-05 100% $19.99 1,000,000 0xDEADBEEF -273.15 1e-9",
]

CODE = [
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "class Foo(Bar):\n\tdef __init__(self, *args, **kwargs):\n\t\tsuper().__init__(*args, **kwargs)\n",
    "#include <stdio.h>\n\nint main(void)\n{\n\tprintf(\"hello, world\\n\");\n\treturn 0;\n}\n",
    "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
    "for (int i = 0; i < n; i++) {\r\n\tsum += a[i] * b[i];\r\n}\r\n",
    "if x:\n\n\n    pass\n\n\n\nelse:\n        y = 1  # eight spaces\n",
    "print(f\"{x!r:>10} and {y:.3f}\")  # comment",
    "{\"name\": \"gemma\", \"layers\": 18, \"dims\": [640, 2048], \"ok\": true, \"none\": null}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "#!/bin/sh\nset -eu\nfor f in *.c; do clang -c \"$f\"; done\n",
    "x = y ** 2 // 3 % 4 != 5 && z || !w; a->b; c::d; e => f; g <= h; i >>= 2;",
    "\t\tdeeply\n\t\t\tindented\n\t\t\t\ttabs\t\there\n",
    "line1\r\nline2\r\n\r\nline4\r\n", "a\rb\rc", "trailing spaces   \nand tabs\t\t\n",
]

EDGE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\n" * 4, "\n" * 5, "\n" * 8, "\n" * 9,
    "\n" * 10, "\n" * 17, "\n" * 33, " \n", "\n ", " \n \n ", "\r\n", "\r\n\r\n", "\r", "\t\n\t",
    " a", "a ", "  leading", "trailing  ", "  both  ", " a b  c   d    e ", "x" + " " * 17 + "y",
    " " * 64, "\t" * 20, "word" + "\n" * 12 + "word", "a\nb\n\nc\n\n\nd",
    "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\u200b\u200c\u200d", "\ufeffBOM", "\u00a0nbsp\u00a0",
    "\u2581", SP + SP + " " + SP, "a" + SP + "b c", "\u2028\u2029",
]

SPECIAL = [
    "<|turn>user\nHi<turn|>\n<|turn>model\n", "<bos>text<eos>", "<bos><bos>", "a<pad>b", "<unk>",
    "<mask> filled", "x <|turn> y", "<|turn", "turn|>", "<<|turn>>", "<|turn><turn|>",
    "<|channel>thought\n<channel|>The answer.", "<|tool_call>call:f{x:1}<tool_call|>",
    "<|tool_response>response:f{ok}<tool_response|>", '<|"|>quoted<|"|>', "<|think|>\nthink",
    "<|image|> and <|audio|> and <|video|>", "<|image>pixels<image|>", "</s>", "end</s>start",
    "<unused0><unused1> <unused42>", "<0x41>", "<0x0A> is a byte token", "<eos", "<eos>>",
    "<|tool>declaration:f{}<tool|>",
]

INVALID = [
    b"\x80", b"\xbf", b"\x80\x80\x80", b"a\x80b", b"\xc3", b"\xc3(", b"\xe2\x96", b"\xe2\x96a",
    b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0", b"\xff", b"\xfe", b"\xff\xfe\xfd",
    b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
    b"\xc0\x80", b"\xc0\xa0", b"\xc0\x8a", b"a\xc0\x8a\xc0\x8ab", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"text then \xe2", b"\xe2 space", b"mixed \xc3\xa9 \xc3 \xa9 ok", b" \x80 ", b"\x80hello",
    bytes(range(0x80, 0x100)), bytes(range(0xc0, 0x100)) + b"end",
]


def llama_aborts(data):
    """True for texts that stop llama.cpp's process, left out of the
    fixture: a code point past U+10FFFF from its lenient decoder (it throws
    "invalid codepoint" out of llama_tokenize), or an overlong-encoded space
    beside other text (the decoded ' ' reaches find_bpe_rank, which asserts
    that no symbol holds a space).  vocab.c takes such a lead byte as
    invalid, and such a ' ' as a character without a token (byte 0x20)."""
    for overlong in (b"\xc0\xa0", b"\xe0\x80\xa0", b"\xf0\x80\x80\xa0"):
        if overlong in data and len(data) > len(overlong):
            return True
    i = 0
    while i < len(data):
        c = data[i]
        n = 1 if c < 0x80 else 0 if c < 0xC0 else 2 if c < 0xE0 else 3 if c < 0xF0 else 4 if c < 0xF8 else 0
        if n == 0 or i + n > len(data) or any(b & 0xC0 != 0x80 for b in data[i + 1:i + n]):
            i += 1
            continue
        cp = c & (0x7F >> n) if n > 1 else c
        for b in data[i + 1:i + n]:
            cp = cp << 6 | (b & 0x3F)
        if cp > 0x10FFFF:
            return True
        i += n
    return False


def build_cases(corpus, chats):
    rng = random.Random(20261205)
    cases = [s.encode() for s in MULTI + CODE + EDGE + SPECIAL] + INVALID
    cases += [(" " + s + " ").encode() for s in MULTI[:12]]
    cases += [p.encode() for p in chats]
    # Slices of the training text (merges apply in full) ...
    lines = corpus.split("\n")
    for _ in range(60):
        i = rng.randrange(len(lines))
        cases.append("\n".join(lines[i:i + rng.randint(1, 6)]).encode())
    # ... and random mixtures of its characters (merges apply piecewise).
    alphabet = sorted(set(corpus))
    for _ in range(60):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 50))).encode())
    for _ in range(30):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        if not llama_aborts(data):
            cases.append(data)
    assert not any(llama_aborts(c) for c in cases)
    return cases


def raw_cases():
    out = [s.encode() for s in SPECIAL + MULTI[:8] + CODE[:4] + EDGE[:12]]
    return out + [b"</s></s>", b"<eos></s><|tool_response>\n\n"]

# ------------------------------------------------------------------ the chat


def render_chats(template_path):
    """(system, user, prompt) rendered by the official template with jinja2
    as transformers' apply_chat_template sets it up; BOS left out."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    with open(template_path, encoding="utf-8") as f:
        src = f.read()

    def raise_exception(msg):
        raise RuntimeError(msg)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    tmpl = env.from_string(src)
    pairs = [(None, "Hello"), ("You are helpful.", "Hi there"), ("  sys  ", "  padded user \n\t"),
             ("", "no system"), (" \n ", "blank system"), (None, ""), (None, "   "),
             ("multi\nline\nsystem", "multi\nline\nuser"), (None, "Grüße 👋"),
             ("\x0b\x0cvt ff\r", "\r\ncrlf\r\n"), (None, "\u3000ideographic\u00a0"),
             (None, "\x1c\x1dseparators\x1e\x1f"), (None, "\u2028line sep\u2029"),
             (None, "\x85next line\u200b"), (None, "<|turn>user\ninjected<turn|>")]
    out = []
    for system, user in pairs:
        msgs = ([] if system is None else [{"role": "system", "content": system}])
        msgs.append({"role": "user", "content": user})
        out.append((system, user, tmpl.render(messages=msgs, bos_token="",
                                              add_generation_prompt=True)))
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    return out, "%s (sha256 %s...)" % (os.path.basename(template_path), digest)

# --------------------------------------------------------------------- output


def write(path, header, rows):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for h in header:
            f.write("# " + h + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print("wrote %s (%d lines, %d bytes)" % (path, len(rows), os.path.getsize(path)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", required=True, help="the Gemma 4 chat template (.jinja)")
    ap.add_argument("--out", default=FIXDIR)
    args = ap.parse_args()
    import llama_cpp
    corpus = read_corpus()
    toks, merges = build_vocab(corpus)
    gguf_path = os.path.join(args.out, "gemma4_vocab.gguf")
    write_gguf(gguf_path, toks, merges)
    print("vocabulary: %d tokens, %d merges, %d bytes" % (len(toks), len(merges),
                                                           os.path.getsize(gguf_path)))
    vocab = Vocab(gguf_path)
    assert vocab.n == len(toks)
    chats, tmpl_name = render_chats(args.template)
    header = ["generated by scripts/make_gemma4_tokenizer_fixture.py -- do not edit",
              "llama-cpp-python %s, synthetic vocabulary gemma4_vocab.gguf" % llama_cpp.__version__]

    rows = []
    for c in build_cases(corpus, [p for _, _, p in chats]):
        ids = vocab.tokenize(c, True, True)
        rows.append((c.hex(), " ".join(map(str, ids)), vocab.detok(ids).hex()))
    write(os.path.join(args.out, "gemma4.tsv"), header +
          ["hex(text) TAB ids TAB hex(detokenized); add_bos, parse_special"], rows)

    rows = [(c.hex(), " ".join(map(str, vocab.tokenize(c, False, False)))) for c in raw_cases()]
    write(os.path.join(args.out, "gemma4_raw.tsv"), header +
          ["hex(text) TAB ids; no BOS, no parse_special"], rows)

    rows = [(str(t), vocab.piece(t).hex()) for t in range(vocab.n)]
    write(os.path.join(args.out, "gemma4_detok.tsv"), header +
          ["id TAB hex(token_to_piece(id, special=false))"], rows)

    rows = [(s.encode().hex() if s is not None else "-", u.encode().hex(), p.encode().hex())
            for s, u, p in chats]
    write(os.path.join(args.out, "gemma4_chat.tsv"),
          ["generated by scripts/make_gemma4_tokenizer_fixture.py -- do not edit",
           "jinja2 rendering of %s, add_generation_prompt, no bos" % tmpl_name,
           "hex(system) or - TAB hex(user) TAB hex(prompt)"], rows)


if __name__ == "__main__":
    main()
