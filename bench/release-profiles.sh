#!/usr/bin/env bash
# Which release profile: builds `purchase`, `spend` and the hello-world
# baseline under each candidate (opt-level, LTO, panic strategy), each in its
# own target directory (target/profiles/<name>, several GB each), and runs the
# request benchmark on each build. About 10 minutes a candidate on 2 cores;
# not part of make test or make bench. docs/performance.md's table comes from it.
#   bash bench/release-profiles.sh [name ...]   (default: every candidate)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
#          name          opt-level  lto   panic
candidates="o3-thin       3          thin  unwind
o3-fat        3          fat   unwind
o3-fat-abort  3          fat   abort
s-fat         s          fat   unwind
s-fat-abort   s          fat   abort
z-fat-abort   z          fat   abort"
wanted=" ${*:-} "
while read -r name opt lto panic; do
  [[ "$wanted" == "  " || "$wanted" == *" $name "* ]] || continue
  dir="target/profiles/$name"
  started=$(date +%s)
  (
    export CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt" CARGO_PROFILE_RELEASE_LTO="$lto" \
      CARGO_PROFILE_RELEASE_PANIC="$panic" CARGO_TARGET_DIR="$dir"
    cargo build --release --quiet -p purchase -p spend
    # On its own, as make bench builds it: built with the functions, the
    # hello-world would get their dependencies' features (hyper's HTTP/2 among them).
    cargo build --release --quiet -p hello-lambda
  )
  echo "== $name (opt-level $opt, lto $lto, panic $panic): built in $(( $(date +%s) - started )) s"
  BENCH_BIN_DIR="$root/$dir/release" BENCH_FUNCTIONS=purchase,spend \
    bash infra/with-emulator.sh credits-bench cargo bench --quiet -p integration-tests --bench requests \
    | grep -E "hello|purchase|spend|route"
done <<<"$candidates"
