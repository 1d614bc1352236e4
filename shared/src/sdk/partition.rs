//! The AWS partition of the function's region, handed to the SDK's endpoint
//! resolvers so that they do not build a table of every partition.
//!
//! When the first client of each SDK crate (DynamoDB, SES v2, Systems
//! Manager) is built, its endpoint resolver parses the crate's table of every
//! AWS partition (`aws`, `aws-cn`, `aws-us-gov`, the ISO partitions, ...)
//! from JSON and compiles a regular expression for each, to learn the DNS
//! suffix of one region. The SDK reads that table from the file named by
//! `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` instead when the variable is set (it
//! is there for regions not yet public). So [`build`] builds a client with
//! the variable naming a pipe of this process's that holds the one
//! partition that lists the region, with that region alone, and removes the
//! variable again: nothing is written to disk. The SDK keeps the table it
//! read for the rest of the process, per crate: every later client of that
//! crate (built through [`build`] or not) resolves with it, so a process
//! builds its clients for one region, as the functions do.
//!
//! The endpoints are the ones the full table gives: the table below is the
//! SDK's own, copied, and `shared/tests/partitions.rs` compares every
//! region's endpoints (with and without FIPS and dual-stack) through each SDK
//! crate, pinned and not. A region the table does not list (a new one) or a
//! system without `/proc/self/fd` leaves the SDK's own table in use, as if
//! this module were not there; a variable the deployment has set is left as
//! it is, and its table used (`credits::sdk` has checked that it names a
//! partition table), and an empty one is removed.

use aws_types::sdk_config::SdkConfig;
use std::io::{PipeReader, Write};

/// The variable the SDK reads the partition table's file from.
pub const PARTITION_FILE_ENV: &str = "SMITHY_CLIENT_SDK_CUSTOM_PARTITION";

/// One AWS partition as the SDK's table describes it.
struct Partition {
    id: &'static str,
    /// The partition's outputs (DNS suffixes, FIPS and dual-stack support), JSON.
    outputs: &'static str,
    /// The regular expression of its region names, as a JSON string.
    region_regex: &'static str,
    /// The regions it lists by name.
    regions: &'static [&'static str],
}

/// The SDK's partition table (aws-sdk-dynamodb 1.136 and aws-sdk-sesv2 1.145
/// carry the same one; tests/partitions.rs holds aws-sdk-ssm's to it too),
/// without the regions' descriptions. When an SDK upgrade changes a listed
/// region's partition, that test fails naming the region: copy the new table
/// from the crate's `src/endpoint_lib.rs` (`DEFAULT_PARTITION_RESOLVER`). A
/// region the SDK adds is not caught: it gets the SDK's whole table, correct
/// but without the saving, until it is copied here.
const PARTITIONS: &[Partition] = &[
    Partition {
        id: "aws",
        outputs: r#"{"dnsSuffix":"amazonaws.com","dualStackDnsSuffix":"api.aws","implicitGlobalRegion":"us-east-1","name":"aws","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^(us|eu|ap|sa|ca|me|af|il|mx)\\-\\w+\\-\\d+$""#,
        regions: &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "aws-global",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    },
    Partition {
        id: "aws-cn",
        outputs: r#"{"dnsSuffix":"amazonaws.com.cn","dualStackDnsSuffix":"api.amazonwebservices.com.cn","implicitGlobalRegion":"cn-northwest-1","name":"aws-cn","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^cn\\-\\w+\\-\\d+$""#,
        regions: &["aws-cn-global", "cn-north-1", "cn-northwest-1"],
    },
    Partition {
        id: "aws-eusc",
        outputs: r#"{"dnsSuffix":"amazonaws.eu","dualStackDnsSuffix":"api.amazonwebservices.eu","implicitGlobalRegion":"eusc-de-east-1","name":"aws-eusc","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^eusc\\-(de)\\-\\w+\\-\\d+$""#,
        regions: &["eusc-de-east-1"],
    },
    Partition {
        id: "aws-iso",
        outputs: r#"{"dnsSuffix":"c2s.ic.gov","dualStackDnsSuffix":"api.aws.ic.gov","implicitGlobalRegion":"us-iso-east-1","name":"aws-iso","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^us\\-iso\\-\\w+\\-\\d+$""#,
        regions: &["aws-iso-global", "us-iso-east-1", "us-iso-west-1"],
    },
    Partition {
        id: "aws-iso-b",
        outputs: r#"{"dnsSuffix":"sc2s.sgov.gov","dualStackDnsSuffix":"api.aws.scloud","implicitGlobalRegion":"us-isob-east-1","name":"aws-iso-b","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^us\\-isob\\-\\w+\\-\\d+$""#,
        regions: &["aws-iso-b-global", "us-isob-east-1", "us-isob-west-1"],
    },
    Partition {
        id: "aws-iso-e",
        outputs: r#"{"dnsSuffix":"cloud.adc-e.uk","dualStackDnsSuffix":"api.cloud-aws.adc-e.uk","implicitGlobalRegion":"eu-isoe-west-1","name":"aws-iso-e","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^eu\\-isoe\\-\\w+\\-\\d+$""#,
        regions: &["aws-iso-e-global", "eu-isoe-west-1"],
    },
    Partition {
        id: "aws-iso-f",
        outputs: r#"{"dnsSuffix":"csp.hci.ic.gov","dualStackDnsSuffix":"api.aws.hci.ic.gov","implicitGlobalRegion":"us-isof-south-1","name":"aws-iso-f","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^us\\-isof\\-\\w+\\-\\d+$""#,
        regions: &["aws-iso-f-global", "us-isof-east-1", "us-isof-south-1"],
    },
    Partition {
        id: "aws-us-gov",
        outputs: r#"{"dnsSuffix":"amazonaws.com","dualStackDnsSuffix":"api.aws","implicitGlobalRegion":"us-gov-west-1","name":"aws-us-gov","supportsDualStack":true,"supportsFIPS":true}"#,
        region_regex: r#""^us\\-gov\\-\\w+\\-\\d+$""#,
        regions: &["aws-us-gov-global", "us-gov-east-1", "us-gov-west-1"],
    },
];

