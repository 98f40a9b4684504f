#!/usr/bin/env python3
"""Writes a septsim TD trace for the huge-page merge study (study 1).

  gen_merge_workload.py OUT.jsonl --regions N --accesses N --tick-every N --fault-every N
                        [--hot-fraction F] [--hot-share F] [--conversions N] [--lazy-accepts N]
                        [--vcpus N] [--seed N]

A TD VM (vm_type tdx, --vcpus vCPUs) with one THP memslot: the working set
(--regions 2 MiB regions from GPA 0) and, after it, the regions the fault
trickle accepts 4K pages in.

- Phase "warm": every working-set region is accepted at 2M (the EPT
  violation AUGs it as one private 2M page) and written, the vCPUs taking
  the regions in turn.
- Phase "logging": dirty logging starts on the slot (`dirty_log` enable:
  the eager split BLOCKs, TRACKs and DEMOTEs every private 2M page); the
  vCPUs write one access run per region; --conversions random 4K pieces go
  shared and back like migration-time bounce buffers (MapGPA to shared, a
  write of the shared alias, MapGPA back, ACCEPT); the last --lazy-accepts
  of them are not accepted yet; `dirty_log` get.
- Phase "measured": `dirty_log` disable (policy C BLOCKs here); the guest
  writes each lazily accepted piece (the EPT violation AUGs it: PENDING, so
  its range looks whole to KVM but PROMOTE is refused) and ACCEPTs it only
  after the first `nx_recovery_tick`. Then --accesses random memory
  accesses by the vCPUs in turn: --hot-share of them go to the hot
  --hot-fraction of the regions, the rest to the others. An access
  event is a run of 8 accesses to one region (a random 4K page and every
  256 KiB after it, so every access is to a different 4K page). After every
  --tick-every accesses comes an `nx_recovery_tick` (one run of KVM's
  NX-recovery worker); after every --fault-every accesses one vCPU ACCEPTs
  the next 4K page of the fault regions (a new private EPT violation outside
  the working set, what policy B piggybacks on). 30 % of the runs write.
- Phase "teardown": `td_teardown`.

The merge policy (mmu.tdx_merge_policy) and the NX-recovery ratio are
config keys, not part of the trace. Also writes OUT.jsonl.params.json (the
parameters). Deterministic for a seed. Replay with --check verifies the
invariants after every event, at a cost that grows with the 4K pages
mapped: a 512 MiB working set and 160 000 accesses take seconds per policy.
"""
import argparse
import json
import os
import random

REGION = 2 << 20
PAGE = 4 << 10
RUN = 8  # accesses per access event
RUN_STRIDE = REGION // RUN
SHARED_BIT = 1 << 47  # the TD's shared GPA bit with 4-level EPT (GPAW 48)


def line(e):
    return json.dumps(e, separators=(",", ":")) + "\n"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--regions", type=int, required=True, help="2 MiB regions in the working set")
    ap.add_argument("--accesses", type=int, required=True, help="memory accesses in phase measured")
    ap.add_argument("--tick-every", type=int, required=True, help="accesses between two nx_recovery_ticks")
    ap.add_argument("--fault-every", type=int, required=True, help="accesses between two new private faults")
    ap.add_argument("--hot-fraction", type=float, default=0.2, help="fraction of the regions that are hot")
    ap.add_argument("--hot-share", type=float, default=0.8, help="fraction of the accesses to the hot regions")
    ap.add_argument("--conversions", type=int, default=4, help="4K pieces converted shared and back while logging")
    ap.add_argument("--lazy-accepts", type=int, default=2,
                    help="of those, pieces the guest accepts only in phase measured")
    ap.add_argument("--vcpus", type=int, default=4)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    if a.regions < 1:
        ap.error("--regions must be at least 1")
    for name in ("accesses", "tick_every", "fault_every"):
        if getattr(a, name) < RUN or getattr(a, name) % RUN:
            ap.error(f"--{name.replace('_', '-')} must be a positive multiple of {RUN}")
    if a.accesses <= a.tick_every:
        ap.error("--accesses must be more than --tick-every (the late ACCEPTs follow the first tick)")
    if not 0 < a.hot_fraction <= 1 or not 0 <= a.hot_share <= 1:
        ap.error("--hot-fraction must be in (0, 1], --hot-share in [0, 1]")
    if not 0 <= a.conversions <= a.regions:
        ap.error("--conversions must be in 0..--regions")
    if not 0 <= a.lazy_accepts <= a.conversions:
        ap.error("--lazy-accepts must be in 0..--conversions")
    if not 1 <= a.vcpus <= 256:
        ap.error("--vcpus must be in 1..256")
    return a


def warm(a, emit):
    emit({"type": "phase", "name": "warm"})
    for r in range(a.regions):
        vcpu = r % a.vcpus
        emit({"type": "accept", "vcpu": vcpu, "gpa": hex(r * REGION), "level": 1})
        emit({"type": "access", "vcpu": vcpu, "gpa": hex(r * REGION), "op": "w", "count": RUN,
              "stride": hex(RUN_STRIDE)})


