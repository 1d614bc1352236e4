#!/usr/bin/env bash
# `make test`: lint the template and the code (clippy's lints run in the
# build itself, infra/lint-build.sh), then every test against a fresh
# emulator (see infra/with-emulator.sh), which is stopped whatever happens.
# The Python tools install in the background while cargo compiles: on a fresh
# clone the two overlap instead of adding up.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .emulator
venv_log=.emulator/venv-install-$$.log
(bash infra/venv.sh && bash infra/venv.sh lint) >"$venv_log" 2>&1 &
venv=$!
# Whatever stops this script (a lint failure, Ctrl-C), the install finishes
# first: a second run must not start another install into the same venv.
trap 'wait "$venv" 2>/dev/null; rm -f "$venv_log"' EXIT
source infra/lint-build.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== build every target, linted by clippy (infra/lint-build.sh)"
cargo test --workspace --tests --test chaos --no-run --quiet
# --bench '*', not --benches: that would also build every lib and bin as a bench harness.
cargo build --workspace --bins --bench '*' --quiet
if ! wait "$venv"; then
  cat "$venv_log" >&2
  echo "infra/test.sh: installing the Python tools failed (above)" >&2
  exit 1
fi
cat "$venv_log"
trap - EXIT
rm -f "$venv_log"
echo "== cfn-lint, checkov: template.yaml"
.venv/bin/cfn-lint template.yaml
# Through its interpreter: checkov is a plain script, whose shebang breaks in a path with a space.
.venv-lint/bin/python .venv-lint/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
echo "== openapi.yaml"
.venv/bin/python -c "import yaml; from openapi_spec_validator import validate; validate(yaml.safe_load(open('openapi.yaml'))); print('openapi.yaml is a valid OpenAPI 3 document')"
echo "== cargo test, and beside it the fault-injection suite's small configuration"
# The chaos run mostly waits out the SDK's retry backoff: side by side with the
# other tests it costs no time. Its report follows theirs.
exec bash infra/with-emulator.sh credits-test bash -c '
  log=".emulator/chaos-test-${EMULATOR_PORT}.log"
  # In a session of its own, so that its whole process group (cargo, the
  # test binary, its fault proxies) can be stopped with it, Ctrl-C included.
  # setsid does not fork here (a background job of a shell without job
  # control leads no process group), so $! is the new group.
  setsid -w cargo test --quiet -p integration-tests --test chaos >"$log" 2>&1 &
  chaos=$!
  trap "kill -- -$chaos 2>/dev/null; rm -f \"$log\"" EXIT
  status=0
  cargo test --workspace --tests --no-fail-fast "$@" || status=$?
  wait "$chaos" || status=$?
  echo "== the fault-injection suite (small configuration)"
  cat "$log"
  rm -f "$log"
  exit "$status"' test.sh "$@"
