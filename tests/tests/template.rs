//! What template.yaml must hold for the code's guarantees to hold.

use integration_tests::template::{assert_role_allows, template};
use serde_yaml::Value;

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

/// Every function outlasts one AWS call, its retries included: an HTTP
/// function answers 503 when DynamoDB stays silent instead of being cut off
/// by Lambda, and a scheduled one keeps that much in hand and still has most
/// of its time for work.
#[test]
fn every_function_outlasts_one_aws_call() {
    let t = template();
    let global = t["Globals"]["Function"]["Timeout"].as_i64().expect("a global timeout");
    let call = credits::sdk::OPERATION_TIMEOUT.as_secs() as i64;
    let margin = credits::ops::schedule::Budget::MARGIN.as_secs() as i64;
    let mut checked = 0;
    for (name, resource) in t["Resources"].as_mapping().expect("resources") {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let timeout = resource["Properties"]["Timeout"].as_i64().unwrap_or(global);
        let scheduled = resource["Properties"]["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "Schedule" || e["Type"] == "ScheduleV2"));
        if scheduled {
            assert!(timeout >= 4 * margin, "{name:?}: timeout {timeout} s against a margin of {margin} s");
        } else {
            assert!(timeout > call, "{name:?}: timeout {timeout} s against {call} s for one call");
        }
        checked += 1;
    }
    assert_eq!(checked, 10);
}

/// Each function's role allows exactly what it calls, on the table (or its
/// schedule index), the sender identity or the one parameter: no wildcard.
/// Widening a role must be a change to this table too.
#[test]
fn each_role_allows_exactly_what_its_function_calls() {
    const WRITE: &[&str] = &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"];
    let email = ["ses:SendEmail"];
    let mut expected: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    // Closing a hold deletes its entry among the open holds.
    const DELETE: &[&str] = &["dynamodb:DeleteItem"];
    for f in ["ReferralSignupFunction", "PurchaseFunction", "UpgradeBonusFunction", "CorrectionsFunction"] {
        expected.insert(f, [WRITE, &email].concat());
    }
    expected.insert("SpendFunction", [WRITE, DELETE, &email].concat());
    expected.insert("StripeWebhookFunction", [&["ssm:GetParameter"][..], WRITE, &email].concat());
    expected.insert("RolloverFunction", [&["dynamodb:Query", "dynamodb:BatchGetItem"][..], WRITE].concat());
    expected.insert("EmailOutboxFunction", vec!["dynamodb:Query", "dynamodb:UpdateItem", "ses:SendEmail"]);
    expected.insert("HoldExpiryFunction", [&["dynamodb:Query"][..], WRITE, DELETE].concat());
    expected.insert("AccountFunction", vec!["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"]);

    let t = template();
    let mut seen = std::collections::BTreeMap::new();
    for (name, resource) in t["Resources"].as_mapping().expect("resources") {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let name = name.as_str().expect("a resource name").to_owned();
        let mut actions: Vec<String> = Vec::new();
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().expect("inline statements only") {
                let listed: Vec<String> = match &statement["Action"] {
                    Value::String(a) => vec![a.clone()],
                    Value::Sequence(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                    other => panic!("{name}: Action {other:?}"),
                };
                assert!(listed.iter().all(|a| !a.contains('*')), "{name}: a wildcard action in {listed:?}");
                assert_ne!(statement["Resource"].as_str(), Some("*"), "{name}: every resource is named");
                actions.extend(listed);
            }
        }
        actions.sort();
        seen.insert(name, actions);
    }
    for (name, want) in &expected {
        let mut want: Vec<String> = want.iter().map(|a| a.to_string()).collect();
        want.sort();
        assert_eq!(seen.get(*name), Some(&want), "{name}");
    }
    assert_eq!(seen.len(), expected.len(), "every function is in the table: {:?}", seen.keys());
}

/// Each role allows every DynamoDB action its function's requests need, on
/// what they need it (a transaction needs the action of each of its items:
/// a hold's close deletes an item). The emulator checks no permission, so
/// this runs each function's routes and compares what they sent with the
/// role. (stripe-webhook's is checked in stripe.rs, where its events are
/// signed.)
#[tokio::test]
async fn each_role_allows_what_its_function_sends() {
    use integration_tests::*;
    use serde_json::json;
    let table = fresh_table(&app().await).await;
    let setup = app_with(&[("TABLE_NAME", &table)], None).await;
    let log = RequestLog::default();
    let app = app_with(&[("TABLE_NAME", &table)], Some(log.clone())).await;
    let (_, code) = new_user(&setup, "free").await;
    let (buyer, _) = new_user(&setup, "pro").await;
    let sent = |function: &str| {
        assert_role_allows(function, &log.actions());
        log.clear();
    };

    log.clear();
    let friend = new_referred_user(&app, "free", &code).await;
    sent("ReferralSignupFunction");

    let receipt =
        buy(&app, json!({"user_id": buyer, "payment_id": "p1", "amount_cents": 1000, "currency": "USD"})).await;
    assert_eq!(receipt.status, 201, "{}", receipt.text);
    sent("PurchaseFunction");

    assert_eq!(change_plan(&app, json!({"user_id": friend, "change_id": "up", "plan": "pro"})).await.status, 200);
    sent("UpgradeBonusFunction");

    assert_eq!(spend(&app, json!({"user_id": buyer, "spend_id": "s1", "credits": 100})).await.status, 201);
    for (id, expires) in [("cap", 3600), ("rel", 3600), ("exp", 60)] {
        let body = json!({"user_id": buyer, "hold_id": id, "credits": 50, "expires_in_s": expires});
        assert_eq!(hold(&app, body).await.status, 201);
    }
    assert_eq!(settle_hold(&app, "cap", "capture", json!({"user_id": buyer, "credits": 10})).await.status, 200);
    assert_eq!(settle_hold(&app, "rel", "release", json!({"user_id": buyer})).await.status, 200);
    // Down to under 10% of the allowance: the low-balance alert's email.
    assert_eq!(spend(&app, json!({"user_id": buyer, "spend_id": "s2", "credits": 7_500})).await.status, 201);
    sent("SpendFunction");

    let reversal = json!({"user_id": buyer, "reversal_id": "r1", "payment_id": "p1", "reason": "refund"});
    assert_eq!(reverse(&app, reversal).await.status, 201);
    let goodwill =
        json!({"user_id": buyer, "adjustment_id": "a1", "credits": 100, "bucket": "bonus", "reason": "goodwill"});
    assert_eq!(adjust(&app, goodwill).await.status, 201);
    let fraud = json!({"referred_user_id": friend, "clawback_id": "c1", "reason": "fraud"});
    assert_eq!(claw_back(&app, fraud).await.status, 201);
    sent("CorrectionsFunction");

    for (fixture, query) in [
        ("balance.json", ""),
        ("ledger.json", "limit=2"),
        ("referral.json", ""),
        ("holds.json", ""),
        ("credit-options.json", ""),
    ] {
        let answer = account_event(&app, &user_event(fixture, Some(&buyer), query)).await;
        assert_eq!(answer.status, 200, "{fixture}: {}", answer.text);
    }
    sent("AccountFunction");

    assert_eq!(expire_holds_at(&app, &in_minutes(2)).await["expired"], 1);
    sent("HoldExpiryFunction");

    // A receipt SES refused (an unverified sender), for the outbox to send.
    let unverified = app_with(&[("TABLE_NAME", &table), ("SENDER_EMAIL", "billing@unverified.invalid")], None).await;
    let refused = json!({"user_id": buyer, "payment_id": "p2", "amount_cents": 500, "currency": "USD"});
    assert_eq!(buy(&unverified, refused).await.status, 201);
    log.clear();
    // (At least that one: an email the requests above left pending on a
    // loaded machine is sent too.)
    assert!(outbox_at(&app, &in_minutes(5)).await["sent"].as_u64() >= Some(1));
    sent("EmailOutboxFunction");
    let receipt = credits::email::email_id(credits::email::EmailKind::PurchaseReceipt, &[&buyer, "p2"]);
    let item = outbox_item(&setup, &receipt).await;
    assert_eq!(item.as_ref().map(|item| attr(item, "status")), Some("sent"));

    // Two months on: every account's cycle has ended, once or twice.
    let report = rollover_at(&app, &in_minutes(62 * 24 * 60), 0).await;
    assert_eq!(report["errors"], 0, "{report}");
    sent("RolloverFunction");
}

/// The resource a `!Ref` (or `{Ref: ...}`) names.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        other => other["Ref"].as_str(),
    }
}

