#!/usr/bin/env python3
"""drain3 (pip package, shipped defaults) mining the same messages, as a baseline.

    python3 drain3_miner.py DIR    (DIR/lines.jsonl from side_by_side export)
"""
import json
import sys
import time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig


def main(d):
    messages = []
    for l in open(f"{d}/lines.jsonl"):
        try:
            messages.append(str(json.loads(json.loads(l)["line"]).get("message", "")))
        except ValueError:
            pass
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    started = time.perf_counter()
    for m in messages:
        miner.add_log_message(m)
    secs = time.perf_counter() - started
    print(json.dumps({"impl": "drain3 0.9 add_log_message (Python)", "lines": len(messages), "seconds": secs,
                      "lines_per_s": len(messages) / secs, "templates": len(miner.drain.clusters)}))


if __name__ == "__main__":
    main(sys.argv[1])
