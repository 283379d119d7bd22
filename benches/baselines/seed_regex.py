#!/usr/bin/env python3
"""The seed's pattern matching, as a baseline: exactly the seed's loop, each line parsed with
`json.loads`, then its 14 regexes (`../shared/baselines/seed_patterns.py`, compiled once,
case-insensitive) searched with `re.search` over the message. Timed with process time, like
the Rust side's one thread. Prints one JSON line like the Rust side.

    python3 seed_regex.py DIR      (DIR/lines.jsonl from side_by_side export)
"""
import json
import os
import sys
import time

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/baselines")
sys.path.insert(0, SHARED)
from seed_patterns import COMPILED  # noqa: E402


def main(d):
    patterns = list(COMPILED.values())
    lines = [json.loads(l)["line"] for l in open(f"{d}/lines.jsonl")]
    hits = 0
    started = time.process_time()
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        text = str(rec.get("message", ""))
        for rx in patterns:
            if rx.search(text):
                hits += 1
    secs = time.process_time() - started
    print(json.dumps({"impl": "seed: json.loads + its 14 regexes, re.search each (Python)", "lines": len(lines),
                      "seconds": secs, "lines_per_s": len(lines) / secs, "pattern_hits": hits}))


if __name__ == "__main__":
    main(sys.argv[1])
