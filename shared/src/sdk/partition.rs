//! The AWS partition of the function's region, handed to the SDK's endpoint
//! resolvers so that they do not build a table of every partition.
//!
//! When the first client of each SDK crate (DynamoDB, SES v2, Systems
//! Manager) is built, its endpoint resolver parses the crate's table of every
//! AWS partition (`aws`, `aws-cn`, `aws-us-gov`, the ISO partitions, ...)
//! from JSON and compiles a regular expression for each: about 0.1 ms of
//! every cold start per crate, to learn the DNS suffix of one region. The
//! SDK reads that table from the file named by
//! `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` instead when the variable is set (it
//! is there for regions not yet public). So [`pin`], called by
//! [`super::from_env`] before any client is built, writes the one partition
//! that lists the function's region, with that region alone, to a file in
//! the temporary directory, and names it there.
//!
//! The endpoints are the ones the full table gives: the table below is the
//! SDK's own, copied, and `shared/tests/partitions.rs` compares every
//! region's endpoints (with and without FIPS and dual-stack) through each SDK
//! crate, pinned and not. A region the table does not list (a new one), a
//! variable the deployment has already set, or a file that cannot be written
//! leaves the SDK's own table in use, as if this module were not there.

use std::io::Write;
use std::path::{Path, PathBuf};

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
/// carry the same one), without the regions' descriptions.
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

/// The partition table for a function in `region`: the one partition that
/// lists it, with it alone. `None` for a region no partition lists.
pub fn table(region: &str) -> Option<String> {
    let partition = PARTITIONS.iter().find(|p| p.regions.contains(&region))?;
    Some(format!(
        r#"{{"version":"1.1","partitions":[{{"id":"{}","outputs":{},"regionRegex":{},"regions":{{"{region}":{{}}}}}}]}}"#,
        partition.id, partition.outputs, partition.region_regex
    ))
}

/// Writes the partition table of `region` to the temporary directory and
/// names it in [`PARTITION_FILE_ENV`], for the SDK clients built after this
/// in this process. Returns the file, or `None` where the SDK's own table
/// stays in use (see the module's documentation).
pub fn pin(region: &str) -> Option<PathBuf> {
    if std::env::var_os(PARTITION_FILE_ENV).is_some() {
        return None;
    }
    let table = table(region)?;
    match write(&std::env::temp_dir(), &table) {
        Ok(path) => {
            std::env::set_var(PARTITION_FILE_ENV, &path);
            Some(path)
        }
        Err(e) => {
            tracing::debug!(error = %e, "the SDK's whole partition table stays in use");
            None
        }
    }
}

/// Writes `table` into `dir` under a name made from its content, so that
/// every process with the same table shares one file, and atomically: it is
/// written to a file of this process's own, then renamed, so that a process
/// starting beside this one never reads half of it. A file of that name that
/// belongs to another user is not replaced (the sticky temporary directory
/// refuses the rename) and fails the write; one of this user's that already
/// holds the table (an earlier start's) is used as it is.
fn write(dir: &Path, table: &str) -> std::io::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    table.hash(&mut hasher);
    let name = format!("credits-sdk-partition-{:016x}", hasher.finish());
    let path = dir.join(format!("{name}.json"));
    // Replacing a file costs more than reading it: 0.1 ms of a cold start here.
    if holds(&path, table) {
        return Ok(path);
    }
    let staging = dir.join(format!("{name}.{}.tmp", std::process::id()));
    // A new file only: never one planted at that name, nor a link's target.
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(&staging);
    let written = create()
        .or_else(|e| match e.kind() {
            // Left by an earlier process of the same id that stopped halfway.
            std::io::ErrorKind::AlreadyExists => std::fs::remove_file(&staging).and_then(|()| create()),
            _ => Err(e),
        })
        .and_then(|mut file| file.write_all(table.as_bytes()))
        .and_then(|()| std::fs::rename(&staging, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written.map(|()| path)
}

/// Whether `path` is a plain file of this process's user holding `table`.
/// Only its owner (or root) can change it in the sticky temporary directory.
#[cfg(unix)]
fn holds(path: &Path, table: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    // `/proc/self` belongs to the process's effective user (on Linux).
    let Ok(me) = std::fs::metadata("/proc/self") else { return false };
    match std::fs::symlink_metadata(path) {
        Ok(file) if file.is_file() && file.uid() == me.uid() && file.len() == table.len() as u64 => {
            std::fs::read(path).is_ok_and(|held| held == table.as_bytes())
        }
        _ => false,
    }
}

#[cfg(not(unix))]
fn holds(_: &Path, _: &str) -> bool {
    false
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
        }
    }

    #[test]
    fn a_region_no_partition_lists_keeps_the_whole_table() {
        for region in ["", "us-east-9", "US-EAST-1", "us-east-1 ", "\"us-east-1\""] {
            assert_eq!(table(region), None, "{region:?}");
        }
    }

    #[test]
    fn the_file_is_written_whole_under_a_name_of_its_content() {
        let dir = std::env::temp_dir().join(format!("credits-partition-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = table("us-west-2").unwrap();
        let path = write(&dir, &table).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        // The same table again: the same file, still whole; another: another file.
        assert_eq!(write(&dir, &table).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        let other = write(&dir, &super::table("us-gov-west-1").unwrap()).unwrap();
        assert_ne!(other, path);
        // Nothing but the two tables is left behind, and a staging file an
        // interrupted process left does not stop the next.
        let staging = dir.join(format!("{}.{}.tmp", path.file_stem().unwrap().to_str().unwrap(), std::process::id()));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&staging, "{").unwrap();
        assert_eq!(write(&dir, &table).unwrap(), path);
        let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        left.sort();
        let mut expected = vec![path.clone(), other];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);

        // A file of that name holding something else, even as long, or a
        // link to the right content, is replaced by the table itself.
        std::fs::write(&path, table.replace("amazonaws.com", "amazonaws.org")).unwrap();
        assert_eq!(write(&dir, &table).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, &table).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(write(&dir, &table).unwrap(), path);
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_already_holding_the_table_is_used_as_it_is() {
        let dir = std::env::temp_dir().join(format!("credits-partition-reuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = table("us-east-2").unwrap();
        let path = write(&dir, &table).unwrap();
        assert!(holds(&path, &table));
        assert!(!holds(&path, &super::table("us-west-1").unwrap()));
        // Not written again: the same file (a rename would bring another).
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(&path).unwrap().ino();
        assert_eq!(write(&dir, &table).unwrap(), path);
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        // Another content of the same length is rewritten: another file.
        std::fs::write(&path, table.replace("us-east-2", "us-east-3")).unwrap();
        assert_eq!(write(&dir, &table).unwrap(), path);
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), table);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_an_error() {
        let missing = std::env::temp_dir().join(format!("credits-partition-missing-{}", std::process::id()));
        assert!(write(&missing, &table("us-east-1").unwrap()).is_err());
    }
}
