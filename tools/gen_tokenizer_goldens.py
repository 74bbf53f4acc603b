#!/usr/bin/env python3
"""Generate tokenizer goldens for pairrm's Rust tokenizer (crates/pairrm/src/tokenizer.rs).

What it makes: tests/fixtures/tokenizer/goldens.json, the ids the REFERENCE tokenizer gives for a
broad set of texts. The reference is transformers 4.46.3's DebertaV2TokenizerFast exactly as
`AutoTokenizer.from_pretrained(dir)` builds it from a directory holding the real DeBERTa-v3
`spm.model` (+ `tokenizer_config.json` + a `config.json` naming model_type deberta-v2, as the
microsoft/deberta-v3-large repo has), i.e. converted from the slow tokenizer by
`DebertaV2Converter`, and then LLM-Blender's
`tokenizer.add_tokens(["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"])`.

Sections of the output:
- `meta`: versions, spm.model sha256, special ids, len(tokenizer) before/after the markers,
  marker ids, and the results of the Python-side checks listed below.
- `default`, `lower_case`, `split_by_punct`, `lower_case_split_by_punct`: cases
  {"text", "ids"} for tokenizer_config.json with the given do_lower_case / split_by_punct.
  `ids` always come from the tokenizer BEFORE the markers are registered: pairrm's engine treats
  marker strings typed in text as ordinary text, and for texts without markers the ids are the same
  either way (checked: `meta.checks.markers_change_nothing_without_markers`). Cases whose text
  contains a marker string also carry `ids_markers_registered`, the reference's ids after
  add_tokens (for information).
- `tokenizer_json_skeleton`: the `tokenizer.json` that transformers' `save_pretrained` writes for
  the PairRM-hf layout (markers added), with the two big blobs (model.vocab and the
  precompiled_charsmap) replaced by null. The Rust test fills them from spm.model to rebuild that
  file without committing a 8 MB file.

Python-side checks (results recorded in meta.checks, also printed):
- tokenizer.json path: AutoTokenizer on the save_pretrained directory (tokenizer.json present)
  gives the same ids as the spm.model path for every text (with and without markers registered).
- marker prefix: for every marker-free text t of the default set and every marker m,
  encode(m + t) == [CLS, id(m)] + encode(t)[1:] with the markers registered (what the input
  builder relies on when it inserts marker ids structurally). Failures are listed.
- slow vs fast: indices of default texts where the slow (sentencepiece, byte fallback) tokenizer
  differs from the fast one (informational; the fast one is the reference).

Rerun (from the repository root; needs transformers 4.46.3, tokenizers, sentencepiece, protobuf):
    /work/refvenv/bin/python tools/gen_tokenizer_goldens.py
spm.model is read from tests/fixtures/tokenizer/deberta-v3/spm.model (committed, MIT);
it is never copied into the repository.
"""

import hashlib
import json
import os
import random
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer, DebertaV2Tokenizer  # noqa: E402

transformers.logging.set_verbosity_error()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPM = os.path.join(REPO, "tests", "fixtures", "tokenizer", "deberta-v3", "spm.model")
OUT = os.path.join(REPO, "tests", "fixtures", "tokenizer", "goldens.json")
MARKERS = ["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"]


def long_english(n_chars, seed):
    rng = random.Random(seed)
    words = (
        "the of and to in is was for on that with as by at from his her it an were are which this "
        "be or has had not but first one their its new after who they have two been other when "
        "there all during into school time may years more most only over city some world would "
        "where later up such used many can state about national out known university united then "
        "made however ranking PairRM DeBERTa tokenizer model's don't it's 2024 3.14 $5 100% "
        "e-mail co-operate naïve café résumé Zürich São Paulo"
    ).split()
    out = []
    length = 0
    while length < n_chars:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 18)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", "!", "?", ";", ","])
        sep = rng.choice([" ", " ", " ", "  ", "\n", "\n\n", "\t"])
        out.append(sentence + sep)
        length += len(sentence) + len(sep)
    return "".join(out)[:n_chars]


def long_unicode(n_chars, seed):
    rng = random.Random(seed)
    chunks = [
        "生活的真谛是", "東京都", "한국어 텍스트", "Привет, мир", "Γειά σου", "مرحبا بالعالم", "שלום",
        "สวัสดี", "नमस्ते", "😀", "🦙", "👨‍👩‍👧‍👦", "🇺🇸", "e\u0301", "ＦＵＬＬ", "①", "ﬁ", "\u00a0",
        "\u3000", "\u200b", "[SEP]", "[UNK]", "<0x41>", "▁", "\t", "\n", "\r\n", "  ", "x²", "½",
        "𝕳𝖊𝖑𝖑𝖔", "Ⅻ", "ß", "İ", "ΣΑΣ", "\ue000", "\U000f0000", "a", "the", "model", "123", ".", ",",
    ]
    out = []
    length = 0
    while length < n_chars:
        c = rng.choice(chunks)
        sep = rng.choice(["", "", " ", " "])
        out.append(c + sep)
        length += len(c) + len(sep)
    return "".join(out)[:n_chars]


