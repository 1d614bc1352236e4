# Sourced by `make test`, `make run` and `make chaos`: the workspace's own crates
# compile through clippy-driver (rustc with clippy's lints; cargo's
# RUSTC_WORKSPACE_WRAPPER, the mechanism `cargo clippy` itself uses), with every
# warning an error, as `cargo clippy -- -D warnings` has it. The build that runs
# the tests is then also the lint: a separate `cargo clippy` type-checks every
# dependency a second time, metadata only, which was a minute of a fresh
# clone's first `make test` on two cores. Dependencies still compile with plain
# rustc, once. The three targets share one build: the same wrapper and the same
# arguments (cargo rebuilds the workspace's crates, not the SDKs, when either
# changes, e.g. after a bare `cargo test`). `make lint` and `make check` run
# `cargo clippy` itself; release builds never go through clippy-driver.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver
export CLIPPY_ARGS=-Dwarnings
if ! command -v clippy-driver >/dev/null; then
  echo "clippy-driver not found: the build lints as it compiles. Install Rust with rustup's default profile, or: rustup component add clippy" >&2
  return 1 2>/dev/null || exit 1
fi