/// Every region the table lists by name.
pub fn regions() -> impl Iterator<Item = &'static str> {
    PARTITIONS.iter().flat_map(|p| p.regions.iter().copied())
}

/// The partition that lists `region`, if one does.
fn listing(region: &str) -> Option<&'static Partition> {
    PARTITIONS.iter().find(|p| p.regions.contains(&region))
}

/// The id of the partition that lists `region` (`aws`, `aws-cn`, ...), if
/// one does.
pub fn partition_of(region: &str) -> Option<&'static str> {
    listing(region).map(|p| p.id)
}

/// The partition table for a function in `region`: the one partition that
/// lists it, with it alone. `None` for a region no partition lists.
pub fn table(region: &str) -> Option<String> {
    let partition = listing(region)?;
    Some(format!(
        r#"{{"version":"1.1","partitions":[{{"id":"{}","outputs":{},"regionRegex":{},"regions":{{"{region}":{{}}}}}}]}}"#,
        partition.id, partition.outputs, partition.region_regex
    ))
}

/// Builds one SDK client, `client(sdk)`, with the partition of `sdk`'s
/// region pinned for it (see the module's documentation): for example
/// `partition::build(&sdk, aws_sdk_dynamodb::Client::new)`. Call it at a cold
/// start, before any other thread runs: it sets and removes a variable of
/// the process's environment.
pub fn build<C>(sdk: &SdkConfig, client: impl FnOnce(&SdkConfig) -> C) -> C {
    // An empty variable names no file: the SDK would panic reading "", so it
    // goes, whether or not a table of the region's is pinned instead.
    if std::env::var_os(PARTITION_FILE_ENV).is_some_and(|file| file.is_empty()) {
        std::env::remove_var(PARTITION_FILE_ENV);
    }
    let _pinned = match std::env::var_os(PARTITION_FILE_ENV) {
        Some(_) => None,
        None => sdk.region().and_then(|region| table(region.as_ref())).and_then(|table| Pinned::new(&table)),
    };
    client(sdk)
}

/// A pipe holding a partition table, named in [`PARTITION_FILE_ENV`] while it
/// lives. The SDK reads a table once per crate, and a pipe once: each client
/// build has its own.
struct Pinned {
    /// Held open: its descriptor is the file the variable names.
    _reader: PipeReader,
}