def default_texts():
    t = [
        # ASCII basics
        "hello world", "Hello World", "HELLO WORLD", "How are you doing?", "You should've done this",
        "A\n'll !!to?'d''d of, can't.", "I love you!", "f**k off!", "The quick brown fox jumps over the lazy dog.",
        "a", "A", "x", ".", ",", "!", "?", "-", "'", '"', "a.b.c", "e.g. i.e. etc.", "Mr. Smith's dog",
        "don't stop-believing", "well-known state-of-the-art", "C'est la vie", "(parenthesized) [bracketed] {braced}",
        "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./", "...", "?!?!", "----", "====", "____", "****", "####",
        # empty and whitespace only
        "", " ", "  ", "          ", "\t", "\n", "\r\n", "\r", " \n", "\n\t\n", "\u00a0", "\u00a0\u00a0",
        "\u3000", "\u200b", "\ufeff", " \t \n \r\n ",
        # whitespace runs, tabs, newlines, leading/trailing
        "Hi  Hello", "Hi   Hello", "Hi\t\tHello", "Hi\nHello", "Hi\n\nHello", "Hi\r\nHello", "Hi\rHello",
        "trailing space   ", "   leading space", "  both  ", "\tleading tab", "trailing tab\t",
        "\nleading newline", "trailing newline\n", "This\n\nis\na\ntest.", "\ttabs\t\t\t\tout here",
        "  multiple   spaces\tand\nnewlines  ", "a \t b", "a \n b", "a\u000bb", "a\u000cb", "a\u0085b",
        "a\u2028b", "a\u2029b", "line1\r\nline2\r\nline3",
        # unicode spaces
        "a\u00a0b", "a\u00a0\u00a0b", "you…\u00a0\u00a0", "a\u2000b", "a\u2002b", "a\u2003b", "a\u2009b",
        "a\u200ab", "a\u202fb", "a\u205fb", "a\u3000b", "a\u1680b", "\u2003indented", "end\u2003",
        # zero-width and invisible
        "a\u200bb", "a\u200cb", "a\u200db", "a\u2060b", "a\ufeffb", "\ufeffBOM at start", "soft\u00adhyphen",
        "a\u034fb", "a\u2061b", "rtl\u200fmark", "ltr\u200emark", "a\u00adb\u00adc",
        # control characters
        "a\x00b", "a\x01b", "a\x07b", "a\x1bb", "a\x7fb", "a\x80b", "a\x9fb",
        # accents, combining marks
        "café naïve résumé", "cafe\u0301", "e\u0301", "\u0301", "a\u0301\u0302\u0303\u0304",
        "Zürich", "Zu\u0308rich", "ñ", "n\u0303", "Ångström", "A\u030angstro\u0308m", "\u2126", "\u03a9",
        "ǅ", "ǆ", "ﬀ", "ﬁ", "ﬂ", "ﬃ", "x²", "x₂", "½", "¼", "Ⅻ", "ⅻ", "①", "⑳", "㍻", "㎏", "™", "℃",
        "µ", "ª", "º", "…", "‥", "′", "″",
        # full-width forms
        "ＦＵＬＬＷＩＤＴＨ ① ㍻", "ＡＢＣ１２３！？", "ｈｅｌｌｏ　ｗｏｒｌｄ", "weird ～ edge ～ case", "［ＳＥＰ］",
        "［UNK］", "［SEP］", "［CLS］", "［MASK］", "ｶﾀｶﾅ", "ﾊﾝｶｸ",
        # CJK, Korean, Japanese and other scripts
        "生活的真谛是", "镇", "東京都渋谷区", "我爱自然语言处理。", "これは日本語の文です。", "カタカナとひらがな",
        "한국어", "안녕하세요, 세계!", "\u1100\u1161\u11a8", "ᄀᄀ", "Привет, мир!", "Γειά σου Κόσμε", "ΣΑΣ",
        "مرحبا بالعالم", "שלום עולם", "สวัสดีชาวโลก", "नमस्ते दुनिया", "বাংলা", "தமிழ்", "ქართული", "Հայերեն",
        "ܐܪܡܝܐ", "ᚠᚢᚦᚨᚱᚲ", "𐌰𐌱𐌲", "𝕳𝖊𝖑𝖑𝖔", "𝐁𝐨𝐥𝐝", "𝟙𝟚𝟛", "Ꙋ", "İstanbul", "straße", "ﬁnance",
        # emoji
        "🦙", "🦙Ꙋ", "Ꙋ🦙", "😀", "Emoji 😀 and 漢字 and 한국어", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇸🇫🇷", "1️⃣", "❤️", "☺",
        "🏳️‍🌈", "I ❤ NY", "😀😀😀😀", "text😀text", "\U0001f9d1\u200d\U0001f4bb",
        # private use, noncharacters, unassigned
        "\ue000", "\uf8ff", "\U000f0000", "\uffff", "\ufffd", "a\ufffdb", "\u0378", "\U000e0041",
        # literal special tokens and lookalikes
        "[SEP]", "[CLS]", "[MASK]", "[PAD]", "[UNK]", "[sep]", "[unk]", "[Mask]", "[SEP][SEP]", "[[SEP]]",
        "[ SEP ]", "a[SEP]b", "a [SEP] b", " [SEP] ", "[CLS] hello [SEP] world [SEP]", "hello[MASK]world",
        "hello [MASK] world", "[UNK][UNK]", "x[UNK]", "[PAD][PAD][PAD]", "[SEP\n]", "[MASK]\n",
        "\u00a0[CLS]\u00a0", "[CLS]\u3000", "<s>\n", " </s> test </s> ", "</s>test</s>",
        "<s></s><unk><pad>[CLS][SEP][UNK][PAD][MASK]", "<s>", "</s>", "<unk>", "<pad>", "<mask>",
        "<0x41>", "<0x00>", "<0xFF>", "<0x0A>", "a<0x41>b", "▁", "▁▁", "▁This ▁is ▁a ▁test ▁.", "▁hello",
        "hello▁world", "\u2581 \u2581",
        # code
        "def main():\n\tpass", "let a = obj.toString();\ntoString();",
        "fn main() {\n    println!(\"Hello, {}!\", name);\n}",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
        "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
        "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
        "x = lambda y: y**2 if y > 0 else -y  # comment",
        "import numpy as np\nnp.array([[1, 2], [3, 4]]) @ np.eye(2)",
        "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$",
        "$ git commit -m \"fix: tokenizer\" && cargo test --release",
        "ax\n####\nboo", "a->b => c :: d <= e != f == g",
        # URLs, emails
        "https://www.example.com/path/to/page?query=1&other=two#anchor", "http://localhost:8080/",
        "Visit https://huggingface.co/llm-blender/PairRM-hf now", "mailto:someone@example.org",
        "john.doe+tag@sub.example.co.uk", "ftp://files.example.net/pub/file.tar.gz", "www.google.com",
        # numbers
        "The company was founded in 2016.", "I bought an apple for $1.00 at the store.",
        "test $1 R2 #3 €4 £5 ¥6 ₣7 ₹8 ₱9 test", "3.14159265358979", "1,000,000", "1e-10", "0x1F",
        "-42", "+7", "2024-01-15", "12:34:56", "+1 (555) 123-4567", "99.9%", "1/2", "10^6", "٣٤٥",
        "१२३", "一二三", "Ⅳ", "0001", "123456789012345678901234567890",
        # existing vector texts
        "grabbed", " grabbed", "           grabbed", "you…  ", "you…\u00a0\u00a0you…\u00a0\u00a0",
        "Hello world! I love you.", "hello!", "hi!", "I hate you!", "I love you, too!",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "The llama (/ˈlɑːmə/; 🦙Spanish pronunciation: [ˈʎama]) (Lama glama) is a domesticated South "
        "American camelid, widely used as a meat and pack animal by Andean cultures since the "
        "Pre-Columbian era. Llamas are social animals and live with others as a herd. Their wool is "
        "soft and contains only a small amount of lanolin.[2] Llamas can learn simple tasks after a "
        "few repetitions. When using a pack, they can carry about 25 to 30% of their body weight for "
        "8 to 13 km (5–8 miles).[3] The name llama (in the past also spelled \"lama\" or \"glama\") "
        "was adopted by European settlers from native Peruvians.[4] The ancestors of llamas are "
        "thought to have originated from the Great Plains of North America about 40 million years "
        "ago, and subsequently migrated to South America about three million years ago during the "
        "Great American Interchange. By the end of the last ice age (10,000–12,000 years ago), "
        "camelids were extinct in North America.[3] As of 2007, there were over seven million "
        "llamas and alpacas in South America and over 158,000 llamas and 100,000Ꙋ🦙 alpacas, "
        "descended from progenitors imported late in the 20th century, in the United States and "
        "Canada.[5] In Aymara mythology, llamas are important beings. The Heavenly Llama is said "
        "to drink water from the ocean and urinates as it rains.[6] According to Aymara "
        "eschatology, llamas will return to the water springs and ponds where they come from at "
        "the end of time.[6]",
        # mixed / misc
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism", "ǅungla", "ʼn", "Ǆ",
        "ß ẞ", "ﬅ", "ĳ", "ŉ", "Ǳ", "ΐ", "ﾟ", "゙", "か\u3099", "が", "ｶﾞ", "\u0e33", "\u0e4d\u0e32",
        "Ünïcödé wïth dïäcrïtïcs everywhere", "Question? Answer! Exclamation... Ellipsis…",
        "«guillemets» „German quotes“ “smart quotes” ‘single’", "em—dash en–dash minus−sign",
        "tab\tseparated\tvalues\t1\t2", "a,b;c:d|e/f\\g", "#hashtag @mention", "C++ C# F# .NET",
    ]
    # the four markers inside text (ordinary text for pairrm)
    t += [
        "<|source|>", "<|candidate|>", "<|candidate1|>", "<|candidate2|>", "<|source|>hello world",
        "hello <|source|> world", "<|candidate1|><|candidate2|>", "a<|candidate|>b",
        "<|SOURCE|>", "<| source |>", "<|source|", "|source|>", "<|source|><|source|>",
        "  <|candidate|>  text  ", "[SEP]<|source|>[SEP]", "<|candidate|>\n\nanswer",
    ]
    # long texts
    t += [long_english(20000, 1), long_unicode(20000, 2), "x" * 3000, "生" * 3000,
          ("word " * 2000).strip(), " \t\n" * 500]
    return t


