"""drain3 (0.9.11) on the Loghub-2k sets with each set's published settings, on the very
contents ailogs mined (WORK/<set>.content.txt, one line each, written by the test
pipeline/tests/drain_classic.rs): the reference for ailogs' classic Drain mode. Writes
WORK/<set>.drain3.jsonl (cluster id and template per line) and prints GA per set.

python3 benches/baselines/drain3_loghub.py SHARED_LOGHUB WORK
"""
import json
import os
import re
import subprocess
import sys

from drain3.drain import Drain

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared/loghub"
work = sys.argv[2] if len(sys.argv) > 2 else "target/loghub"
settings = json.load(open(os.path.join(shared, "settings.json")))["datasets"]
print("| set | drain3, per-set settings |\n|---|---|")
total, n = 0.0, 0
for name, s in settings.items():
    content_file = os.path.join(work, f"{name}.content.txt")
    if not os.path.exists(content_file):
        continue
    masks = [re.compile(r) for r in s["regex"]]
    drain = Drain(depth=s["depth"], sim_th=s["st"], max_children=100)
    ids = []
    for line in open(content_file, encoding="utf-8").read().split("\n")[:-1]:
        for m in masks:
            line = m.sub("<*>", line)
        cluster, _ = drain.add_log_message(line)
        ids.append(cluster.cluster_id)
    pred = os.path.join(work, f"{name}.drain3.jsonl")
    with open(pred, "w") as f:
        for i in ids:
            f.write(json.dumps({"cluster_id": i, "template": drain.id_to_cluster[i].get_template()}) + "\n")
    truth = os.path.join(shared, name, f"{name}_2k.log_structured_corrected.csv")
    if not os.path.exists(truth):
        truth = os.path.join(shared, name, f"{name}_2k.log_structured.csv")
    out = subprocess.run(
        [sys.executable, os.path.join(shared, "score.py"), "--truth", truth, "--pred", pred, "--group-by", "id"],
        capture_output=True, text=True, check=True,
    )
    ga = json.loads(out.stdout)["GA"]
    total, n = total + ga, n + 1
    print(f"| {name} | {ga:.3f} |")
if n:
    print(f"| **mean** | {total / n:.3f} |")
