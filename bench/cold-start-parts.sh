#!/usr/bin/env bash
# What each part of a function's start costs: starts sdk-floor (the logger,
# the SDK configuration and the DynamoDB and SES clients, and nothing of the
# service's) beside the same binary started with parts left out (FLOOR_SKIP,
# bench/sdk-floor), in the same rounds of the request benchmark's cold-start
# part, and prints the sdk-floor lines. The last, with everything left out,
# does what the hello-world does, in sdk-floor's binary: what the binary's size
# costs by itself. Not part of make test or make bench; docs/performance.md's figures
# come from it.
#   bash bench/cold-start-parts.sh [runs]   (default: 3 runs of every variant)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${1:-3}"
make --no-print-directory bench-build # as make bench builds them

# Both sets start the same files: BENCH_COMPARE_ENV alone compares a binary with itself.
for run in $(seq "$runs"); do
  for skip in logger ses clients logger,clients; do
    echo "== run $run, FLOOR_SKIP=$skip"
    BENCH_COMPARE_ENV="FLOOR_SKIP=$skip" BENCH_FUNCTIONS=sdk-floor BENCH_REQUESTS=0 \
      bash infra/with-emulator.sh credits-bench cargo bench --quiet -p integration-tests --bench requests \
      | grep -E '^  sdk-floor'
  done
done
