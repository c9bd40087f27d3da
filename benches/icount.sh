#!/usr/bin/env bash
# Instructions per lock operation, counted by callgrind: deterministic, unlike timings on a shared
# machine. Each scenario of crates/lockcheck/examples/icount.rs runs twice, with N and 2N
# iterations; (total(2N) - total(N)) / N is the steady-state cost of one operation (start-up and
# the first, cold acquisition cancel out). Counts every thread (the trace writer included).
#
#   benches/icount.sh            # all scenarios, N = 100000, profile `icount` (-O3 + debug assertions)
#   N=20000 PROFILE=bench benches/icount.sh checked/lock parking_lot/lock
#   FEATURES=tokio benches/icount.sh checked/lock    # the runtime crate built with features
#   FEATURES=tokio benches/icount.sh raw_tokio/lock tokio/lock tokio/pair   # async locks in a task
#   benches/icount_hot.py checked/pair               # then: the hot path instruction by instruction
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
PROFILE=${PROFILE:-icount}
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 2; }
cargo build -q -p lockcheck --example icount --profile "$PROFILE" ${FEATURES:+--features "$FEATURES"}
case $PROFILE in # cargo's output directory of a profile
    dev | test) out=debug ;;
    release | bench) out=release ;;
    *) out=$PROFILE ;;
esac
dir=${CARGO_TARGET_DIR:-target}/$out/examples
bin=$dir/icount
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(parking_lot/lock plain/lock checked/lock parking_lot/pair plain/pair checked/pair
        parking_lot/read checked/read checked_recording/pair checked_recording_lct/pair
        checked_off/lock checked_off/pair checked_off/read checked/new_edge_bt checked_nobt/new_edge_bt
        checked_nobt/new_class_edge)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total() { # scenario iterations -> instructions of the whole run
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
    sed -n 's/^summary: //p; s/^totals: //p' "$tmp/out" | head -n 1
}
printf '%-26s %14s\n' "scenario ($PROFILE${FEATURES:+, features $FEATURES}, N=$N)" "instr/op"
declare -A per
for s in "${scenarios[@]}"; do
    a=$(total "$s" "$N")
    b=$(total "$s" $((2 * N)))
    per[$s]=$(awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
    printf '%-26s %14s\n' "$s" "${per[$s]}"
done
# Ratios to parking_lot for the operations measured on both.
for op in lock pair read; do
    base=${per[parking_lot/$op]:-}
    [ -n "$base" ] || continue
    for s in "${scenarios[@]}"; do
        case $s in */$op) [ "$s" = "parking_lot/$op" ] || awk -v s="$s" -v x="${per[$s]}" -v b="$base" \
            'BEGIN { printf "%-26s %13.2fx parking_lot\n", s, x / b }' ;; esac
    done
done
