#!/usr/bin/env bash
# `make run`: the whole service on this machine. Installs what is missing
# (.venv with the emulator and cargo-lambda), starts the emulator, creates the
# table, and serves every function with `cargo lambda watch` on port 9000,
# with the HTTP routes of Cargo.toml's [workspace.metadata.lambda.watch.router].
# Ctrl-C stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh local
source infra/env.sh
# Local only: headers stand in for API Gateway's authorizers (see README).
export CREDITS_DEV_IDENTITY_HEADERS=1
export PATH="$root/.venv/bin:$PATH"
py="$root/.venv/bin/python"
watch_port="${WATCH_PORT:-9000}"

for port in "$EMULATOR_PORT" "$watch_port"; do
  if "$py" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
    echo "make run: port $port is already in use (another make run?)" >&2
    exit 1
  fi
done

mkdir -p .emulator
"$py" infra/emulator.py --port "$EMULATOR_PORT" --quiet >".emulator/run-emulator.log" 2>&1 &
emulator=$!
watch=""
stop() {
  trap - EXIT INT TERM
  echo
  echo "Stopping..."
  if [[ -n "$watch" ]]; then
    kill "$watch" 2>/dev/null || true
    wait "$watch" 2>/dev/null || true
  fi
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  echo "Stopped."
  exit 0
}
trap stop EXIT INT TERM
"$py" infra/bootstrap.py --wait

cat <<INFO

Credits service, locally
  API            http://localhost:${watch_port}/v1/...  (every HTTP function; built on first call)
  emulator       ${AWS_ENDPOINT_URL}  (DynamoDB table ${TABLE_NAME}, SES; sent emails: ${AWS_ENDPOINT_URL}/moto-api/data.json)
  identity       local only: header 'x-dev-caller: local' stands in for IAM on service routes,
                 'x-dev-user: USER_ID' for the JWT on /v1/me/... routes

Try:
  curl -s -X POST localhost:${watch_port}/v1/signups -H 'x-dev-caller: local' -H 'content-type: application/json' \\
       -d '{"user_id": "alice", "email": "alice@example.com", "plan": "pro"}'
  curl -s -X POST localhost:${watch_port}/v1/purchases -H 'x-dev-caller: local' -H 'content-type: application/json' \\
       -d '{"user_id": "alice", "payment_id": "pay-1", "amount_cents": 1000, "currency": "USD"}'
  curl -s localhost:${watch_port}/v1/me/balance -H 'x-dev-user: alice'
  cargo lambda invoke rollover --data-ascii '{"time": "2030-01-01T00:00:00Z"}'
  make demo        (in another terminal: the scripted story against this service)

Ctrl-C stops everything.

INFO
cargo lambda watch --invoke-port "$watch_port" &
watch=$!
wait "$watch"
