#!/usr/bin/env python3
"""make_tokenizer_fixture.py -- record llama.cpp's tokenizer output as fixtures.

gemmac's tokenizer (runtime/vocab.c) must give exactly the ids llama.cpp
gives for a Gemma SentencePiece vocabulary.  This script asks llama.cpp itself
(through the PyPI package llama-cpp-python, vocab-only load) and writes:

  tests/fixtures/tokenizer/spm.tsv      hex(text) TAB ids   add_bos, parse_special
  tests/fixtures/tokenizer/spm_raw.tsv  hex(text) TAB ids   no BOS, special text stays text
  tests/fixtures/tokenizer/detok.tsv    id TAB hex(piece)    token_to_piece, special=False
  tests/fixtures/tokenizer/chat.tsv     hex(system|-) TAB hex(user) TAB hex(prompt)
                                        llama.cpp's built-in "gemma" chat template

Lines starting with '#' are comments (the first ones name the llama-cpp-python
version and the model).  An empty id list is written as an empty field.

Usage: scripts/make_tokenizer_fixture.py [model.gguf] [out_dir]
The model defaults to $GMC_MODEL_GGUF, else what scripts/model-path prints.
Everything is deterministic (fixed seeds), so a rerun with the same llama.cpp
gives byte-identical files.
"""
import ctypes
import os
import random
import subprocess
import sys

import llama_cpp
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# llama_token_attr bits (llama.h)
ATTR_UNKNOWN, ATTR_UNUSED, ATTR_NORMAL = 1 << 0, 1 << 1, 1 << 2
ATTR_CONTROL, ATTR_USER_DEFINED, ATTR_BYTE = 1 << 3, 1 << 4, 1 << 5


