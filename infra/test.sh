#!/usr/bin/env bash
# `make test`: installs the local stack, starts the emulator on a free loopback
# port, creates the table from template.yaml, lints the template, runs every
# test, and stops the emulator whatever happens.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh
py="$root/.venv/bin/python"

EMULATOR_PORT="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export EMULATOR_PORT AWS_ENDPOINT_URL="http://127.0.0.1:${EMULATOR_PORT}" TABLE_NAME="credits-test"
source infra/env.sh
mkdir -p .emulator
log=".emulator/test-emulator.log"
"$py" infra/emulator.py --port "$EMULATOR_PORT" --quiet >"$log" 2>&1 &
emulator=$!
cleanup() {
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$py" infra/bootstrap.py --wait
"$py" infra/emulator_check.py
echo "== cfn-lint template.yaml"
"$root/.venv/bin/cfn-lint" template.yaml
echo "== cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test (emulator at $AWS_ENDPOINT_URL)"
cargo test --workspace --all-targets --no-fail-fast "$@"
