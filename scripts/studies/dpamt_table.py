#!/usr/bin/env python3
"""Builds the Dynamic PAMT study's table from a sweep's results.

  dpamt_table.py RESULTS_DIR [--traces DIR] -o dpamt.csv

One row per sweep point: the trace's parameters (from the generator's
TRACE.params.json, in --traces, default RESULTS_DIR/../traces), the axes, and
  pamt_bytes_per_td_gib   PAMT memory for one GiB of this TD with its pages
                          populated: the static arrays per GiB of TDMR
                          (seam.pamt.static_bytes / TDMR GiB) plus the page
                          pairs installed (seam.pamt.pair_bytes at the end of
                          phase populate) spread over the TD's GiB
  pamt_add, pamt_cache_topups, pamt_cache_pages
                          kvm.tdx.* at the end of phase populate (pages held in
                          the page-pair caches while the TD runs)
  pamt_remove             kvm.tdx.pamt_remove over the whole run
  pamt_pair_bytes_end     Dynamic PAMT pair memory left after teardown: a leak
                          when not 0 (invariant pamt-zero reports it), except
                          with mmu.tdx_pamt_cache=kmem-cache, whose free S-EPT
                          pages keep their regions' pairs
  kmem_cache_pages_end    S-EPT pages the kmem_cache holds after teardown
  invariant_violations    broken invariants over the whole run (--check)
"""
import argparse
import csv
import json
import os
import sys

GIB = 1 << 30


def phase(stats, name):
    for ph in stats["stats"]["phases"]:
        if ph["name"] == name:
            return ph["counters"]
    sys.exit(f"{stats['trace']}: no phase '{name}'")


def row(point, stats, params):
    cfg = stats["config"]
    tdmr_gib = cfg["seam.tdmr_gib"] or cfg["host.mem_gib"]
    pop, total = phase(stats, "populate"), stats["stats"]["total"]["counters"]
    td_gib = params["td_mib"] / 1024
    per_gib = pop["seam.pamt.static_bytes"] / tdmr_gib + pop["seam.pamt.pair_bytes"] / td_gib
    return {
        "point": point["point"], "trace": point["trace"],
        "td_mib": params["td_mib"], "vcpus": params["vcpus"], "regions_pct": params["regions_pct"],
        "pages_per_region": params["pages_per_region"], "regions_touched": params["regions_touched"],
        "seam.dynamic_pamt": str(cfg["seam.dynamic_pamt"]).lower(), "mmu.tdx_pamt_cache": cfg["mmu.tdx_pamt_cache"],
        "status": point["status"], "invariant_violations": len(stats["invariant_violations"]),
        "pamt_bytes_per_td_gib": round(per_gib),
        "pamt_static_bytes_per_tdmr_gib": pop["seam.pamt.static_bytes"] // tdmr_gib,
        "pamt_pair_bytes_populated": pop["seam.pamt.pair_bytes"],
        "pamt_add": pop["kvm.tdx.pamt_add"], "pamt_cache_topups": pop["kvm.tdx.pamt_cache_topups"],
        "pamt_cache_pages": pop["kvm.tdx.pamt_cache_pages"],
        "pamt_remove": total["kvm.tdx.pamt_remove"], "pamt_pair_bytes_end": total["seam.pamt.pair_bytes"],
        "kmem_cache_pages_end": total["kvm.tdx.kmem_cache_pages"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--traces")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    traces = a.traces or os.path.join(a.results, "..", "traces")
    with open(os.path.join(a.results, "manifest.json")) as f:
        manifest = json.load(f)
    rows = []
    for p in manifest["points"]:
        if p["status"] not in ("ok", "violations"):  # a leak is a violation: keep it in the table
            sys.exit(f"{a.results}: point {p['point']} ({p['trace']}) did not run: {p['status']}")
        with open(os.path.join(a.results, "points", "%05d.json" % p["point"])) as f:
            stats = json.load(f)
        with open(os.path.join(traces, os.path.basename(p["trace"]) + ".params.json")) as f:
            params = json.load(f)
        rows.append(row(p, stats, params))
    tmp = a.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, a.out)


main()