def model_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    env = os.environ.get("GMC_MODEL_GGUF")
    if env:
        return env
    out = subprocess.run([os.path.join(HERE, "model-path")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


class Vocab:
    """Thin wrapper over the llama.cpp C API (no Python-side rewriting)."""

    def __init__(self, path):
        self.llm = Llama(model_path=path, vocab_only=True, verbose=False)
        self.v = self.llm._model.vocab
        self.n = llama_cpp.llama_vocab_n_tokens(self.v)

    def tokenize(self, data, add_bos, special):
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.v, data, len(data), buf, cap,
                                     add_bos, special)
        if n < 0:
            raise RuntimeError("tokenize failed for %r" % data[:40])
        return list(buf[:n])

    def piece(self, tok):
        buf = ctypes.create_string_buffer(1024)
        n = llama_cpp.llama_token_to_piece(self.v, tok, buf, 1024, 0, False)
        if n < 0:
            raise RuntimeError("piece too long for id %d" % tok)
        return buf.raw[:n]

    def text(self, tok):
        return llama_cpp.llama_vocab_get_text(self.v, tok)

    def attr(self, tok):
        return llama_cpp.llama_vocab_get_attr(self.v, tok)


def chat(system, user):
    """llama.cpp's built-in Gemma template for one user turn (add_ass)."""
    msgs = []
    if system is not None:
        msgs.append((b"system", system))
    msgs.append((b"user", user))
    arr = (llama_cpp.llama_chat_message * len(msgs))()
    for i, (role, content) in enumerate(msgs):
        arr[i].role = role
        arr[i].content = content
    cap = 4 * (len(user) + len(system or b"")) + 256
    buf = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_chat_apply_template(b"gemma", arr, len(msgs), True,
                                            buf, cap)
    if n < 0 or n > cap:
        raise RuntimeError("chat template failed")
    return buf.raw[:n]


# ------------------------------------------------------------ test strings

LANGS = [
    # English
    "Hello world", "hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll agree: it's not what we'd expected.", "Don't panic.",
    "New York City is the most populous city in the United States.",
    "A tokenizer splits text into pieces; each piece maps to an id.",
    "e.g. i.e. etc. Mr. Mrs. Dr. St.", "UPPER CASE TEXT AND lower case text",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    # German
    "Ärger über Größe: Straße, Fußgänger, Übermut.", "Donaudampfschifffahrtsgesellschaftskapitän",
    "Die Würde des Menschen ist unantastbar.", "Schöne Grüße aus München!",
    # French
    "Où est la bibliothèque ? Ça va très bien, merci.", "L'été dernier, nous sommes allés à Nîmes.",
    "«Bonjour», dit-elle — c'était l'œuvre d'une vie.", "Français: à, â, æ, ç, é, è, ê, ë, î, ï, ô, œ, ù, û, ü, ÿ",
    # Spanish
    "¿Dónde está el baño? ¡Qué bien!", "El niño comió paella en Valladolid.",
    "Mañana será otro día, señor Muñoz.",
    # Russian
    "Привет, мир!", "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Москва — столица России.", "ЁЖИК в тумане",
    # Greek
    "Γειά σου Κόσμε!", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.", "αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔ",
    # Arabic
    "مرحبا بالعالم", "اللغة العربية جميلة جدا.", "٠١٢٣٤٥٦٧٨٩ أرقام عربية",
    # Hebrew
    "שלום עולם", "עברית היא שפה שמית.", "גד שבת? מה המצב?",
    # Hindi
    "नमस्ते दुनिया", "हिन्दी भारत की राजभाषा है।", "क्षत्रिय ज्ञान श्री",
    # Thai
    "สวัสดีชาวโลก", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "กรุงเทพมหานคร",
    # Chinese
    "你好，世界！", "我爱自然语言处理。", "中华人民共和国成立于1949年。", "繁體中文與简体中文",
    # Japanese
    "こんにちは世界", "日本語のテキストをトークン化します。", "カタカナとひらがなと漢字", "ｶﾀｶﾅ 半角",
    # Korean
    "안녕하세요 세계", "한국어는 한글로 씁니다.", "대한민국 서울특별시",
    # other scripts
    "Tiếng Việt có dấu", "Türkçe: ğüşıöç İ", "Polski: zażółć gęślą jaźń", "Čeština: příliš žluťoučký kůň",
    "Ελληνικά και English mixed με 中文", "ქართული ენა", "Հայերեն", "አማርኛ", "தமிழ் மொழி", "বাংলা ভাষা",
]

EMOJI = [
    "😀", "😀😃😄😁", "I ❤️ NY", "👍🏽", "👨‍👩‍👧‍👦", "👩🏾‍💻", "🏳️‍🌈", "🇺🇸🇩🇪🇯🇵", "🇫🇷",
    "1️⃣2️⃣#️⃣", "🧑‍🤝‍🧑", "❤️‍🔥", "🤷‍♀️ shrug", "emoji at end 🎉", "🐍 python", "☃ ☂ ★ ♠ ♣ ♥ ♦",
    "𝕳𝖊𝖑𝖑𝖔 𝔀𝓸𝓻𝓵𝓭", "𐍈 Gothic", "🀄🃏",
]

CODE = [
    "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello, world\\n\");\n    return 0;\n}\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "class Foo(Bar):\n\tdef __init__(self, *args, **kwargs):\n\t\tsuper().__init__(*args, **kwargs)\n",
    "print(f\"{x!r:>10} and {y:.3f}\")  # comment",
    "{\"name\": \"gemma\", \"layers\": 18, \"dims\": [640, 2048], \"ok\": true, \"none\": null}",
    "[{\"a\":1},{\"b\":[2,3,{\"c\":\"d\"}]}]",
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>Test</title></head>\n<body><p class=\"x\">Hi &amp; bye</p></body>\n</html>",
    "<div id='main'><span>text</span><br/><img src=\"a.png\" alt=\"\"></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "#!/bin/sh\nset -eu\nfor f in *.c; do clang -c \"$f\"; done\n",
    "x = y ** 2 // 3 % 4 != 5 && z || !w; a->b; c::d; e => f; g <= h; i >>= 2;",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "`backticks` ~tilde~ ^caret^ |pipe| \\backslash\\ @at@ $dollar$",
    "https://example.com/path/to/file.html?query=1&x=y#frag",
    "user@example.org, +1 (555) 123-4567",
]

NUMBERS = [
    "0", "7", "42", "123", "1234567890", "3.14159265358979", "-273.15", "1e-9", "6.022e23",
    "1,000,000", "2024-01-31", "12:34:56", "0xDEADBEEF", "0b101010", "100%", "$19.99", "€5,00",
    "١٢٣", "Ⅻ Ⅳ", "½ ¾ ⅞", "²³¹", "99 bottles of beer", "v1.2.3-rc4",
]

CONTROL_CHARS = (["".join(chr(c) for c in range(0, 32)), "\x7f", "a\x00b", "\x00", "\x1b[31mred\x1b[0m",
                  "\r\n", "line1\r\nline2\r\n", "\x0b\x0c", "\u200b\u200c\u200d", "\ufeffBOM",
                  "\u00a0nbsp\u00a0", "soft\u00adhyphen", "\u2028\u2029", "\u2581", "\u2581\u2581 \u2581",
                  "a\u2581b c"] + [chr(c) for c in range(1, 32)])

INVALID = [
    b"\x80", b"\xbf", b"\x80\x80\x80", b"a\x80b", b"\xc3", b"\xc3(", b"\xe2\x96", b"\xe2\x96a",
    b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0", b"\xff", b"\xfe", b"\xff\xfe\xfd", b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"text then \xe2", b"\xe2 space",
    b"mixed \xc3\xa9 \xc3 \xa9 ok", b"\xf0\x9f\x98\x80\xf0\x9f\x98", b" \x80 ", b"\x80hello",
    bytes(range(0x80, 0x100)), bytes(range(0xc0, 0x100)) + b"end",
]

SPECIAL_EMBED = [
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos>", "<bos><bos>", "a<pad>b", "<unk>", "<mask> filled", "x <start_of_turn> y",
    "<start_of_turn", "start_of_turn>", "<<start_of_turn>>", "<start_of_turn><end_of_turn>",
    "[multimodal]", "an image: <start_of_image> here <end_of_image>.", "</s>", "end</s>start",
    "<unused0><unused1> <unused99>", "<unused6241>x", "<0x41>", "<0x0A> is a byte token",
    "hello\n\nworld\n\n\n!", "tab\t\ttab\t", "\n", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    "<eos", "<eos>>", "<<eos>", "<start_of_turn>user\n<start_of_turn>", "user<end_of_turn>",
]


def whitespace_cases():
    out = []
    for ch in (" ", "\t", "\n"):
        for k in range(1, 41):
            out.append(ch * k)
    out += ["  a", "a  ", "   leading", "trailing   ", "  both  ", " a b  c   d    e ",
            "\t\n \t\n", " \n ", "a\n b\n  c\n   d", "x" + " " * 17 + "y", "\n \n \n",
            " " * 100, "\t" * 100, "\n" * 100, " \t" * 30, "word" + "\n" * 33 + "word"]
    return out


def random_piece_text(rng, pieces, k):
    return "".join(rng.choice(pieces) for _ in range(k))


def special_lines(vocab, per_line=24):
    """Every CONTROL and USER_DEFINED token written out as text."""
    ids = [t for t in range(vocab.n)
           if vocab.attr(t) & (ATTR_CONTROL | ATTR_USER_DEFINED)]
    lines = []
    for i in range(0, len(ids), per_line):
        group = ids[i:i + per_line]
        sep = b"" if (i // per_line) % 3 == 0 else (b" " if (i // per_line) % 3 == 1 else b"x")
        lines.append(sep.join(vocab.text(t) for t in group))
    return ids, lines


def build_cases(vocab):
    rng = random.Random(20240531)
    cases = [b""]
    cases += [s.encode() for s in LANGS + EMOJI + CODE + NUMBERS + CONTROL_CHARS]
    cases += [s.encode() for s in whitespace_cases()]
    cases += [b" " * 10000, b"a" + b" " * 10000 + b"b", b"\n" * 1000, b"ab" * 600]
    cases += INVALID
    cases += [s.encode() for s in SPECIAL_EMBED]
    cases += [(" " + s + " ").encode() for s in LANGS[:20]]
    cases.append(chat(b"You are terse.", b"  What is 2+2?\n"))
    cases.append(chat(None, b"Translate to French: good morning"))
    # Random strings built from vocabulary pieces exercise the merge order.
    normal = [t for t in range(vocab.n) if vocab.attr(t) & ATTR_NORMAL]
    pieces = [vocab.text(t).decode("utf-8", "replace").replace("\u2581", " ")
              for t in rng.sample(normal, 4000)]
    for _ in range(120):
        cases.append(random_piece_text(rng, pieces, rng.randint(1, 12)).encode())
    # Random mixtures of characters from every script above.
    alphabet = sorted(set("".join(LANGS + EMOJI + CODE)))
    for _ in range(40):
        cases.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))).encode())
    for _ in range(20):
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))))
    long_text = " ".join(LANGS) + "\n" + "\n".join(CODE)
    cases.append(long_text.encode())
    _, sp = special_lines(vocab)
    cases += sp
    return cases


