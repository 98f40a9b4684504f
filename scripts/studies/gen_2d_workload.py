#!/usr/bin/env python3
"""Writes a septsim trace of random guest-linear accesses (2D walks).

  gen_2d_workload.py OUT.jsonl --span-mib N --accesses N --backing thp|4k [--guest-page 4k|2m] [--seed N]

One vCPU; a memslot covering the data plus the guest page-table pool; the
guest maps the span with 4K (or 2M) pages; every data page is touched once
in a warm-up phase (so the EPT is populated), then the measured phase makes
random reads. Deterministic for a seed.
"""
import argparse
import json
import random

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--span-mib", type=int, required=True)
ap.add_argument("--accesses", type=int, required=True)
ap.add_argument("--backing", choices=["thp", "4k"], required=True)
ap.add_argument("--guest-page", choices=["4k", "2m"], default="4k")
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

span = a.span_mib << 20
pool = span  # guest page tables right after the data
pool_size = max(4 << 20, (span >> 9) + (8 << 20))
slot = pool + pool_size + (2 << 20)
cr3 = pool + pool_size
slot = (slot + (2 << 20) - 1) & ~((2 << 20) - 1)
rng = random.Random(a.seed)
ev = [
    {"format": "septsim-trace", "version": 1,
     "description": f"random 2D walks over {a.span_mib} MiB, guest {a.guest_page}, host {a.backing}, seed {a.seed}"},
    {"type": "vm_create", "vcpus": 1},
    {"type": "memslot_add", "slot": 0, "gpa": "0x0", "size": hex(slot), "backing": a.backing},
    {"type": "guest_pt_pool", "gpa": hex(pool), "size": hex(pool_size)},
    {"type": "guest_map", "cr3": hex(cr3), "gva": "0x0", "gpa": "0x0", "size": hex(span), "page": a.guest_page},
    {"type": "phase", "name": "warmup"},
    {"type": "set_cr3", "vcpu": 0, "cr3": hex(cr3)},
    {"type": "access", "vcpu": 0, "gva": "0x0", "op": "r", "count": span >> 12, "stride": "4K"},
    {"type": "invept", "vcpu": 0, "kind": "single"},
    {"type": "phase", "name": "measured"},
]
with open(a.out, "w") as f:
    for e in ev:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
    for _ in range(a.accesses):
        f.write('{"type":"access","vcpu":0,"gva":"%s","op":"r"}\n' % hex(rng.randrange(span >> 12) << 12))
