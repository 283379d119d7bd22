#!/usr/bin/env python3
"""The seed's pattern matching, as a baseline: each line parsed with json, then every
catalog regex searched with Python's `re` (compiled once, case-insensitive) over the
message and error fields. Prints one JSON line like the Rust side.

    python3 seed_regex.py DIR      (DIR/lines.jsonl, DIR/catalog.json from side_by_side export)
"""
import json
import re
import sys
import time


def main(d):
    catalog = json.load(open(f"{d}/catalog.json"))
    patterns = [(p["id"], re.compile(p["regex"], re.IGNORECASE | re.MULTILINE)) for p in catalog]
    lines = [json.loads(l) for l in open(f"{d}/lines.jsonl")]
    hits = 0
    started = time.perf_counter()
    for l in lines:
        try:
            rec = json.loads(l["line"])
        except ValueError:
            continue
        text = str(rec.get("message", ""))
        error = rec.get("error")
        if error:
            text = f"{text}\n{error}"
        for _id, rx in patterns:
            if rx.search(text):
                hits += 1
    secs = time.perf_counter() - started
    print(json.dumps({"impl": "seed: json.loads + re.search per pattern (Python)", "lines": len(lines),
                      "seconds": secs, "lines_per_s": len(lines) / secs, "pattern_hits": hits}))


if __name__ == "__main__":
    main(sys.argv[1])