def raw_cases(vocab):
    """Cases for parse_special = false and no BOS."""
    _, sp = special_lines(vocab)
    out = [s.encode() for s in SPECIAL_EMBED + LANGS[:10] + CODE[:4]]
    out += sp[:12] + sp[-8:]
    out += [b"", b" ", b"</s></s>", b"<eos></s>[multimodal]\n\n"]
    return out


def detok_ids(vocab):
    rng = random.Random(7)
    ids = set(range(0, 600))
    ids |= {212, 255999, 256000, vocab.n - 1, vocab.n - 2}
    ids |= set(rng.sample(range(vocab.n), 300))
    return sorted(ids)


def hexs(b):
    return b.hex()


def write(path, header, rows):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for h in header:
            f.write("# " + h + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print("wrote %s (%d lines, %d bytes)" % (path, len(rows), os.path.getsize(path)))


def main():
    path = model_path()
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "fixtures", "tokenizer")
    os.makedirs(out_dir, exist_ok=True)
    print("llama-cpp-python", llama_cpp.__version__)
    print("model", path)
    vocab = Vocab(path)
    header = ["generated by scripts/make_tokenizer_fixture.py -- do not edit",
              "llama-cpp-python %s, model %s" % (llama_cpp.__version__, os.path.basename(path))]

    rows = [(hexs(c), " ".join(map(str, vocab.tokenize(c, True, True)))) for c in build_cases(vocab)]
    write(os.path.join(out_dir, "spm.tsv"), header + ["hex(text) TAB ids; add_bos, parse_special"], rows)

    rows = [(hexs(c), " ".join(map(str, vocab.tokenize(c, False, False)))) for c in raw_cases(vocab)]
    write(os.path.join(out_dir, "spm_raw.tsv"), header + ["hex(text) TAB ids; no BOS, no parse_special"], rows)

    rows = [(str(t), hexs(vocab.piece(t))) for t in detok_ids(vocab)]
    write(os.path.join(out_dir, "detok.tsv"), header + ["id TAB hex(token_to_piece(id, special=false))"], rows)

    chats = [(None, b"Hello"), (b"You are helpful.", b"Hi there"), (b"  sys  ", b"  padded user \n\t"),
             (b"", b"no system"), (b" \n ", b"blank system"), (None, b""), (None, b"   "),
             (b"multi\nline\nsystem", b"multi\nline\nuser"), (None, "Grüße 👋".encode()),
             (b"\x0b\x0cvt ff\r", b"\r\ncrlf\r\n")]
    rows = [(hexs(s) if s is not None else "-", hexs(u), hexs(chat(s, u))) for s, u in chats]
    write(os.path.join(out_dir, "chat.tsv"), header + ["hex(system) or - TAB hex(user) TAB hex(prompt)"], rows)


if __name__ == "__main__":
    main()
