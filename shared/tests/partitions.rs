//! A pinned partition ([`credits::sdk::partition`]) gives every region the
//! endpoints the SDK's own table gives, through each SDK crate the functions
//! use, with and without FIPS and dual-stack; and the SDK does read it.
//!
//! The SDK reads its partition table once a process, so this runs itself as
//! child processes: one with the SDK's own table, resolving every region the
//! pinned table lists, and one per region with that region's partition
//! pinned, resolving it and a region of another partition (a probe, which the
//! pinned table answers differently: the proof that it is the one in use).
//! Two more children take the ways round the pin: a region the table does
//! not list, which keeps the SDK's own table, and a table of the deployer's
//! own named in the variable, which is used and left named.

// A test without the test harness (clippy.toml's allowance is for #[test]s): it asserts by panicking.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

const MODE: &str = "PARTITION_TEST_CHILD";
const PIN: &str = "PARTITION_TEST_PIN";
const REGIONS: &str = "PARTITION_TEST_REGIONS";

/// This test's one name, for test-name filters and `--list`.
const NAME: &str = "partitions";

fn main() {
    if std::env::var(MODE).as_deref() == Ok("resolve") {
        return child();
    }
    let list = std::env::args().any(|a| a == "--list");
    match (selected(std::env::args().skip(1)), list) {
        (true, true) => println!("{NAME}: test"),
        (true, false) => parent(),
        (false, true) => {}
        (false, false) => println!("{NAME}: filtered out"),
    }
}

/// Whether the test harness's arguments `args` (as `cargo test FILTER --
/// --skip X --exact` passes them) select this test: a filter it matches or
/// none, and no `--skip` it matches.
fn selected(mut args: impl Iterator<Item = String>) -> bool {
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--skip" => skips.extend(args.next()),
            // The harness's options that take a value.
            "--test-threads" | "--color" | "--format" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            _ if arg.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let matches = |f: &String| if exact { NAME == f } else { NAME.contains(f.as_str()) };
    (filters.is_empty() || filters.iter().any(matches)) && !skips.iter().any(matches)
}

/// Resolves the endpoints of `REGIONS` (comma-separated) and prints one line
/// for each: crate, region, FIPS, dual-stack, then the URL or the error.
fn child() {
    let region = std::env::var(PIN).ok();
    let deployers = std::env::var_os(credits::sdk::partition::PARTITION_FILE_ENV);
    let regions = std::env::var(REGIONS).expect("regions to resolve");
    let sdk = credits::sdk::SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(region.clone().map(aws_types::region::Region::new))
        .build();
    // As the functions do: the clients built through partition::build. The
    // resolvers made afterwards read the table their crate read then.
    if region.is_some() {
        credits::sdk::partition::build(&sdk, aws_sdk_dynamodb::Client::new);
        credits::sdk::partition::build(&sdk, aws_sdk_sesv2::Client::new);
        credits::sdk::partition::build(&sdk, aws_sdk_ssm::Client::new);
    }
    let resolvers = [
        ("dynamodb", Resolver::DynamoDb(aws_sdk_dynamodb::config::endpoint::DefaultResolver::new())),
        ("sesv2", Resolver::SesV2(aws_sdk_sesv2::config::endpoint::DefaultResolver::new())),
        ("ssm", Resolver::Ssm(aws_sdk_ssm::config::endpoint::DefaultResolver::new())),
    ];
    // Each build removed the variable again, or left the deployer's as it
    // was (an empty one, which names no file, removed).
    assert_eq!(std::env::var_os(credits::sdk::partition::PARTITION_FILE_ENV), deployers.filter(|d| !d.is_empty()));
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    for region in regions.split(',') {
        for fips in [false, true] {
            for dual_stack in [false, true] {
                for (service, resolver) in &resolvers {
                    let endpoint = runtime.block_on(resolver.resolve(region, fips, dual_stack));
                    let endpoint = endpoint.unwrap_or_else(|e| format!("error: {e}"));
                    println!("{service}\t{region}\t{fips}\t{dual_stack}\t{endpoint}");
                }
            }
        }
    }
}

enum Resolver {
    DynamoDb(aws_sdk_dynamodb::config::endpoint::DefaultResolver),
    SesV2(aws_sdk_sesv2::config::endpoint::DefaultResolver),
    Ssm(aws_sdk_ssm::config::endpoint::DefaultResolver),
}

impl Resolver {
    /// The URL of the endpoint, or the resolver's error.
    async fn resolve(&self, region: &str, fips: bool, dual_stack: bool) -> Result<String, String> {
        macro_rules! resolve {
            ($krate:ident, $resolver:expr) => {{
                use $krate::config::endpoint::{Params, ResolveEndpoint};
                let params = Params::builder().region(region).use_fips(fips).use_dual_stack(dual_stack).build();
                let params = params.map_err(|e| e.to_string())?;
                let endpoint = $resolver.resolve_endpoint(&params).await.map_err(|e| e.to_string())?;
                Ok(endpoint.url().to_owned())
            }};
        }
        match self {
            Resolver::DynamoDb(r) => resolve!(aws_sdk_dynamodb, r),
            Resolver::SesV2(r) => resolve!(aws_sdk_sesv2, r),
            Resolver::Ssm(r) => resolve!(aws_sdk_ssm, r),
        }
    }
}

