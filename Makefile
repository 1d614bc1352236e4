# The two commands a user needs: `make test` and (later) `make run`.
.PHONY: test check chaos run demo emulator watch bench bench-build package venv fmt lint clean

## Run every test against a fresh local emulator (installs what it needs).
test:
	bash infra/test.sh

## The fast inner loop: format, lints, and the rules' unit tests (no emulator); seconds once built.
check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo test --quiet -p credits --lib

## The whole service locally: every function built once, the emulator, http://localhost:9000 (Ctrl-C stops).
run:
	bash infra/run.sh

## A scripted story against the local service (starts it if it is not running).
demo:
	bash infra/venv.sh local
	bash -c 'source infra/env.sh && .venv/bin/python infra/demo.py'

## Serve the emulator in the foreground on 127.0.0.1:5005 with the table created.
emulator: venv
	bash infra/emulator.sh

## Hot reload: `cargo lambda watch` (port 9000) rebuilds a function on each edit, against `make emulator`.
watch:
	bash infra/venv.sh local
	bash -c 'source infra/env.sh && PATH="$$PWD/.venv/bin:$$PATH" exec cargo lambda watch'

## Fault injection, full: 3 seeds x 15% and 30% fault rates, 30 users and 200 operations a run (CHAOS_* to change).
chaos:
	. infra/lint-build.sh && bash infra/with-emulator.sh credits-chaos env CHAOS_SEEDS="$${CHAOS_SEEDS:-1 2 3}" CHAOS_RATES="$${CHAOS_RATES:-0.15 0.3}" \
		CHAOS_USERS="$${CHAOS_USERS:-30}" CHAOS_OPERATIONS="$${CHAOS_OPERATIONS:-200}" \
		cargo test --quiet -p integration-tests --test chaos

## Benchmarks, printed as tables: the release binaries' request path (cold start, warm latency, CPU, RSS,
## AWS requests; BENCH_REQUESTS to change, 0 for cold starts only), then the rollover (BENCH_ACCOUNTS due accounts, 20,000 by default).
## The rollover's runs keep the emulator, which serves one request at a time, busy enough that a request waits
## there longer than the functions' 3 s attempt timeout: they run with CREDITS_AWS_CALL_TIMEOUTS=off.
bench: bench-build
	bash infra/with-emulator.sh credits-bench cargo bench --quiet -p integration-tests --bench requests
	CREDITS_AWS_CALL_TIMEOUTS=off bash infra/with-emulator.sh credits-bench cargo bench --quiet -p integration-tests --bench rollover

## The release binaries the benchmarks start (make bench, bench/*.sh).
# The hello-world is built on its own: built with the others, cargo would give it their dependencies'
# features (1.9 MB instead of 1.6 MB). sdk-floor and http-floor are built with the functions, so they get theirs.
bench-build:
	cargo build --release --bins --workspace --exclude hello-lambda --exclude integration-tests --quiet
	cargo build --release -p hello-lambda --quiet

## The deployable build: `sam validate --lint`, then `sam build --beta-features` (every function in release, arm64).
package:
	bash infra/package.sh

venv:
	bash infra/venv.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf .emulator
	cargo clean