/// Operations (README): every function alarms on its `Errors` and its
/// `Throttles`, under the function's own condition.
#[test]
fn every_function_alarms_on_errors_and_throttles() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("resources");
    let functions: Vec<(&str, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .filter_map(|(name, r)| Some((name.as_str()?, &r["Condition"])))
        .collect();
    assert_eq!(functions.len(), 10, "{functions:?}");
    for (function, condition) in functions {
        for metric in ["Errors", "Throttles"] {
            let alarms: Vec<_> = resources
                .values()
                .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm" && r["Properties"]["MetricName"] == metric)
                .filter(|r| {
                    r["Properties"]["Dimensions"].as_sequence().is_some_and(|d| {
                        d.iter().any(|d| d["Name"] == "FunctionName" && reference(&d["Value"]) == Some(function))
                    })
                })
                .collect();
            assert_eq!(alarms.len(), 1, "{function}: one {metric} alarm");
            assert_eq!(&alarms[0]["Condition"], condition, "{function}'s {metric} alarm: the function's condition");
            assert!(alarms[0]["Properties"]["AlarmActions"].as_sequence().is_some_and(|a| !a.is_empty()));
        }
    }
}

/// Each scheduled function reserves concurrency only while
/// `ReserveScheduledConcurrency` is true (an account at the new-account
/// limit of 10 cannot reserve any), and `rollover` reserves one per shard
/// group its schedules invoke, so each group's invocation runs at once.
#[test]
fn scheduled_functions_reserve_concurrency_only_when_asked_and_rollover_one_per_shard_group() {
    let t = template();
    assert_eq!(t["Parameters"]["ReserveScheduledConcurrency"]["Default"], "true");
    let mut reserved = std::collections::BTreeMap::new();
    for (name, resource) in t["Resources"].as_mapping().expect("resources") {
        let Some(value) = resource["Properties"].get("ReservedConcurrentExecutions") else { continue };
        let Value::Tagged(tagged) = value else { panic!("{name:?}: reserves unconditionally: {value:?}") };
        assert_eq!(tagged.tag, "If", "{name:?}");
        let branches = tagged.value.as_sequence().expect("[condition, then, else]");
        assert_eq!(branches[0], "ReservesConcurrency", "{name:?}");
        assert_eq!(reference(&branches[2]), Some("AWS::NoValue"), "{name:?}");
        reserved.insert(name.as_str().unwrap_or_default().to_owned(), branches[1].as_i64().expect("a number"));
    }
    let groups = t["Resources"]["RolloverFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("rollover's schedules")
        .values()
        .filter(|e| e["Properties"]["Input"].as_str().is_some_and(|i| i.contains("shard_group")))
        .count() as i64;
    assert_eq!(groups, 4);
    let expected = [("EmailOutboxFunction", 1), ("HoldExpiryFunction", 2), ("RolloverFunction", groups)];
    assert_eq!(reserved, expected.iter().map(|(n, c)| (n.to_string(), *c)).collect());
}

/// Work that fails no invocation (a 5xx answer, an email failed for good,
/// an account a scheduled run could not roll over) is logged at ERROR: each
/// function's log group counts those lines into one metric, which alarms.
/// The pattern reads the `level` field of the functions' JSON lines, which
/// the `logs` tests read the same way.
#[test]
fn error_lines_of_every_function_reach_an_alarm() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("resources");
    let alarm = &t["Resources"]["ErrorLogsAlarm"]["Properties"];
    assert!(alarm["AlarmActions"].as_sequence().is_some_and(|a| !a.is_empty()));
    let mut counted = 0;
    for (name, group) in resources {
        let Some(group_name) = group["Properties"]["LogGroupName"].as_str().or_else(|| {
            let Value::Tagged(sub) = &group["Properties"]["LogGroupName"] else { return None };
            sub.value.as_str()
        }) else {
            continue;
        };
        if group["Type"] != "AWS::Logs::LogGroup" || !group_name.starts_with("/aws/lambda/") {
            continue;
        }
        let filters: Vec<_> = resources
            .values()
            .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
            .filter(|r| reference(&r["Properties"]["LogGroupName"]) == name.as_str())
            .collect();
        assert_eq!(filters.len(), 1, "{name:?}: one filter");
        let filter = filters[0];
        assert_eq!(filter["Condition"], group["Condition"], "{name:?}: the log group's condition");
        assert_eq!(filter["Properties"]["FilterPattern"], r#"{ $.level = "ERROR" }"#);
        let metric = &filter["Properties"]["MetricTransformations"][0];
        assert_eq!(metric["MetricName"], alarm["MetricName"], "{name:?}");
        assert_eq!(metric["MetricNamespace"], alarm["Namespace"], "{name:?}");
        counted += 1;
    }
    assert_eq!(counted, 10, "every function's log group");
}

/// CORS is answered only for the deployer's `DashboardOrigin`, and only what
/// the dashboard's reads need (GET with the user's JWT); none by default.
#[test]
fn the_api_answers_cors_only_for_the_dashboard_origin_and_only_its_reads() {
    let t = template();
    assert_eq!(t["Parameters"]["DashboardOrigin"]["Default"], "");
    let Value::Tagged(cors) = &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"] else {
        panic!("CorsConfiguration is not conditional")
    };
    assert_eq!(cors.tag, "If");
    let branches = cors.value.as_sequence().expect("[condition, then, else]");
    assert_eq!(branches[0], "HasDashboardOrigin");
    assert_eq!(reference(&branches[2]), Some("AWS::NoValue"));
    let allowed = &branches[1];
    let origins = allowed["AllowOrigins"].as_sequence().expect("origins");
    assert_eq!(origins.iter().map(reference).collect::<Vec<_>>(), [Some("DashboardOrigin")]);
    assert_eq!(allowed["AllowMethods"], serde_yaml::from_str::<Value>("[GET]").expect("yaml"));
    assert_eq!(allowed["AllowHeaders"], serde_yaml::from_str::<Value>("[authorization]").expect("yaml"));
}

