#!/usr/bin/env bash
# Does the deployed link start like the benchmarked one? `make bench` measures
# `cargo build --release`'s binaries, linked by the system's linker; the
# deployed ones come from `cargo lambda build`, linked by zig. This builds
# the hello-world, sdk-floor and the functions both ways for x86_64 (the
# cargo-lambda build in target/x86_64-unknown-linux-gnu, about 8 minutes from
# scratch on 2 cores), copies both sets at the same moment, and starts them in
# the same rounds of the request benchmark's cold-start part (BENCH_REQUESTS=0).
# Not part of make test or make bench. docs/performance.md's figures come from it.
#   bash bench/cargo-lambda-link.sh [function,...]   (default: sdk-floor,purchase,spend)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
functions="${1:-sdk-floor,purchase,spend}"
bash infra/venv.sh local # cargo-lambda, with zig
export PATH="$root/.venv/bin:$PATH"

# Both as make bench builds them (make bench-build): the hello-world on its
# own, so that it does not get the functions' dependencies' features.
make --no-print-directory bench-build
cargo lambda build --release --x86-64 --workspace --exclude hello-lambda --exclude integration-tests --quiet
cargo lambda build --release --x86-64 -p hello-lambda --quiet

sets="$(mktemp -d)"
trap 'rm -rf "$sets"' EXIT
mkdir "$sets/cargo" "$sets/cargo-lambda"
for f in hello-lambda ${functions//,/ }; do
  cp "target/release/$f" "$sets/cargo/$f"
  cp "target/lambda/$f/bootstrap" "$sets/cargo-lambda/$f"
done
first="${functions%%,*}"
for set in cargo cargo-lambda; do
  echo "$set: $first links $(readelf -d "$sets/$set/$first" | grep -o 'Shared library: \[[^]]*\]' | cut -d'[' -f2 | tr -d ']' | tr '\n' ' ')"
done
BENCH_BIN_DIR="$sets/cargo" BENCH_COMPARE_DIR="$sets/cargo-lambda" BENCH_FUNCTIONS="$functions" BENCH_REQUESTS=0 \
  bash infra/with-emulator.sh credits-bench cargo bench --quiet -p integration-tests --bench requests
