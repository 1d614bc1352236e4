//! The fault-injection suite: `make chaos` (CHAOS_SEEDS, CHAOS_RATES, ... in
//! the environment) or, in `make test`, its small configuration. Prints what
//! it injected and checked; exits non-zero on any failed check.

#[tokio::main]
async fn main() {
    let config = integration_tests::chaos::Config::from_env();
    if !integration_tests::chaos::run(&config).await {
        std::process::exit(1);
    }
}
