#!/usr/bin/env python3
"""Writes a septsim TD trace for the Dynamic PAMT study.

  gen_dpamt_workload.py OUT.jsonl --td-mib N --vcpus N --regions-pct P --pages-per-region N [--seed N]

A TD VM (vm_type tdx) with one memslot of --td-mib MiB of private memory.
Phase "populate": --regions-pct percent of the TD's 2 MiB regions (chosen at
random) are touched, each by one vCPU (round robin over the regions, so the
vCPUs interleave): the guest accepts the first of --pages-per-region
consecutive 4K pages at a random offset in the region (the ACCEPT takes the
EPT violation and TDH.MEM.PAGE.AUG first), then writes all of them (one
access event; each new page faults and is AUGed). One ACCEPT per region, not
per page, keeps the trace short: --check verifies the invariants after every
event. Phase "convert": every fourth
touched region is converted to shared whole (its private pages are removed,
so with Dynamic PAMT its page pair is PAMT.REMOVEd). Phase "teardown": the
TD is torn down. Static or Dynamic PAMT is the config key seam.dynamic_pamt,
not the trace. Also writes OUT.jsonl.params.json (the parameters, for
dpamt_table.py). Deterministic for a seed.
"""
import argparse
import json
import random

REGION = 2 << 20
PAGE = 4 << 10

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--td-mib", type=int, required=True)
ap.add_argument("--vcpus", type=int, default=4)
ap.add_argument("--regions-pct", type=float, required=True)
ap.add_argument("--pages-per-region", type=int, required=True)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
if a.td_mib < 2 or a.td_mib % 2:
    ap.error("--td-mib must be a positive multiple of 2")
if not 0 < a.regions_pct <= 100:
    ap.error("--regions-pct must be in (0, 100]")
if not 1 <= a.pages_per_region <= 512:
    ap.error("--pages-per-region must be in 1..512")

rng = random.Random(a.seed)
regions = a.td_mib // 2
touched = sorted(rng.sample(range(regions), max(1, round(regions * a.regions_pct / 100))))
P = a.pages_per_region


def line(e):
    return json.dumps(e, separators=(",", ":")) + "\n"


with open(a.out + ".params.json", "w") as f:
    f.write(json.dumps({"td_mib": a.td_mib, "vcpus": a.vcpus, "regions": regions, "regions_touched": len(touched),
                        "regions_pct": a.regions_pct, "pages_per_region": P,
                        "regions_converted": len(touched[::4]), "seed": a.seed}, indent=1) + "\n")
with open(a.out, "w") as f:
    f.write(line({"format": "septsim-trace", "version": 1,
                  "description": f"Dynamic PAMT study: TD of {a.td_mib} MiB, {a.vcpus} vCPUs, "
                                 f"{len(touched)} of {regions} 2M regions touched, {P} 4K pages each, "
                                 f"every 4th converted to shared, then teardown; seed {a.seed}"}))
    f.write(line({"type": "vm_create", "vcpus": a.vcpus, "vm_type": "tdx"}))
    f.write(line({"type": "memslot_add", "slot": 0, "gpa": "0x0", "size": f"{a.td_mib}M", "backing": "thp"}))
    f.write(line({"type": "td_finalize"}))
    f.write(line({"type": "phase", "name": "populate"}))
    for i, r in enumerate(touched):
        vcpu = i % a.vcpus
        base = r * REGION + rng.randrange(512 - P + 1) * PAGE
        f.write(line({"type": "accept", "vcpu": vcpu, "gpa": hex(base), "level": 0}))
        f.write(line({"type": "access", "vcpu": vcpu, "gpa": hex(base), "op": "w", "count": P, "stride": PAGE}))
    f.write(line({"type": "phase", "name": "convert"}))
    for r in touched[::4]:
        f.write(line({"type": "set_memory_attributes", "gpa": hex(r * REGION), "size": "2M", "private": False}))
    f.write(line({"type": "phase", "name": "teardown"}))
    f.write(line({"type": "td_teardown"}))