def variant_texts():
    return [
        "hello world", "Hello World", "HELLO WORLD", "İstanbul", "ΣΑΣ ΟΔΟΣ", "Straße STRASSE",
        "ǅ Ǆ ǆ", "ＦＵＬＬＷＩＤＴＨ", "Ünïcödé", "[UNK]", "[unk]", "[Unk]", "［UNK］", "[SEP]", "[sep]",
        "[CLS] x [SEP]", "[MASK]", "[mask]", "<|SOURCE|>", "<|source|>", "<|Candidate|>",
        "How are you doing?", "You should've done this", "A\n'll !!to?'d''d of, can't.",
        "don't stop-believing", "well-known state-of-the-art", "e.g. i.e. etc.",
        "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./", "a.b.c", "...", "1,000,000.50", "3.14", "$1.00 €4",
        "https://www.example.com/path?x=1&y=2#z", "john.doe+tag@example.co.uk",
        "def main():\n\tpass", '{"key": [1, 2, 3]}', "«guillemets» „quotes“ “smart”", "em—dash en–dash",
        "生活的真谛是。", "안녕하세요, 세계!", "これは日本語の文です。", "Привет, Мир!", "🦙 Llama! 😀",
        "¿Qué? ¡Sí!", "a\u00a0b.c", "  leading, trailing.  ", "Hi  Hello\t\tX", "", " ",
        "▁This ▁is ▁a ▁test ▁.", "<0x41>", "<s>x</s>", "(a)[b]{c}", "C++ C# F#", "a-b_c/d\\e",
        long_english(3000, 3),
    ]


