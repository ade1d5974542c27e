"""The top entries of a py-spy profile: reads collapsed stacks (`py-spy record -f raw`).

Prints the functions with the most samples on the stack (inclusive) and at the top of it (own
time), as shares of the samples whose stack passes through `--under` (default: the benchmark's
`drain`), so start-up and set-up are left out.

Run:  py-spy record -r 200 -f raw -o prof.raw -- python bench/pipeline_throughput.py ...
      python bench/collapsed_top.py prof.raw [--under drain] [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>[^ ]+) \((?P<file>[^:]+)(?::(?P<line>\d+))?\)$")


def frame_key(frame: str) -> str:
    """`function (path/to/file.py)` without the line, the path shortened to its package."""
    found = _FRAME.match(frame)
    if found is None:
        return frame
    path = found["file"]
    for marker in ("/src/", "/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{found['name']} ({path})"


def main() -> None:
    """Read the collapsed stacks, print the two tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--under", default="drain")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [frame_key(f) for f in stack.split(";")]
        names = [f.split(" ", 1)[0] for f in frames]
        if args.under not in names:
            continue
        frames = frames[names.index(args.under) :]
        count = int(count_text)
        total += count
        for key in set(frames):
            inclusive[key] += count
        own[frames[-1]] += count
    print(f"{total} samples under {args.under}")
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"\n--- top {args.top} by {title} samples ---")
        for key, count in counter.most_common(args.top):
            print(f"{100 * count / max(total, 1):6.1f}%  {count:>6}  {key}")


if __name__ == "__main__":
    main()
