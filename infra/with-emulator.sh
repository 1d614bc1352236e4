#!/usr/bin/env bash
# Runs a command against a fresh emulator: installs the local stack, starts
# the emulator on a free loopback port, creates the table from template.yaml,
# checks the emulator's transactions, runs the command, and stops the
# emulator whatever happens. Its log (in .emulator/) is removed when the
# command succeeds and kept, and named, when it fails. (A test that injects
# faults starts a fault proxy of its own: tests/src/emulator.rs.)
# Usage: infra/with-emulator.sh TABLE COMMAND...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh
py="$root/.venv/bin/python"
table="$1"
shift

EMULATOR_PORT="$("$py" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')"
export EMULATOR_PORT AWS_ENDPOINT_URL="http://127.0.0.1:${EMULATOR_PORT}" TABLE_NAME="$table"
source infra/env.sh
mkdir -p .emulator
log=".emulator/emulator-${EMULATOR_PORT}.log"
"$py" infra/emulator.py --port "$EMULATOR_PORT" --quiet >"$log" 2>&1 &
emulator=$!
cleanup() {
  local status=$?
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  if [ "$status" -eq 0 ]; then
    rm -f "$log"
  else
    echo "infra/with-emulator.sh: exit status $status; the emulator's log is $log; its end:" >&2
    tail -n 30 "$log" >&2 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$py" infra/bootstrap.py --wait
"$py" infra/emulator_check.py
"$@"
