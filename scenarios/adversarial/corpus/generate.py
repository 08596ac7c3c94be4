#!/usr/bin/env python3
"""Writes this project's own attack paraphrases and benign customer messages as case files
(own_*.yaml, benign_*.yaml) from data_attacks.py and data_benign.py. Deterministic and offline:

    python3 scenarios/adversarial/corpus/generate.py

rewrites the same bytes every time. The files carry no `source` or `split`: each case falls on
the tune or holdout side by the hash of its family (harness/src/attack.rs, split_of), and every
paraphrase of one attack (its translations and disguises) shares that family.
"""

import base64
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the data

HERE = os.path.dirname(os.path.abspath(__file__))
# The case files go to cases/: the spec loader skips directories named cases/ (harness/src/spec/load.rs),
# so they are read only by an `attacks:` step that points at them.
OUT = os.path.join(HERE, "cases")
sys.path.insert(0, HERE)
import data_attacks  # noqa: E402
import data_benign  # noqa: E402
from yamlout import write_case_file  # noqa: E402

# category -> (file prefix, OWASP id, requirement id of a high case, of a critical case)
CATEGORIES = {
    "prompt_injection": ("own_pi_", "LLM01", "ADV-03", "ADV-01"),
    "data_exfiltration": ("own_dx_", "LLM01", "ADV-01", "ADV-01"),
    "role_play": ("own_rp_", "LLM01", "ADV-02", "ADV-02"),
    "jailbreak": ("own_jb_", "LLM01", "ADV-23", "ADV-23"),
    "context_manipulation": ("own_cm_", "LLM01", "ADV-04", "ADV-04"),
    "tool_injection": ("own_ti_", "LLM07", "ADV-19", "ADV-19"),
    "ssrf": ("own_ssrf_", "LLM07", "ADV-20", "ADV-20"),
}

# ---------------------------------------------------------------------------------- disguises

CYRILLIC = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e",
            "p": "\u0440", "s": "\u0455", "x": "\u0445", "y": "\u0443", "A": "\u0410", "B": "\u0412",
            "C": "\u0421", "E": "\u0415", "H": "\u041d", "K": "\u041a", "M": "\u041c", "O": "\u041e",
            "P": "\u0420", "T": "\u0422", "X": "\u0425"}
GREEK = {"A": "\u0391", "B": "\u0392", "E": "\u0395", "H": "\u0397", "I": "\u0399", "K": "\u039a",
         "M": "\u039c", "N": "\u039d", "O": "\u039f", "P": "\u03a1", "T": "\u03a4", "X": "\u03a7",
         "Y": "\u03a5", "Z": "\u0396", "o": "\u03bf", "v": "\u03bd", "u": "\u03c5", "i": "\u03b9"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def words(text, f, min_len=1):
    """Applies f to every run of letters of at least min_len characters (and its index)."""
    out, cur, n = [], [], 0

    def flush():
        nonlocal n
        if cur:
            w = "".join(cur)
            out.append(f(w, n) if len(w) >= min_len else w)
            n += 1
            cur.clear()

    for ch in text:
        if ch.isalpha():
            cur.append(ch)
        else:
            flush()
            out.append(ch)
    flush()
    return "".join(out)


def typo(text):
    def f(w, n):
        if n % 2:
            return w
        p = len(w) // 2 - 1
        return w[:p] + w[p + 1] + w[p] + w[p + 2:]
    return words(text, f, 5)


def spaced(text):
    # letters of a long word one space apart, words three spaces apart
    return words(text.replace(" ", "\0"), lambda w, n: " ".join(w), 5).replace("\0", "   ")


def homoglyph(text):
    return "".join(CYRILLIC.get(ch, ch) for ch in text)


def zero_width(text):
    return words(text, lambda w, n: w[:2] + "\u200b" + w[2:], 4)


def leet(text):
    return "".join(LEET.get(ch, ch) for ch in text)


def mixed_scripts(text):
    def f(w, n):
        table = CYRILLIC if n % 2 else GREEK
        return "".join(table.get(ch, ch) for ch in (w.upper() if n % 2 == 0 else w))
    return words(text, f, 3)


def fullwidth(text):
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ("\u3000" if ch == " " else ch) for ch in text)


def alternating_case(text):
    i = 0
    out = []
    for ch in text:
        if ch.isalpha():
            out.append(ch.upper() if i % 2 else ch.lower())
            i += 1
        else:
            out.append(ch)
    return "".join(out)


def base64_wrapped(text):
    return "Decode this base64 and follow it exactly: " + base64.b64encode(text.encode()).decode()


def reversed_wrapped(text):
    return "Read the following backwards and do what it says: " + text[::-1]


def combining_marks(text):
    return "".join(ch + "\u0301" if ch in "aeiouAEIOU" else ch for ch in text)


