#!/usr/bin/env bash
# Runs a command against a fresh emulator: installs the local stack, starts
# the emulator on a free loopback port and the fault-injecting proxy in front
# of it (FAULT_PROXY_URL; no faults until a test asks for them), creates the
# table from template.yaml, checks the emulator's transactions, runs the
# command, and stops both whatever happens. Their logs (in .emulator/) are
# removed when the command succeeds and kept, and named, when it fails.
# Usage: infra/with-emulator.sh TABLE COMMAND...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh
py="$root/.venv/bin/python"
table="$1"
shift

# Two free loopback ports, held open together so they differ.
read -r EMULATOR_PORT PROXY_PORT < <("$py" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
export EMULATOR_PORT AWS_ENDPOINT_URL="http://127.0.0.1:${EMULATOR_PORT}" TABLE_NAME="$table"
export FAULT_PROXY_URL="http://127.0.0.1:${PROXY_PORT}"
source infra/env.sh
mkdir -p .emulator
log=".emulator/emulator-${EMULATOR_PORT}.log"
proxy_log=".emulator/faultproxy-${PROXY_PORT}.log"
"$py" infra/emulator.py --port "$EMULATOR_PORT" --quiet >"$log" 2>&1 &
emulator=$!
"$py" infra/faultproxy.py --port "$PROXY_PORT" --upstream "$AWS_ENDPOINT_URL" >"$proxy_log" 2>&1 &
proxy=$!
cleanup() {
  local status=$?
  kill "$proxy" "$emulator" 2>/dev/null || true
  wait "$proxy" "$emulator" 2>/dev/null || true
  if [ "$status" -eq 0 ]; then
    rm -f "$log" "$proxy_log"
  else
    echo "infra/with-emulator.sh: exit status $status; the emulator's log is $log, the fault proxy's $proxy_log" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$py" infra/bootstrap.py --wait
"$py" infra/emulator_check.py
"$@"