/// Each dead-letter queue lets EventBridge write to it from exactly the
/// schedule rules that name it (SAM's `<function><event>` rules), by ARN: a
/// pattern on the stack name would miss rules whose generated name CloudFormation
/// cut short, and their failed deliveries would be lost.
#[test]
fn each_dead_letter_queue_admits_exactly_the_schedules_that_use_it() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("resources");
    let mut expected = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (name, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (event, e) in events {
            if e["Type"] != "Schedule" {
                continue;
            }
            let Value::Tagged(dlq) = &e["Properties"]["DeadLetterConfig"]["Arn"] else { panic!("{event:?}: no DLQ") };
            let queue = dlq.value.as_str().and_then(|s| s.strip_suffix(".Arn")).expect("GetAtt queue.Arn").to_owned();
            let rule = format!("{}{}", name.as_str().unwrap_or_default(), event.as_str().unwrap_or_default());
            expected.entry(queue).or_default().push(format!("{rule}.Arn"));
        }
    }
    assert_eq!(expected.len(), 3, "rollover, email-outbox, hold-expiry: {expected:?}");
    for (queue, rules) in expected {
        let policy = resources
            .values()
            .find(|r| r["Type"] == "AWS::SQS::QueuePolicy" && reference(&r["Properties"]["Queues"][0]) == Some(&queue))
            .unwrap_or_else(|| panic!("{queue}: no queue policy"));
        let statement = &policy["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
        let allowed: Vec<String> = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_sequence()
            .expect("a list of rule ARNs")
            .iter()
            .map(|v| match v {
                Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().unwrap_or_default().to_owned(),
                other => panic!("{queue}: not a GetAtt of a rule: {other:?}"),
            })
            .collect();
        assert_eq!(allowed, rules, "{queue}");
    }
}