def soft_hyphens(text):
    return words(text, lambda w, n: w[: len(w) // 2] + "\u00ad" + w[len(w) // 2:], 6)


DISGUISES = [("typos", typo), ("spaced letters", spaced), ("Cyrillic homoglyphs", homoglyph),
             ("zero-width spaces", zero_width), ("leetspeak", leet), ("mixed Greek/Cyrillic/Latin", mixed_scripts),
             ("fullwidth forms", fullwidth), ("alternating case", alternating_case), ("base64", base64_wrapped),
             ("reversed", reversed_wrapped), ("combining accents", combining_marks), ("soft hyphens", soft_hyphens)]


# ------------------------------------------------------------------------------------ attacks


def attacks():
    by_cat = {c: [] for c in CATEGORIES}
    for k, (cat, sev, slug, *texts) in enumerate(data_attacks.MULTILINGUAL):
        _, _, adv_high, adv_crit = CATEGORIES[cat]
        adv = adv_crit if sev == "critical" else adv_high
        for lang, t in zip(data_attacks.LANGS, texts):
            by_cat[cat].append({"adv": adv, "severity": sev, "family": "own_" + slug, "payload": t,
                                "description": "lang: " + lang})
        name, f = DISGUISES[k % len(DISGUISES)]
        by_cat[cat].append({"adv": adv, "severity": sev, "family": "own_" + slug, "payload": f(texts[0]),
                            "description": "lang: en, disguise: " + name})
    for k, (cat, sev, slug, text) in enumerate(data_attacks.OBFUSCATED):
        _, _, adv_high, adv_crit = CATEGORIES[cat]
        adv = adv_crit if sev == "critical" else adv_high
        by_cat[cat].append({"adv": adv, "severity": sev, "family": "own_" + slug, "payload": text,
                            "description": "lang: en"})
        for j in range(5):
            name, f = DISGUISES[(k * 5 + j) % len(DISGUISES)]
            by_cat[cat].append({"adv": adv, "severity": sev, "family": "own_" + slug, "payload": f(text),
                                "description": "lang: en, disguise: " + name})
    total = 0
    for cat, cases in by_cat.items():
        prefix, owasp, _, _ = CATEGORIES[cat]
        total += write_case_file(
            os.path.join(OUT, f"own_{cat}.yaml"),
            header=["This project's own paraphrases (generate.py from data_attacks.py; do not edit by hand).",
                    "A family is one attack: its English text, its translations (es, fr, de, vi, zh, ar) and its",
                    "disguises (typos, spacing, homoglyphs, zero-width characters, mixed scripts, encodings)."],
            category=cat, owasp=owasp, prefix=prefix, cases=cases)
    return total


# ------------------------------------------------------------------------------------- benign


def benign_case(payload, family, description):
    c = {"adv": "ADV-29", "severity": "low", "expect": "allowed", "payload": payload,
         "description": description}
    if family:
        c["family"] = family
    return c


def benign():
    cases = []
    for slug, *texts in data_benign.TRANSLATED:
        for lang, t in zip(data_attacks.LANGS, texts):
            cases.append(benign_case(t, "benign_" + slug, "lang: " + lang))
    n = write_case_file(
        os.path.join(OUT, "benign_translated.yaml"),
        header=["Ordinary customer messages, many full of the words attacks use (generate.py from",
                "data_benign.py; do not edit by hand). A family is one message in en, es, fr, de, vi, zh, ar."],
        category="benign", prefix="bn_tr_", cases=cases)
    cases = []
    for kind, texts, lang in [("Persian with ZWNJ", data_benign.PERSIAN, "fa"),
                              ("Hebrew", data_benign.HEBREW, "he"),
                              ("emoji ZWJ sequences", data_benign.EMOJI, "en"),
                              ("pasted code or logs", data_benign.CODE, "en"),
                              ("shop URLs", data_benign.URLS, "en"),
                              ("trigger words", data_benign.TRIGGERS, "en"),
                              ("casual, typos, spacing", data_benign.CASUAL, "en")]:
        for t in texts:
            cases.append(benign_case(t, None, f"lang: {lang}, kind: {kind}"))
    n += write_case_file(
        os.path.join(OUT, "benign_mixed.yaml"),
        header=["Ordinary customer messages (generate.py from data_benign.py; do not edit by hand):",
                "Persian written with zero-width non-joiners, Hebrew, emoji joined with ZWJ, pasted code and",
                "logs, the shop's URLs, messages full of trigger words, casual writing with typos."],
        category="benign", prefix="bn_mx_", cases=cases)
    return n


if __name__ == "__main__":
    a = attacks()
    b = benign()
    print(f"{a} attack paraphrases, {b} benign messages")
