//! docs/api.md is the repository's own API reference: its tables are read
//! here and compared with the code, openapi.yaml and template.yaml, so the
//! reference cannot drift from what the service does.

use credits::email::EmailKind;
use credits::ledger::EntryKind;
use credits::plans::Catalogue;
use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows of the markdown table that follows `heading`, as cells with
/// their backticks removed.
fn table(doc: &str, heading: &str, first_column: &str) -> Vec<Vec<String>> {
    let start = doc.find(heading).unwrap_or_else(|| panic!("docs/api.md has no {heading:?}"));
    let header = format!("| {first_column} |");
    let from = start + doc[start..].find(&header).unwrap_or_else(|| panic!("no table with {header} after {heading}"));
    doc[from..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().replace('`', "")).collect())
        .collect()
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_routes_are_those_of_openapi_and_the_template() {
    let doc = read("docs/api.md");
    let documented: BTreeSet<(String, String, String)> = table(&doc, "## Functions and routes", "route")
        .iter()
        .map(|row| {
            let (method, path) = row[0].split_once(' ').expect("METHOD PATH");
            (method.to_owned(), path.to_owned(), row[1].clone())
        })
        .collect();
    assert!(documented.len() >= 15, "{documented:?}");

    let openapi = yaml("openapi.yaml");
    let in_openapi: BTreeSet<(String, String)> = openapi["paths"]
        .as_mapping()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_mapping()
                .expect("operations")
                .keys()
                .map(move |m| (m.as_str().expect("method").to_uppercase(), path.as_str().expect("path").to_owned()))
        })
        .collect();
    let without_function: BTreeSet<(String, String)> =
        documented.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    assert_eq!(without_function, in_openapi, "docs/api.md and openapi.yaml list the same routes");

    let template = yaml("template.yaml");
    let mut in_template = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().expect("resources") {
        let function = resource["Properties"]["CodeUri"].as_str().unwrap_or("").trim_start_matches("functions/");
        for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"] == "HttpApi" {
                let method = event["Properties"]["Method"].as_str().expect("method").to_owned();
                let path = event["Properties"]["Path"].as_str().expect("path").to_owned();
                in_template.insert((method, path, function.to_owned()));
            }
        }
    }
    assert_eq!(documented, in_template, "docs/api.md and template.yaml route the same paths to the same functions");
}

