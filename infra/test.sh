#!/usr/bin/env bash
# `make test`: lint the template and the code, then every test against a
# fresh emulator (see infra/with-emulator.sh), which is stopped whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/venv.sh
bash infra/venv.sh lint
echo "== cfn-lint, checkov: template.yaml"
.venv/bin/cfn-lint template.yaml
.venv-lint/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
echo "== cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== openapi.yaml"
.venv/bin/python -c "import yaml; from openapi_spec_validator import validate; validate(yaml.safe_load(open('openapi.yaml'))); print('openapi.yaml is a valid OpenAPI 3 document')"
echo "== cargo test"
exec bash infra/with-emulator.sh credits-test cargo test --workspace --lib --bins --tests --no-fail-fast "$@"