def make_dir(root, name, config):
    d = os.path.join(root, name)
    os.makedirs(d)
    os.symlink(os.path.abspath(SPM), os.path.join(d, "spm.model"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "deberta-v2"}, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f)
    return d


def ids_of(tok, text):
    return tok(text, add_special_tokens=True)["input_ids"]


def main():
    if not os.path.isfile(SPM):
        sys.exit(f"spm.model not found at {SPM} (a committed fixture: is the checkout complete?)")
    sha = hashlib.sha256(open(SPM, "rb").read()).hexdigest()
    root = tempfile.mkdtemp(prefix="pairrm-tok-goldens-")
    checks = {}
    out = {}

    # --- default configuration: the reference for PairRM
    base_dir = make_dir(root, "default", {"do_lower_case": False, "vocab_type": "spm"})
    base = AutoTokenizer.from_pretrained(base_dir)
    assert type(base).__name__ == "DebertaV2TokenizerFast", type(base)
    base_len = len(base)
    pairrm = AutoTokenizer.from_pretrained(base_dir)
    pairrm.add_tokens(MARKERS)
    marker_ids = {m: pairrm.convert_tokens_to_ids(m) for m in MARKERS}
    saved = os.path.join(root, "pairrm-hf")
    pairrm.save_pretrained(saved)
    from_json = AutoTokenizer.from_pretrained(saved)
    assert os.path.isfile(os.path.join(saved, "tokenizer.json"))
    slow = DebertaV2Tokenizer(SPM)

    texts = default_texts()
    assert len(set(texts)) == len(texts), [t for t in texts if texts.count(t) > 1]
    cases = []
    json_same = True
    json_diff = []
    slow_diff = []
    no_marker_same = True
    for i, text in enumerate(texts):
        ids = ids_of(base, text)
        case = {"text": text, "ids": ids}
        with_markers = ids_of(pairrm, text)
        if any(m in text for m in MARKERS):
            case["ids_markers_registered"] = with_markers
        elif with_markers != ids:
            no_marker_same = False
        if ids_of(from_json, text) != with_markers:
            json_same = False
            json_diff.append(i)
        if slow(text)["input_ids"] != ids:
            slow_diff.append(i)
        cases.append(case)
    out["default"] = cases
    checks["markers_change_nothing_without_markers"] = no_marker_same
    checks["tokenizer_json_same_ids_as_spm_path"] = json_same
    checks["tokenizer_json_mismatch_indices"] = json_diff
    checks["slow_differs_from_fast_indices"] = slow_diff

    # marker prefix check: encode(m + t) == [CLS, id(m)] + encode(t)[1:]
    failures = []
    n = 0
    for text in texts:
        if any(m in text for m in MARKERS):
            continue
        plain = ids_of(pairrm, text)
        for m in MARKERS:
            n += 1
            got = ids_of(pairrm, m + text)
            want = [plain[0], marker_ids[m]] + plain[1:]
            if got != want:
                failures.append({"marker": m, "text": text, "got": got, "want": want})
    checks["marker_prefix"] = {"checked": n, "failures": failures}

    # --- variants
    for name, config in [
        ("lower_case", {"do_lower_case": True, "vocab_type": "spm"}),
        ("split_by_punct", {"do_lower_case": False, "split_by_punct": True, "vocab_type": "spm"}),
        ("lower_case_split_by_punct", {"do_lower_case": True, "split_by_punct": True}),
    ]:
        tok = AutoTokenizer.from_pretrained(make_dir(root, name, config))
        assert len(tok) == base_len
        vt = variant_texts() if name != "lower_case_split_by_punct" else variant_texts()[:30]
        out[name] = [{"text": t, "ids": ids_of(tok, t)} for t in vt]

    # --- the saved tokenizer.json, minus the two big blobs
    with open(os.path.join(saved, "tokenizer.json")) as f:
        skeleton = json.load(f)
    skeleton["model"]["vocab"] = None
    for norm in skeleton["normalizer"]["normalizers"]:
        if norm.get("type") == "Precompiled":
            norm["precompiled_charsmap"] = None

    meta = {
        "generator": "tools/gen_tokenizer_goldens.py",
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "spm_model_sha256": sha,
        "reference": "AutoTokenizer.from_pretrained(dir with spm.model, tokenizer_config.json, config.json) "
        "-> DebertaV2TokenizerFast; ids = tok(text)['input_ids'] before add_tokens(MARKERS)",
        "base_len": base_len,
        "len_with_markers": len(pairrm),
        "marker_ids": marker_ids,
        "special_ids": {t: base.convert_tokens_to_ids(t) for t in ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]},
        "added_tokens": [
            {"id": i, "content": str(t), "special": t.special, "normalized": t.normalized,
             "lstrip": t.lstrip, "rstrip": t.rstrip, "single_word": t.single_word}
            for i, t in sorted(pairrm.added_tokens_decoder.items())
        ],
        "checks": checks,
    }
    result = {"meta": meta, **out, "tokenizer_json_skeleton": skeleton}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    print(f"cases: " + ", ".join(f"{k}={len(v)}" for k, v in out.items()))
    print(f"base_len={base_len} len_with_markers={len(pairrm)} marker_ids={marker_ids}")
    print(f"check markers_change_nothing_without_markers: {no_marker_same}")
    print(f"check tokenizer.json (save_pretrained) == spm path: {json_same} {json_diff}")
    print(f"check marker prefix: {n - len(failures)}/{n} ok")
    for f_ in failures[:10]:
        print("  marker prefix failure:", json.dumps(f_, ensure_ascii=False)[:300])
    print(f"info: slow != fast on {len(slow_diff)} of {len(texts)} default texts")


if __name__ == "__main__":
    main()
