#!/usr/bin/env bash
# The drop-in promise, checked on real crates: fetch a published crate, change only its `use` lines
# (parking_lot:: -> lockcheck::, std::sync:: -> lockcheck::sync::, plus `extern crate lockcheck;`
# on edition 2015), depend on this checkout's lockcheck, and run the crate's own test suite with
# instrumentation on (a debug build) and `LOCKCHECK=panic`, so any report fails the suite.
#
#   tests/real-crates/swap.sh                          # the default set below
#   tests/real-crates/swap.sh r2d2@0.8.10:parking_lot  # one crate: name@version:what-to-swap
#   tests/real-crates/swap.sh 'r2d2@0.8.10:parking_lot:--skip events'   # with test-binary arguments
#
# `inject/NAME.rs`, when present, is added to the crate's tests: a bug made through the crate's
# public API that lockcheck must report (for r2d2: two pools whose timeout handlers peek at each
# other, an AB-BA).
#
# Not part of `cargo test` (it downloads crates and builds their dependency trees: minutes);
# see docs/reliability.md. Needs the crates.io registry. Exit code: the number of crates that failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${SWAP_WORK:-$root/target/real-crates}
export CARGO_TARGET_DIR=$work/target
mkdir -p "$work"
crates=("$@")
if [ ${#crates[@]} -eq 0 ]; then
    # r2d2's `test::events` asserts the order of events from its background threads and fails
    # unswapped too on a loaded machine (seen here: 2 runs in 5 with plain parking_lot).
    crates=('r2d2@0.8.10:parking_lot:--skip test::events' scheduled-thread-pool@0.2.8:parking_lot
        threadpool@1.8.1:std rayon-core@1.13.0:std)
fi

fetch() { # name version -> prints the path of the unpacked source in cargo's registry
    local name=$1 version=$2 probe=$work/probe-$1
    mkdir -p "$probe/src"
    printf '[package]\nname = "probe"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\n%s = "=%s"\n' \
        "$name" "$version" >"$probe/Cargo.toml"
    : >"$probe/src/lib.rs"
    (cd "$probe" && cargo fetch -q) || return 1
    ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$name-$version" | head -n 1
}

failed=0
for spec in "${crates[@]}"; do
    nv=${spec%%:*} rest=${spec#*:}
    what=${rest%%:*} args=""
    [ "$rest" != "$what" ] && args=${rest#*:}
    name=${nv%@*} version=${nv#*@}
    src=$(fetch "$name" "$version") || { echo "FAIL $nv: cannot fetch"; failed=$((failed + 1)); continue; }
    dst=$work/$name-$version
    rm -rf "$dst" && cp -r "$src" "$dst" && chmod -R u+w "$dst"
    # The crate stands alone (no parent workspace) and depends on this checkout's lockcheck.
    grep -q '^\[workspace\]' "$dst/Cargo.toml" || printf '\n[workspace]\n' >>"$dst/Cargo.toml"
    if grep -q '^\[dependencies\]' "$dst/Cargo.toml"; then
        sed -i "0,/^\[dependencies\]/s##[dependencies]\nlockcheck = { path = \"$root/crates/lockcheck\" }#" "$dst/Cargo.toml"
    else
        printf '\n[dependencies]\nlockcheck = { path = "%s/crates/lockcheck" }\n' "$root" >>"$dst/Cargo.toml"
    fi
    files=$(grep -rlE --include='*.rs' "use (::)?(parking_lot|std::sync)" "$dst/src" "$dst/tests" "$dst/benches" "$dst/examples" 2>/dev/null)
    for f in $files; do
        case $what in
        parking_lot) sed -i -E 's/^(\s*(pub(\([a-z]+\))? )?use )(::)?parking_lot::/\1lockcheck::/' "$f" ;;
        std) sed -i -E 's/^(\s*(pub(\([a-z]+\))? )?use )(::)?std::sync::/\1lockcheck::sync::/' "$f" ;;
        esac
    done
    if grep -qE '^edition *= *"2015"' "$dst/Cargo.toml" || ! grep -q '^edition' "$dst/Cargo.toml"; then
        for lib in "$dst/src/lib.rs" "$dst"/tests/*.rs; do
            [ -f "$lib" ] && sed -i '0,/^\(extern crate\|use\|mod\|pub\)/s//extern crate lockcheck;\n&/' "$lib"
        done
    fi
    changed=$(cd "$dst" && diff -r "$src" . 2>/dev/null | grep -cE '^[<>]' || true)
    # A crate may come with an injected bug made through its public API only (inject/NAME.rs):
    # the suite then also checks that lockcheck reports it.
    if [ -f "$here/inject/$name.rs" ]; then
        mkdir -p "$dst/tests" && cp "$here/inject/$name.rs" "$dst/tests/lockcheck_inject.rs"
    fi
    log=$work/$name-$version.log
    echo "== $nv ($what): $changed changed lines; cargo test (log: $log)"
    if (cd "$dst" && LOCKCHECK=panic timeout 1200 cargo test -q -- $args >"$log" 2>&1); then
        echo "ok   $nv: $(grep -E '^test result' "$log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"
    else
        failed=$((failed + 1))
        echo "FAIL $nv: see $log"; grep -E 'error(\[E[0-9]+\])?:|lockcheck:|panicked' "$log" | head -n 8
    fi
done
exit $failed
