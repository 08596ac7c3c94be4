"""Writes case files in the catalogue's format (harness/src/attack.rs): one flow mapping per case,
every string double-quoted with JSON escapes (valid YAML), and invisible or direction characters
written as \\u escapes so that the file shows what the payload holds and always parses."""

import json
import re

# Characters a reader cannot see or that YAML would treat as a line break.
INVISIBLE = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160"
                       "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
                       "\ufeff\uffa0\ufff9-\ufffb]")


def q(s):
    """A YAML double-quoted scalar (JSON string syntax) with invisible characters escaped."""
    out = json.dumps(s, ensure_ascii=False)
    return INVISIBLE.sub(lambda m: "\\u%04X" % ord(m.group(0)), out)


def write_case_file(path, header, category, cases, prefix, owasp=None, source=None, split=None, never=None):
    lines = ["# " + h if h else "#" for h in header]
    lines.append("category: " + category)
    if owasp:
        lines.append("owasp: " + owasp)
    if never:
        lines.append("never: [" + ", ".join(q(n) for n in never) + "]")
    if source:
        lines.append("source: {name: %s, license: %s, version: %s, url: %s}" % (
            q(source["name"]), q(source["license"]), q(source["version"]), q(source["url"])))
    if split:
        lines.append("split: " + split)
    lines.append("cases:")
    for n, c in enumerate(cases, 1):
        fields = ["id: %s%03d" % (prefix, n), "adv: " + c["adv"], "severity: " + c["severity"],
                  "expect: " + c.get("expect", "blocked")]
        if c.get("violation"):
            fields.append("violation: " + c["violation"])
        if c.get("family"):
            fields.append("family: " + q(c["family"]))
        if c.get("description"):
            fields.append("description: " + q(c["description"]))
        fields.append("payload: " + q(c["payload"]))
        lines.append("  - {" + ", ".join(fields) + "}")
    text = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return len(cases)
