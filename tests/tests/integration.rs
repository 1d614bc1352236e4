//! Every black-box test, one module per file of this directory, in one
//! test binary: the SDKs are linked once, not once per file. Run one file's
//! tests with `cargo test -p integration-tests --test integration <module>::`
//! (through `infra/with-emulator.sh`, as `make test` does).
//! The chaos suite (`chaos.rs`) is its own binary, with its own harness.

mod account;
mod alerts;
mod api_reference;
mod bad_input;
mod corrections;
mod dev_identity;
mod email_outbox;
mod holds;
mod logs;
mod no_silent_failures;
mod openapi;
mod plan_change;
mod purchase;
mod rollover;
mod sdk_errors;
mod signup;
mod spend;
mod stripe;
mod template;

/// With `autotests = false`, a file added here without its `mod` line would
/// never compile or run: every file of this directory is a module above.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = std::fs::read_to_string(dir.join("integration.rs")).expect("integration.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/tests") {
        let name = entry.expect("an entry").file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs") else { continue };
        if module != "integration" && module != "chaos" && !this.contains(&format!("\nmod {module};\n")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "not in tests/tests/integration.rs: {missing:?}");
}
