//! What template.yaml grants each function, for the tests that compare it
//! with what the function sends.

use serde_yaml::Value;
use std::collections::BTreeSet;

/// template.yaml, parsed.
pub fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

/// What a statement's resource is, in [`crate::RequestLog::actions`]' terms:
/// `table` for the table's ARN, `index/<name>` for one of its indexes, and
/// the resource as written for anything else.
fn resource_kind(resource: &Value) -> String {
    match resource {
        Value::Tagged(t) if t.tag == "GetAtt" && t.value.as_str() == Some("CreditsTable.Arn") => "table".to_owned(),
        Value::Tagged(t) if t.tag == "Sub" => {
            match t.value.as_str().and_then(|s| s.strip_prefix("${CreditsTable.Arn}/")) {
                Some(index) => index.to_owned(),
                None => format!("{resource:?}"),
            }
        }
        other => format!("{other:?}"),
    }
}

/// The DynamoDB actions the role of `function` (its resource name, such as
/// `SpendFunction`) allows, each with what it allows it on.
pub fn role_dynamodb_actions(function: &str) -> BTreeSet<(String, String)> {
    let t = template();
    let mut allowed = BTreeSet::new();
    for policy in t["Resources"][function]["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Sequence(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let resources: Vec<&Value> = match &statement["Resource"] {
                Value::Sequence(list) => list.iter().collect(),
                one => vec![one],
            };
            for action in actions.into_iter().filter(|a| a.starts_with("dynamodb:")) {
                for resource in &resources {
                    allowed.insert((action.to_owned(), resource_kind(resource)));
                }
            }
        }
    }
    allowed
}

/// Fails unless the role of `function` allows every action in `needed`.
pub fn assert_role_allows(function: &str, needed: &BTreeSet<(String, String)>) {
    let allowed = role_dynamodb_actions(function);
    assert!(!needed.is_empty(), "{function}: nothing was sent");
    let missing: Vec<_> = needed.difference(&allowed).collect();
    assert!(missing.is_empty(), "{function}'s role in template.yaml lacks {missing:?} (it allows {allowed:?})");
}
