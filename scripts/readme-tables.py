#!/usr/bin/python3
"""Regenerates the two generated tables in README.md from the code:
the configuration reference (build/postern config-reference) and the reply table (src/reply.def).
Run after adding a config key or a reply; tests check that README and code agree."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def config_table():
    ref = subprocess.run([str(REPO / "build" / "postern"), "config-reference"], capture_output=True, text=True,
                         check=True).stdout
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for line in ref.splitlines():
        m = re.match(r"(\S+)\s+default: (\S+)\s+(.*)", line)
        rows.append(f"| `{m.group(1)}` | `{m.group(2)}` | {m.group(3)} |")
    return "\n".join(rows)


def reply_table():
    src = (REPO / "src" / "reply.def").read_text()
    pat = r'^R\((\w+),\s*(\d{3}),\s*"([0-9.]*)",\s*"((?:[^"\\]|\\.)*)",\s*\n?\s*"((?:[^"\\]|\\.)*)"'
    rows = ["| code | enhanced | text | when |", "| --- | --- | --- | --- |"]
    for _name, code, enh, text, expl in re.findall(pat, src, re.M):
        if enh:
            text = text.replace("%s", "…").replace("|", "\\|")
            rows.append(f"| {code} | {enh} | {text} | {expl} |")
    return "\n".join(rows)


def replace(readme, name, table):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


readme = (REPO / "README.md").read_text()
readme = replace(readme, "config-reference", config_table())
readme = replace(readme, "replies", reply_table())
(REPO / "README.md").write_text(readme)
