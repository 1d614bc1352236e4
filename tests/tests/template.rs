//! What template.yaml must hold for the code's guarantees to hold.

use serde_yaml::Value;

fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

/// A request sends its emails right after its commit; the scheduled sender
/// leaves them alone for FIRST_SEND_GRACE. A request function that could run
/// longer than that might send an email the outbox sends too.
#[test]
fn functions_that_send_email_time_out_well_within_the_first_send_grace() {
    let t = template();
    let global = t["Globals"]["Function"]["Timeout"].as_i64().expect("a global timeout");
    let grace = credits::email::FIRST_SEND_GRACE.num_seconds();
    let mut checked = 0;
    for (name, resource) in t["Resources"].as_mapping().expect("resources") {
        let sender = resource["Properties"]["Environment"]["Variables"].get("SENDER_EMAIL").is_some();
        let http = resource["Properties"]["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "HttpApi"));
        if sender && http {
            let timeout = resource["Properties"]["Timeout"].as_i64().unwrap_or(global);
            assert!(timeout * 2 <= grace, "{name:?}: timeout {timeout} s against a grace of {grace} s");
            checked += 1;
        }
    }
    assert_eq!(
        checked, 6,
        "referral-signup, purchase, upgrade-bonus, spend, corrections and stripe-webhook send email"
    );
}
