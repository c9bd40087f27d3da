#!/usr/bin/env python3
"""Prints the tables of BENCHMARKS.md from criterion's results of `cargo bench --bench locks`.

Usage: python3 crates/lockcheck/benches/summarize.py [TARGET_DIR]
(TARGET_DIR defaults to $CARGO_TARGET_DIR, else ./target). For each row and contender: the
median time per operation with criterion's 95% confidence interval of the median, and the ratio
of the medians to raw parking_lot's.
"""
import json
import os
import sys

ROWS = [
    ("lock_unlock_1t", "1 thread lock+unlock"),
    ("nested_known_1t", "1 thread A then B (edge known)"),
    ("nested_own_pair_2t", "2 threads, each its own A then B"),
    ("nested_own_pair_8t", "8 threads on 2 cores, each its own pair"),
    ("nested_shared_pair_8t", "8 threads on 2 cores, one shared pair (contended)"),
    ("read_unlock_1t", "RwLock read+unlock, 1 thread"),
    ("new_edge", "never-seen edge (fresh pair, A then B)"),
    ("drop_nested", "drop of a nested pair"),
]
CONTENDERS = [
    "parking_lot",
    "std",
    "lockcheck_plain",
    "lockcheck_checked",
    "lockcheck_checked_nobt",
    "lockcheck_recording",
    "lockcheck_recording_lct",
    "tracing_mutex",
    "parking_lot_dd",
]


def median(root, row, who):
    path = os.path.join(root, "criterion", row, who, "new", "estimates.json")
    try:
        with open(path) as f:
            m = json.load(f)["median"]
    except FileNotFoundError:
        return None
    ci = m["confidence_interval"]
    return m["point_estimate"], ci["lower_bound"], ci["upper_bound"]


def fmt_ns(x):
    if x >= 10_000:
        return f"{x / 1000:.1f} us"
    if x >= 100:
        return f"{x:.0f} ns"
    return f"{x:.1f} ns"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    present = [c for c in CONTENDERS if any(median(root, r, c) for r, _ in ROWS)]
    print("Median per operation [95% CI of the median]:\n")
    print("| row | " + " | ".join(present) + " |")
    print("|---" * (len(present) + 1) + "|")
    for row, label in ROWS:
        cells = []
        for c in present:
            m = median(root, row, c)
            cells.append(f"{fmt_ns(m[0])} [{fmt_ns(m[1])}, {fmt_ns(m[2])}]" if m else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nRatio of medians to raw parking_lot:\n")
    print("| row | " + " | ".join(present) + " |")
    print("|---" * (len(present) + 1) + "|")
    for row, label in ROWS:
        base = median(root, row, "parking_lot")
        cells = []
        for c in present:
            m = median(root, row, c)
            # Dropping an uninstrumented lock costs nothing (0 ns): no ratio to take.
            ok = m and base and base[0] >= 1.0
            cells.append(f"{m[0] / base[0]:.2f}x" if ok else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
