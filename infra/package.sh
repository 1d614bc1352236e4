#!/usr/bin/env bash
# `make package`: what `sam deploy` uploads. Lints the template with the SAM
# CLI's own cfn-lint, then builds every function with cargo-lambda (SAM's
# rust-cargolambda builder, still a beta feature of the SAM CLI) into
# .aws-sam/build, with the template that references the built artifacts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh local   # cargo-lambda, which sam build runs
bash infra/venv.sh deploy  # the SAM CLI
export SAM_CLI_TELEMETRY=0
# sam build runs `cargo lambda build`, from .venv (infra/requirements-local.txt).
export PATH="$root/.venv/bin:$PATH"
# The functions run on arm64 (Graviton); cargo-lambda cross-compiles with zig,
# and needs the Rust standard library for that target.
if command -v rustup >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null
fi
.venv-sam/bin/sam validate --lint --template template.yaml
started=$(date +%s)
.venv-sam/bin/sam build --beta-features --template template.yaml
echo "sam build: $(( $(date +%s) - started )) s; artifacts in .aws-sam/build"
ls -l .aws-sam/build/*/bootstrap | awk '{printf "  %-55s %6.1f MB\n", $9, $5 / 1e6}'
