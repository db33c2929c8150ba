"""Turns the figures a reliability run recorded into the Markdown table of
docs/benchmarks.md ("Reliability scenarios"):
`python -m tests.reliability.table SESSION_DIR/reliability.txt`."""

import re
import sys

LINE = re.compile(r"RELIABILITY (\d+) ([^:]+): (.*)")


def table(text: str) -> str:
    rows = ["| # | scenario | figure from the run |", "| --- | --- | --- |"]
    found = sorted((int(m[1]), m[2], m[3]) for m in map(LINE.match, text.splitlines()) if m)
    rows += [f"| {n} | {name} | {figure} |" for n, name, figure in found]
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(open(sys.argv[1]).read()))
