#!/usr/bin/env python3
"""drain3 (pip package, shipped defaults) mining the same messages with the same masking ailogs'
miner applies (DIR/masks.json: its default masks, then numbers), as a baseline. Timed with
process time, like the Rust side's one thread.

    python3 drain3_miner.py DIR    (DIR/lines.jsonl and DIR/masks.json from side_by_side export)
"""
import json
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
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
    # Named masks (`<V>`), as drain3's documentation uses them: drain3 leaves `<*>` tokens out of
    # its similarity, so masking to `<*>` keeps "POST <*> <*>" from ever matching itself and
    # grows one cluster per line (tens of thousands, at a few hundred lines/s).
    config.masking_instructions = [MaskingInstruction(p, "V") for p in json.load(open(f"{d}/masks.json"))]
    miner = TemplateMiner(config=config)
    started = time.process_time()
    for m in messages:
        miner.add_log_message(m)
    secs = time.process_time() - started
    print(json.dumps({"impl": "drain3 0.9 add_log_message, same masks (Python)", "lines": len(messages),
                      "seconds": secs, "lines_per_s": len(messages) / secs, "templates": len(miner.drain.clusters)}))


if __name__ == "__main__":
    main(sys.argv[1])
