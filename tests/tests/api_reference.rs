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
    let documented: BTreeSet<String> =
        table(&doc, "## Functions and routes", "schedule").iter().map(|r| r[1].clone()).collect();
    let template = yaml("template.yaml");
    let scheduled: BTreeSet<String> = template["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Properties"]["Events"].as_mapping().into_iter().flatten().any(|(_, e)| e["Type"] == "Schedule"))
        .map(|r| r["Properties"]["CodeUri"].as_str().unwrap_or("").trim_start_matches("functions/").to_owned())
        .collect();
    assert_eq!(documented, scheduled);
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
    let outside = ["..", "/shared"].concat();
    let contract = ["API", ".md"].concat();
    let mut offenders = Vec::new();
    let mut stack = vec![root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "__pycache__" {
                    stack.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                if text.contains(&outside) || text.contains(&contract) {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    assert!(offenders.is_empty(), "files that refer to a contract outside the repository: {offenders:?}");
}