type Endpoints = BTreeMap<(String, String, String, String), String>;

/// Runs a child resolving `regions`, with `pin`'s partition pinned or with
/// the SDK's own table, and with the variable naming `deployers` (a table
/// file of the deployer's) if given.
fn resolve(regions: &[&str], pin: Option<&str>, deployers: Option<&std::path::Path>) -> Endpoints {
    let mut command = Command::new(std::env::current_exe().expect("this test's binary"));
    command.env_clear().env(MODE, "resolve").env(REGIONS, regions.join(","));
    if let Some(region) = pin {
        command.env(PIN, region);
    }
    if let Some(file) = deployers {
        command.env(credits::sdk::partition::PARTITION_FILE_ENV, file);
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

/// A region of the `aws` partition's pattern that its table does not list.
const UNLISTED: &str = "us-east-9";

fn parent() {
    let regions: Vec<&str> = credits::sdk::partition::regions().collect();
    assert!(!regions.contains(&UNLISTED));
    let sdk = resolve(&[regions.as_slice(), &[UNLISTED]].concat(), None, None);
    assert_eq!(sdk.len(), (regions.len() + 1) * 3 * 4);
    // Regions of two partitions: a table pinned for one answers the other
    // differently from the SDK's own table.
    let (aws, cn) = ("us-east-1", "cn-north-1");

    let mut compared = 0;
    for region in &regions {
        let probe = if region.starts_with("cn-") || region.starts_with("aws-cn") { aws } else { cn };
        let pinned = resolve(&[region, probe], Some(region), None);
        for ((service, r, fips, dual_stack), endpoint) in &pinned {
            let expected = &sdk.get(&(service.clone(), r.clone(), fips.clone(), dual_stack.clone()));
            if r == region {
                assert_eq!(Some(endpoint), *expected, "{service} in {region}, FIPS {fips}, dual-stack {dual_stack}");
                compared += 1;
            }
        }
        for service in ["dynamodb", "sesv2", "ssm"] {
            let probed = &pinned[&key(service, probe)];
            assert_ne!(
                probed,
                &sdk[&key(service, probe)],
                "pinned for {region}, {service} still used the SDK's own table"
            );
        }
    }
    assert_eq!(compared, regions.len() * 3 * 4);
    println!("partitions: {} regions, {compared} endpoints the same pinned and not", regions.len());
    unlisted_region(&sdk, cn);
    deployers_table(&sdk);
    empty_variable(&sdk);
}

/// The variable set but empty, in a region the table does not list (so no
/// table is pinned over it): the SDK would panic reading "", so the build
/// removes it, and the SDK's own table resolves.
fn empty_variable(sdk: &Endpoints) {
    let endpoints = resolve(&[UNLISTED], Some(UNLISTED), Some(std::path::Path::new("")));
    assert_eq!(endpoints.len(), 3 * 4);
    for (key, endpoint) in &endpoints {
        assert_eq!(Some(endpoint), sdk.get(key), "{key:?}, with the variable empty");
    }
    println!("partitions: an empty variable was removed, not read");
}

/// A region the table does not list: the SDK's own table, for it and for
/// `probe`, a region of another partition.
fn unlisted_region(sdk: &Endpoints, probe: &str) {
    assert_eq!(credits::sdk::partition::table(UNLISTED), None);
    let endpoints = resolve(&[UNLISTED, probe], Some(UNLISTED), None);
    assert_eq!(endpoints.len(), 2 * 3 * 4);
    for (key, endpoint) in &endpoints {
        assert_eq!(Some(endpoint), sdk.get(key), "{key:?}, not listed");
    }
    println!("partitions: {UNLISTED}, not listed, resolved with the SDK's own table");
}

/// The variable set by the deployer, naming a table of their own (here
/// us-east-1's partition with another DNS suffix): it is used, and left set.
fn deployers_table(sdk: &Endpoints) {
    let region = "us-east-1";
    let table = credits::sdk::partition::table(region).expect("us-east-1 is listed");
    let (suffix, theirs) = ("\"dnsSuffix\":\"amazonaws.com\"", "\"dnsSuffix\":\"deployer.example\"");
    assert!(table.contains(suffix), "{table}");
    let file = TempFile(std::env::temp_dir().join(format!("partitions-test-{}.json", std::process::id())));
    std::fs::write(&file.0, table.replace(suffix, theirs)).expect("the deployer's table written");
    let endpoints = resolve(&[region], Some(region), Some(&file.0));
    drop(file);
    assert_eq!(endpoints.len(), 3 * 4);
    for service in ["dynamodb", "sesv2", "ssm"] {
        let ours = &sdk[&key(service, region)];
        assert!(ours.ends_with(".amazonaws.com"), "{ours}");
        assert_eq!(endpoints[&key(service, region)], ours.replace(".amazonaws.com", ".deployer.example"));
    }
    println!("partitions: a table the deployer named was used and left named");
}

/// A file removed when this is dropped, also when a failed assertion unwinds.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn key(service: &str, region: &str) -> (String, String, String, String) {
    (service.to_owned(), region.to_owned(), "false".to_owned(), "false".to_owned())
}