/// CloudWatch alarms cannot publish to a topic encrypted under the
/// AWS-managed key (`alias/aws/sns`): its key policy does not admit them, and
/// every alarm would fail to notify.
#[test]
fn the_alarm_topic_is_one_alarms_can_publish_to() {
    let t = template();
    let key = &t["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"];
    assert!(!format!("{key:?}").contains("aws/sns"), "AlarmTopic under {key:?}");
    let alarms = t["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter(|r| {
            r["Properties"]["AlarmActions"]
                .as_sequence()
                .is_some_and(|a| a.iter().any(|x| reference(x) == Some("AlarmTopic")))
        })
        .count();
    assert!(alarms >= 20, "{alarms} alarms notify the topic");
}

/// Every route is throttled (the checkov skips of reserved concurrency say
/// API Gateway bounds the traffic), and the public Stripe route tighter.
#[test]
fn the_api_throttles_every_route_and_the_public_webhook_tighter() {
    let t = template();
    let api = &t["Resources"]["HttpApi"]["Properties"];
    let default = &api["DefaultRouteSettings"];
    for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
        assert!(reference(&default[limit]).is_some(), "DefaultRouteSettings.{limit}: {:?}", default[limit]);
    }
    let Value::Tagged(settings) = &api["RouteSettings"] else { panic!("RouteSettings: {:?}", api["RouteSettings"]) };
    assert_eq!(settings.tag, "If");
    let branches = settings.value.as_sequence().expect("!If's list");
    assert_eq!(branches[0].as_str(), Some("HasStripe"), "only where the route exists");
    let webhook = &branches[1]["POST /v1/webhooks/stripe"];
    assert_eq!(reference(&webhook["ThrottlingRateLimit"]), Some("StripeWebhookRateLimit"));
    let parameter = |name: &str| t["Parameters"][name]["Default"].as_i64().expect("a default");
    assert!(parameter("StripeWebhookRateLimit") < parameter("ApiRateLimit"));
}