def logging(a, rng, emit):
    emit({"type": "phase", "name": "logging"})
    emit({"type": "dirty_log", "slot": 0, "op": "enable"})
    for r in range(a.regions):
        emit({"type": "access", "vcpu": r % a.vcpus, "gpa": hex(r * REGION + rng.randrange(RUN_STRIDE // PAGE) * PAGE),
              "op": "w", "count": RUN, "stride": hex(RUN_STRIDE)})
    lazy = []
    for i, r in enumerate(sorted(rng.sample(range(a.regions), a.conversions))):
        vcpu, gpa = i % a.vcpus, r * REGION + rng.randrange(REGION // PAGE) * PAGE
        emit({"type": "map_gpa", "vcpu": vcpu, "gpa": hex(gpa | SHARED_BIT), "size": "4K"})
        emit({"type": "access", "vcpu": vcpu, "gpa": hex(gpa | SHARED_BIT), "op": "w"})
        emit({"type": "map_gpa", "vcpu": vcpu, "gpa": hex(gpa), "size": "4K"})
        if i >= a.conversions - a.lazy_accepts:
            lazy.append((vcpu, gpa))
        else:
            emit({"type": "accept", "vcpu": vcpu, "gpa": hex(gpa), "level": 0})
    emit({"type": "dirty_log", "slot": 0, "op": "get"})
    return lazy


def measured(a, rng, emit, hot, cold, lazy):
    emit({"type": "phase", "name": "measured"})
    emit({"type": "dirty_log", "slot": 0, "op": "disable"})
    # A guest touches no page it has not accepted: until the ACCEPTs, runs
    # in those regions keep off the PENDING pieces.
    pending = {}
    for vcpu, gpa in lazy:
        emit({"type": "access", "vcpu": vcpu, "gpa": hex(gpa), "op": "w"})
        pending[gpa // REGION] = gpa % RUN_STRIDE // PAGE
    faults = 0
    for i in range(a.accesses // RUN):
        done = i * RUN
        if done and done % a.tick_every == 0:
            emit({"type": "nx_recovery_tick"})
            for vcpu, gpa in lazy if done == a.tick_every else []:
                emit({"type": "accept", "vcpu": vcpu, "gpa": hex(gpa), "level": 0})
            pending = {}
        if done and done % a.fault_every == 0:
            gpa = a.regions * REGION + faults * PAGE
            emit({"type": "accept", "vcpu": faults % a.vcpus, "gpa": hex(gpa), "level": 0})
            faults += 1
        pool = hot if not cold or rng.random() < a.hot_share else cold
        r = pool[rng.randrange(len(pool))]
        first = rng.randrange(RUN_STRIDE // PAGE)
        if pending.get(r) == first:
            first = (first + 1) % (RUN_STRIDE // PAGE)
        emit({"type": "access", "vcpu": i % a.vcpus, "gpa": hex(r * REGION + first * PAGE),
              "op": "w" if rng.random() < 0.3 else "r", "count": RUN, "stride": hex(RUN_STRIDE)})
    return faults


def main():
    a = parse_args()
    rng = random.Random(a.seed)
    order = list(range(a.regions))
    rng.shuffle(order)
    n_hot = max(1, round(a.regions * a.hot_fraction))
    hot, cold = sorted(order[:n_hot]), sorted(order[n_hot:])
    faults = (a.accesses - 1) // a.fault_every
    fault_regions = faults // (REGION // PAGE) + 1
    slot_mib = (a.regions + fault_regions) * 2
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        emit = lambda e: f.write(line(e))  # noqa: E731
        emit({"format": "septsim-trace", "version": 1,
              "description": f"huge-page merge study: TD with {a.vcpus} vCPUs, {a.regions} private 2M regions split "
                             f"by dirty logging ({a.conversions} 4K pieces shared and back meanwhile, {a.lazy_accepts} accepted late), then "
                             f"{a.accesses} random accesses ({a.hot_share:g} of them to {n_hot} hot regions), an "
                             f"nx_recovery_tick every {a.tick_every} and a new private fault every {a.fault_every}; "
                             f"seed {a.seed}"})
        emit({"type": "vm_create", "vcpus": a.vcpus, "vm_type": "tdx"})
        emit({"type": "memslot_add", "slot": 0, "gpa": "0x0", "size": f"{slot_mib}M", "backing": "thp"})
        emit({"type": "td_finalize"})
        warm(a, emit)
        lazy = logging(a, rng, emit)
        assert measured(a, rng, emit, hot, cold, lazy) == faults
        emit({"type": "phase", "name": "teardown"})
        emit({"type": "td_teardown"})
    with open(a.out + ".params.json", "w") as f:
        f.write(json.dumps({"regions": a.regions, "hot_regions": n_hot, "vcpus": a.vcpus, "accesses": a.accesses,
                            "tick_every": a.tick_every, "fault_every": a.fault_every, "hot_share": a.hot_share,
                            "conversions": a.conversions, "lazy_accepts": a.lazy_accepts, "new_faults": faults, "seed": a.seed}, indent=1) + "\n")
    os.replace(tmp, a.out)


main()
