#!/usr/bin/env python3
"""Per-instruction counts of one benches/icount.sh scenario: which instructions one operation runs.

    benches/icount_hot.py checked/pair            # N = 100000, profile icount (build it first:
                                                  # benches/icount.sh builds it)
    N=20000 BIN=target/icount/examples/icount benches/icount_hot.py checked/lock

Runs the scenario once under callgrind with --dump-instr=yes and prints every instruction executed
at least N/2 times, with its count per operation and its disassembly (objdump), grouped by
function: the hot path, instruction by instruction (alignment nops included: callgrind counts
them too). The total is the hot path's cost per operation, start-up excluded.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

if len(sys.argv) != 2:
    sys.exit(__doc__)
scenario = sys.argv[1]
n = int(os.environ.get("N", "100000"))
binary = os.environ.get("BIN", "target/icount/examples/icount")

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "callgrind.out")
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
         "--compress-strings=no", "--callgrind-out-file=" + out, binary, scenario, str(n)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    counts = collections.Counter()
    after_call = False
    with open(out) as f:
        for line in f:
            if line.startswith("calls="):
                # The next cost line is the call's inclusive cost, not an instruction's own.
                after_call = True
                continue
            m = re.match(r"^(0x[0-9a-f]+)\s+\d+\s+(\d+)", line)
            if m:
                if not after_call:
                    counts[int(m.group(1), 16)] += int(m.group(2))
            after_call = False

disassembly = {}
function = "?"
objdump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", binary],
                         capture_output=True, text=True, check=True).stdout
for line in objdump.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
    if m:
        function = m.group(2)
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
    if m:
        disassembly[int(m.group(1), 16)] = (function, m.group(2))

total = 0
shown = None
for addr in sorted(counts):
    c = counts[addr]
    if c < n // 2:
        continue
    function, text = disassembly.get(addr, ("? (not in the binary: a shared library)", "?"))
    if function != shown:
        print("==", function[:120])
        shown = function
    print("  %x %6.2f  %s" % (addr, c / n, text[:100]))
    total += c
print("hot path: %.1f instructions per operation" % (total / n))