impl Pinned {
    fn new(table: &str) -> Option<Pinned> {
        match Pinned::offer(table) {
            Ok(pinned) => Some(pinned),
            Err(e) => {
                tracing::debug!(error = %e, "the SDK's whole partition table is used");
                None
            }
        }
    }

    fn offer(table: &str) -> std::io::Result<Pinned> {
        let (reader, path) = filled_pipe(table)?;
        // Opened as the SDK will (which panics if it cannot: without /proc,
        // on macOS); opening does not take the table out of the pipe.
        std::fs::File::open(&path)?;
        std::env::set_var(PARTITION_FILE_ENV, &path);
        Ok(Pinned { _reader: reader })
    }
}

/// What a pipe holds before a writer waits for a reader: 4 KiB at the least
/// (POSIX's `PIPE_BUF`; Linux's pipes hold 64 KiB). A table is about 300 bytes.
const PIPE_CAPACITY: usize = 4096;

/// A pipe holding `table`, its writing end closed so that a reader meets the
/// end of the table, and the name under which this process can open it.
fn filled_pipe(table: &str) -> std::io::Result<(PipeReader, String)> {
    // Written whole before anyone reads: more would wait for a reader forever.
    if table.len() > PIPE_CAPACITY {
        return Err(std::io::Error::other("the partition table is larger than a pipe holds"));
    }
    let (reader, mut writer) = std::io::pipe()?;
    writer.write_all(table.as_bytes())?;
    drop(writer);
    let path = path_of(&reader)?;
    Ok((reader, path))
}

/// The name under which this process can open `reader` again.
#[cfg(unix)]
fn path_of(reader: &PipeReader) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    Ok(format!("/proc/self/fd/{}", reader.as_raw_fd()))
}

#[cfg(not(unix))]
fn path_of(_: &PipeReader) -> std::io::Result<String> {
    Err(std::io::ErrorKind::Unsupported.into())
}

impl Drop for Pinned {
    fn drop(&mut self) {
        std::env::remove_var(PARTITION_FILE_ENV);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_region_gets_its_partition_alone() {
        let table: serde_json::Value = serde_json::from_str(&table("eu-west-1").unwrap()).unwrap();
        let partitions = table["partitions"].as_array().unwrap();
        assert_eq!(partitions.len(), 1);
        assert_eq!(partitions[0]["id"], "aws");
        assert_eq!(partitions[0]["outputs"]["dnsSuffix"], "amazonaws.com");
        assert_eq!(partitions[0]["regionRegex"], r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$");
        assert_eq!(partitions[0]["regions"], serde_json::json!({ "eu-west-1": {} }));

        let table: serde_json::Value = serde_json::from_str(&super::table("cn-north-1").unwrap()).unwrap();
        assert_eq!(table["partitions"][0]["id"], "aws-cn");
        assert_eq!(table["partitions"][0]["outputs"]["dnsSuffix"], "amazonaws.com.cn");
    }

    #[test]
    fn every_listed_region_gets_a_table_that_parses() {
        assert!(regions().count() > 50);
        for region in regions() {
            let table: serde_json::Value = serde_json::from_str(&table(region).unwrap()).unwrap();
            assert_eq!(table["partitions"][0]["regions"].as_object().unwrap().len(), 1, "{region}");
            assert!(table.to_string().len() < PIPE_CAPACITY, "{region}");
        }
    }

    #[test]
    fn a_region_no_partition_lists_keeps_the_whole_table() {
        for region in ["", "us-east-9", "US-EAST-1", "us-east-1 ", "\"us-east-1\""] {
            assert_eq!(table(region), None, "{region:?}");
        }
    }

    // The variable itself is tested by tests/partitions.rs, in processes of
    // its own: setting it here would race the other tests' threads.
    #[test]
    fn the_pipe_gives_the_table_to_its_first_reader_only() {
        let table = table("us-west-2").unwrap();
        let (_reader, path) = filled_pipe(&table).unwrap();
        // The SDK's read: the whole table, then the end of it.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        // Read once: a second crate's read would find it empty (why each
        // client build has its own pipe).
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert!(filled_pipe(&"x".repeat(PIPE_CAPACITY + 1)).is_err());
        assert!(Pinned::offer(&"x".repeat(PIPE_CAPACITY + 1)).is_err());
    }
}