#[test]
fn the_schedules_are_those_of_the_template() {
    let doc = read("docs/api.md");
    // "every hour" is rate(1 hour), "every 5 minutes" rate(5 minutes).
    let documented: BTreeSet<(String, String)> = table(&doc, "## Functions and routes", "schedule")
        .iter()
        .map(|r| {
            let every = r[0].trim_start_matches("every ");
            let rate =
                if every.starts_with(|c: char| c.is_ascii_digit()) { every.to_owned() } else { format!("1 {every}") };
            (r[1].clone(), format!("rate({rate})"))
        })
        .collect();
    let template = yaml("template.yaml");
    let scheduled: BTreeSet<(String, String)> = template["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .flat_map(|r| {
            let function =
                r["Properties"]["CodeUri"].as_str().unwrap_or("").trim_start_matches("functions/").to_owned();
            r["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(_, e)| e["Type"] == "Schedule")
                .map(move |(_, e)| (function.clone(), e["Properties"]["Schedule"].as_str().unwrap_or("").to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(documented, scheduled);
}

/// The request limits the code enforces, as openapi.yaml and docs/api.md
/// state them.
#[test]
fn the_request_limits_are_the_codes() {
    use credits::ops::{account, corrections, holds, purchase, spend};
    let spec = yaml("openapi.yaml");
    let field = |schema: &str, name: &str| spec["components"]["schemas"][schema]["properties"][name].clone();
    let range = |schema: &str, name: &str| {
        let f = field(schema, name);
        (f["minimum"].as_i64().unwrap_or(i64::MIN), f["maximum"].as_i64().unwrap_or(i64::MAX))
    };
    let of = |r: std::ops::RangeInclusive<i64>| (*r.start(), *r.end());
    assert_eq!(range("PurchaseRequest", "amount_cents"), of(purchase::AMOUNT_CENTS));
    assert_eq!(range("SpendRequest", "credits"), of(spend::SPEND_CREDITS));
    assert_eq!(range("HoldRequest", "credits"), of(holds::HOLD_CREDITS));
    assert_eq!(range("HoldRequest", "expires_in_s"), of(holds::EXPIRES_IN_S));
    assert_eq!(field("HoldRequest", "expires_in_s")["default"].as_i64(), Some(holds::DEFAULT_EXPIRES_IN_S));
    assert_eq!(range("AdjustmentRequest", "credits"), of(corrections::ADJUSTMENT_CREDITS));
    let max_length =
        |schema: &str, name: &str| field(schema, name)["maxLength"].as_u64().and_then(|n| usize::try_from(n).ok());
    assert_eq!(max_length("AdjustmentRequest", "note"), Some(corrections::NOTE_MAX_CHARS));
    assert_eq!(max_length("SpendRequest", "feature"), Some(spend::FEATURE_MAX_CHARS));
    assert_eq!(max_length("HoldRequest", "feature"), Some(spend::FEATURE_MAX_CHARS));
    let limit = spec["paths"]["/v1/me/ledger"]["get"]["parameters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "limit")
        .map(|p| p["schema"].clone())
        .expect("the ledger's limit parameter");
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64(), limit["default"].as_u64()),
        (Some(1), Some(account::LEDGER_LIMIT_MAX as u64), Some(account::LEDGER_LIMIT_DEFAULT as u64))
    );

    // docs/api.md, its line breaks taken as spaces.
    let doc = read("docs/api.md").split_whitespace().collect::<Vec<_>>().join(" ");
    let span = |r: std::ops::RangeInclusive<i64>| format!("{}..={}", r.start(), r.end());
    let thousands = |n: usize| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for stated in [
        format!("\"amount_cents\": {}", span(purchase::AMOUNT_CENTS)),
        format!(
            "\"spend_id\", \"credits\": {}, \"feature\"?: at most {} characters",
            span(spend::SPEND_CREDITS),
            spend::FEATURE_MAX_CHARS
        ),
        format!("\"hold_id\", \"credits\": {}", span(holds::HOLD_CREDITS)),
        format!("\"expires_in_s\"?: {}, default {}", span(holds::EXPIRES_IN_S), holds::DEFAULT_EXPIRES_IN_S),
        format!("\"credits\": {} and not 0", span(corrections::ADJUSTMENT_CREDITS)),
        format!("\"note\"?: at most {} characters", corrections::NOTE_MAX_CHARS),
        format!("limit={}..{}", 1, account::LEDGER_LIMIT_MAX),
        format!("(limit {} by default)", account::LEDGER_LIMIT_DEFAULT),
        format!("over {} bytes", thousands(credits::http::MAX_BODY_BYTES)),
    ] {
        assert!(doc.contains(&stated), "docs/api.md does not say {stated:?}");
    }
}

#[test]
fn the_error_table_is_every_error_the_service_gives() {
    let doc = read("docs/api.md");
    let documented: BTreeSet<(u16, String)> =
        table(&doc, "## Errors", "status").iter().map(|r| (r[0].parse().expect("status"), r[1].clone())).collect();
    let in_code: BTreeSet<(u16, String)> =
        credits::http::ERROR_CODES.iter().map(|(s, c)| (*s, c.to_string())).collect();
    assert_eq!(documented, in_code);
    let openapi = yaml("openapi.yaml");
    let enum_codes: BTreeSet<String> = openapi["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
        ["code"]["enum"]
        .as_sequence()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(enum_codes, in_code.iter().map(|(_, c)| c.clone()).collect());
}

#[test]
fn the_plan_table_is_the_default_catalogue() {
    let doc = read("docs/api.md");
    let rows = table(&doc, "## Plans and bonuses", "plan");
    let catalogue = Catalogue::default();
    let dash = |n: Option<i64>| n.map_or("–".to_owned(), |n| n.to_string());
    let expected: Vec<Vec<String>> = catalogue
        .plans()
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.rank.to_string(),
                p.monthly_allowance.to_string(),
                dash(p.rate_per_dollar),
                dash(Some(p.upgrade_bonus).filter(|b| *b > 0)),
            ]
        })
        .collect();
    assert_eq!(rows, expected);
    let sentence = format!(
        "A referrer earns {} credits for each signup through their code, for at most {} rewarded signups",
        catalogue.referral_signup_bonus, catalogue.referral_cap_per_cycle
    );
    assert!(doc.contains(&sentence), "docs/api.md states the referral numbers: {sentence}");
}

#[test]
fn the_ledger_kinds_are_every_kind_the_code_writes() {
    let doc = read("docs/api.md");
    let documented: Vec<String> = table(&doc, "## The ledger", "kind").iter().map(|r| r[0].clone()).collect();
    let in_code: Vec<String> = EntryKind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(documented, in_code);
}

#[test]
fn the_email_table_lists_every_kind_and_its_placeholders() {
    let doc = read("docs/api.md");
    let rows = table(&doc, "## Emails", "kind");
    let documented: Vec<(String, Vec<String>)> =
        rows.iter().map(|r| (r[0].clone(), r[3].split(", ").map(str::to_owned).collect())).collect();
    let in_code: Vec<(String, Vec<String>)> = EmailKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), credits::letters::placeholders(*k).iter().map(|p| p.to_string()).collect()))
        .collect();
    assert_eq!(documented, in_code);
    let common = credits::letters::COMMON.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    assert!(doc.contains(&format!("Common placeholders: {common}.")), "the common placeholders: {common}");
}

#[test]
fn nothing_in_the_repository_points_outside_it() {
    // Spelled in parts, so that this guard is not itself such a reference
    // and checks its own file like every other.
    // Compared lowercased, with backslashes as slashes; the contract's file
    // name only in its capitals, since docs/api.md is the repository's own.
    let outside = [["..", "/shared"].concat(), ["/work", "/"].concat()];
    let contract = ["API", ".md"].concat();
    let mut offenders = Vec::new();
    // The dot-directories the repository keeps (.ci), besides the rest.
    let mut stack = vec![root().to_path_buf(), root().join(".ci")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "__pycache__" {
                    stack.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let folded = text.to_lowercase().replace('\\', "/");
                if outside.iter().any(|o| folded.contains(o.as_str())) || text.contains(&contract) {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    assert!(offenders.is_empty(), "files that refer to a contract outside the repository: {offenders:?}");
}
