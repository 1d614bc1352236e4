//! A pinned partition ([`credits::sdk::partition`]) gives every region the
//! endpoints the SDK's own table gives, through each SDK crate the functions
//! use, with and without FIPS and dual-stack; and the SDK does read it.
//!
//! The SDK reads its partition table once a process, so this runs itself as
//! child processes: one with the SDK's own table, resolving every region the
//! pinned table lists, and one per region with that region's partition
//! pinned, resolving it and a region of another partition (a probe, which the
//! pinned table answers differently: the proof that it is the one in use).

// A test without the test harness (clippy.toml's allowance is for #[test]s): it asserts by panicking.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

const MODE: &str = "PARTITION_TEST_CHILD";
const PIN: &str = "PARTITION_TEST_PIN";
const REGIONS: &str = "PARTITION_TEST_REGIONS";

fn main() {
    match std::env::var(MODE).as_deref() {
        Ok("resolve") => child(),
        _ => parent(),
    }
}

/// Resolves the endpoints of `REGIONS` (comma-separated) and prints one line
/// for each: crate, region, FIPS, dual-stack, then the URL or the error.
fn child() {
    if let Ok(region) = std::env::var(PIN) {
        let path = credits::sdk::partition::pin(&region).expect("the region's partition is pinned");
        assert_eq!(std::env::var_os(credits::sdk::partition::PARTITION_FILE_ENV), Some(path.into_os_string()));
    }
    let regions = std::env::var(REGIONS).expect("regions to resolve");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    for region in regions.split(',') {
        for fips in [false, true] {
            for dual_stack in [false, true] {
                let line = |service: &str, endpoint: Result<String, String>| {
                    let endpoint = endpoint.unwrap_or_else(|e| format!("error: {e}"));
                    println!("{service}\t{region}\t{fips}\t{dual_stack}\t{endpoint}");
                };
                line("dynamodb", runtime.block_on(dynamodb(region, fips, dual_stack)));
                line("sesv2", runtime.block_on(sesv2(region, fips, dual_stack)));
                line("ssm", runtime.block_on(ssm(region, fips, dual_stack)));
            }
        }
    }
}

async fn dynamodb(region: &str, fips: bool, dual_stack: bool) -> Result<String, String> {
    use aws_sdk_dynamodb::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder().region(region).use_fips(fips).use_dual_stack(dual_stack).build();
    let params = params.map_err(|e| e.to_string())?;
    let endpoint = DefaultResolver::new().resolve_endpoint(&params).await.map_err(|e| e.to_string())?;
    Ok(endpoint.url().to_owned())
}

async fn sesv2(region: &str, fips: bool, dual_stack: bool) -> Result<String, String> {
    use aws_sdk_sesv2::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder().region(region).use_fips(fips).use_dual_stack(dual_stack).build();
    let params = params.map_err(|e| e.to_string())?;
    let endpoint = DefaultResolver::new().resolve_endpoint(&params).await.map_err(|e| e.to_string())?;
    Ok(endpoint.url().to_owned())
}

async fn ssm(region: &str, fips: bool, dual_stack: bool) -> Result<String, String> {
    use aws_sdk_ssm::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let params = Params::builder().region(region).use_fips(fips).use_dual_stack(dual_stack).build();
    let params = params.map_err(|e| e.to_string())?;
    let endpoint = DefaultResolver::new().resolve_endpoint(&params).await.map_err(|e| e.to_string())?;
    Ok(endpoint.url().to_owned())
}

type Endpoints = BTreeMap<(String, String, String, String), String>;

/// Runs a child resolving `regions`, with `pin`'s partition pinned or with
/// the SDK's own table, in a temporary directory of its own.
fn resolve(regions: &[&str], pin: Option<&str>, tmp: &std::path::Path) -> Endpoints {
    let mut command = Command::new(std::env::current_exe().expect("this test's binary"));
    command.env_clear().env(MODE, "resolve").env(REGIONS, regions.join(",")).env("TMPDIR", tmp);
    if let Some(region) = pin {
        command.env(PIN, region);
    }
    let output = command.output().expect("the child runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(output.status.success(), "child for {pin:?} failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "{line}");
            ((f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), f[3].to_owned()), f[4].to_owned())
        })
        .collect()
}

fn parent() {
    let tmp = std::env::temp_dir().join(format!("credits-partitions-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("a temporary directory");
    let regions: Vec<&str> = credits::sdk::partition::regions().collect();
    let sdk = resolve(&regions, None, &tmp);
    assert_eq!(sdk.len(), regions.len() * 3 * 4);
    // Regions of two partitions: a table pinned for one answers the other
    // differently from the SDK's own table.
    let (aws, cn) = ("us-east-1", "cn-north-1");

    let mut compared = 0;
    for region in &regions {
        let probe = if region.starts_with("cn-") || region.starts_with("aws-cn") { aws } else { cn };
        let pinned = resolve(&[region, probe], Some(region), &tmp);
        for ((service, r, fips, dual_stack), endpoint) in &pinned {
            let expected = &sdk.get(&(service.clone(), r.clone(), fips.clone(), dual_stack.clone()));
            if r == region {
                assert_eq!(Some(endpoint), *expected, "{service} in {region}, FIPS {fips}, dual-stack {dual_stack}");
                compared += 1;
            }
        }
        let probed = &pinned[&key("dynamodb", probe)];
        assert_ne!(probed, &sdk[&key("dynamodb", probe)], "pinned for {region}, the SDK still used its own table");
    }
    assert_eq!(compared, regions.len() * 3 * 4);
    // One file per pinned table, nothing half-written left.
    let files: Vec<_> = std::fs::read_dir(&tmp).expect("the directory").map(|e| e.expect("an entry").path()).collect();
    assert_eq!(files.len(), regions.len(), "{files:?}");
    assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "json")), "{files:?}");
    std::fs::remove_dir_all(&tmp).expect("removed");
    println!("partitions: {} regions, {compared} endpoints the same pinned and not", regions.len());
}

fn key(service: &str, region: &str) -> (String, String, String, String) {
    (service.to_owned(), region.to_owned(), "false".to_owned(), "false".to_owned())
}
