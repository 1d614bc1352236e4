//! The app under test, configured like a deployed function, and each
//! function driven by an event.

use crate::events::{answer, request, service_event, user_event, Answer};
use crate::unique;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use credits::{App, Config, Mail};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Records the DynamoDB operations a client sends (each transmission), and
/// the IAM actions they need.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    operations: Arc<Mutex<Vec<String>>>,
    actions: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl RequestLog {
    /// The operations sent so far, in order (`"TransactWriteItems"`, ...).
    pub fn operations(&self) -> Vec<String> {
        self.operations.lock().map(|ops| ops.clone()).unwrap_or_default()
    }

    /// The IAM actions the requests so far needed, each with what it was on:
    /// `table`, or `index/<name>` (a transaction needs the action of each of
    /// its items: `dynamodb:PutItem` for a Put, `dynamodb:ConditionCheckItem`
    /// for a ConditionCheck, ...).
    pub fn actions(&self) -> BTreeSet<(String, String)> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut ops) = self.operations.lock() {
            ops.clear();
        }
        if let Ok(mut actions) = self.actions.lock() {
            actions.clear();
        }
    }
}

/// The IAM actions a DynamoDB request `op` with `body` needs.
fn iam_actions(op: &str, body: &Value) -> Vec<(String, String)> {
    let on_table = |action: &str| (format!("dynamodb:{action}"), "table".to_owned());
    match op {
        "TransactWriteItems" => match body["TransactItems"].as_array() {
            Some(items) => items
                .iter()
                .filter_map(|item| item.as_object()?.keys().next().cloned())
                .map(|kind| (format!("dynamodb:{kind}Item"), "table".to_owned()))
                .collect(),
            // No role allows this: a body the log cannot read fails the check.
            None => vec![("unread TransactWriteItems".to_owned(), "table".to_owned())],
        },
        "TransactGetItems" => vec![on_table("GetItem")],
        "Query" | "Scan" => match body["IndexName"].as_str() {
            Some(index) => vec![(format!("dynamodb:{op}"), format!("index/{index}"))],
            None => vec![on_table(op)],
        },
        other => vec![on_table(other)],
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        let body: Value =
            context.request().body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        if let Ok(mut actions) = self.actions.lock() {
            actions.extend(iam_actions(&op, &body));
        }
        if let Ok(mut ops) = self.operations.lock() {
            ops.push(op);
        }
        Ok(())
    }
}

/// The app on clients the test built (`aws-smithy-mocks`): table
/// `credits-mocked`, the default catalogue.
pub fn mocked_app(dynamodb: aws_sdk_dynamodb::Client, ses: aws_sdk_sesv2::Client) -> App {
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some("credits-mocked".into()),
        "SENDER_EMAIL" => Some("credits@example.com".into()),
        _ => None,
    })
    .expect("config");
    App::new(config, dynamodb, ses, Mail::Required).expect("app")
}

/// The SDK configuration of the environment (the emulator under `make test`).
pub fn sdk_config() -> credits::sdk::SdkConfig {
    credits::sdk::from_env().expect("AWS configuration (run the tests through `make test`)")
}

/// The app under test, configured like a deployed function from the
/// environment, with `overrides` on top.
pub async fn app_with(overrides: &[(&str, &str)], log: Option<RequestLog>) -> App {
    let overrides: HashMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = Config::from_lookup(|name| overrides.get(name).cloned().or_else(|| std::env::var(name).ok()))
        .expect("test configuration (run the tests through `make test`)");
    let sdk = sdk_config();
    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(log) = log {
        dynamodb = dynamodb.interceptor(log);
    }
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb.build());
    App::new(config, dynamodb, aws_sdk_sesv2::Client::new(&sdk), Mail::Required).expect("app")
}

/// The app under test with the environment's configuration.
pub async fn app() -> App {
    app_with(&[], None).await
}

/// The app on `table`, reaching DynamoDB and SES through `endpoint` (the
/// fault proxy) instead of the environment's endpoint: otherwise configured
/// and built exactly as a deployed function is.
pub async fn app_through(endpoint: &str, table: &str) -> App {
    let config =
        Config::from_lookup(
            |name| if name == "TABLE_NAME" { Some(table.to_owned()) } else { std::env::var(name).ok() },
        )
        .expect("test configuration (run the tests through `make test`)");
    let sdk = sdk_config().to_builder().endpoint_url(endpoint).build();
    App::new(config, aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sesv2::Client::new(&sdk), Mail::Required)
        .expect("app")
}

/// The app on its own fresh table, with `overrides` on top.
pub async fn app_on_fresh_table(overrides: &[(&str, &str)]) -> App {
    let table = crate::table::fresh_table(&app().await).await;
    let mut all = vec![("TABLE_NAME", table.as_str())];
    all.extend_from_slice(overrides);
    app_with(&all, None).await
}

/// Sends an event through `referral-signup`.
pub async fn signup_event(app: &App, event: &Value) -> Answer {
    answer(referral_signup::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Sends an event through `purchase`.
pub async fn purchase_event(app: &App, event: &Value) -> Answer {
    answer(purchase::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Sends an event through `account`.
pub async fn account_event(app: &App, event: &Value) -> Answer {
    answer(account::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Sends an event through `upgrade-bonus`.
pub async fn plan_change_event(app: &App, event: &Value) -> Answer {
    answer(upgrade_bonus::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Sends an event through `corrections`.
pub async fn corrections_event(app: &App, event: &Value) -> Answer {
    answer(corrections::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Reverses a purchase through the handler with this JSON body.
pub async fn reverse(app: &App, body: Value) -> Answer {
    corrections_event(app, &service_event("reversal.json", &body.to_string())).await
}

/// Adjusts a balance through the handler with this JSON body.
pub async fn adjust(app: &App, body: Value) -> Answer {
    corrections_event(app, &service_event("adjustment.json", &body.to_string())).await
}

/// Claws a referral back through the handler with this JSON body.
pub async fn claw_back(app: &App, body: Value) -> Answer {
    corrections_event(app, &service_event("clawback.json", &body.to_string())).await
}

/// Places a hold through `spend` with this JSON body.
pub async fn hold(app: &App, body: Value) -> Answer {
    spend_event(app, &service_event("hold.json", &body.to_string())).await
}

/// Captures (`action` "capture") or releases (`"release"`) a hold through
/// `spend`, with the hold id in the path and this JSON body.
pub async fn settle_hold(app: &App, hold_id: &str, action: &str, body: Value) -> Answer {
    let path = format!("/v1/holds/{hold_id}/{action}");
    let mut event = crate::events::with_route(service_event("capture.json", &body.to_string()), "POST", &path);
    event["routeKey"] = json!(format!("POST /v1/holds/{{hold_id}}/{action}"));
    event["pathParameters"] = json!({"hold_id": hold_id});
    spend_event(app, &event).await
}

/// The signed-in user's open holds via `GET /v1/me/holds`.
pub async fn open_holds(app: &App, user: &str) -> Answer {
    account_event(app, &user_event("holds.json", Some(user), "")).await
}

/// Runs `hold-expiry` with a Scheduler payload at `time`.
pub async fn expire_holds_at(app: &App, time: &str) -> Value {
    let event = lambda_runtime::LambdaEvent::new(json!({"time": time}), lambda_runtime::Context::default());
    serde_json::to_value(hold_expiry::handle(app, event).await.expect("hold expiry runs")).expect("report")
}

/// Sends an event through `spend`.
pub async fn spend_event(app: &App, event: &Value) -> Answer {
    answer(spend::handle(app, request(event)).await.expect("handlers never fail"))
}

/// Sends an event through the function of this name.
pub async fn send_to(app: &App, function: &str, event: &Value) -> Answer {
    match function {
        "referral-signup" => signup_event(app, event).await,
        "purchase" => purchase_event(app, event).await,
        "upgrade-bonus" => plan_change_event(app, event).await,
        "spend" => spend_event(app, event).await,
        "account" => account_event(app, event).await,
        "corrections" => corrections_event(app, event).await,
        other => panic!("no HTTP function {other}"),
    }
}

/// Changes plan through the handler with this JSON body.
pub async fn change_plan(app: &App, body: Value) -> Answer {
    plan_change_event(app, &service_event("plan-change.json", &body.to_string())).await
}

/// Spends through the handler with this JSON body.
pub async fn spend(app: &App, body: Value) -> Answer {
    spend_event(app, &service_event("spend.json", &body.to_string())).await
}

/// Signs up through the handler with this JSON body.
pub async fn signup(app: &App, body: Value) -> Answer {
    signup_event(app, &service_event("signup.json", &body.to_string())).await
}

/// Buys through the handler with this JSON body.
pub async fn buy(app: &App, body: Value) -> Answer {
    purchase_event(app, &service_event("purchase.json", &body.to_string())).await
}

/// Signs a new user up, referred by `code`, and returns its id.
pub async fn new_referred_user(app: &App, plan: &str, code: &str) -> String {
    let user = unique(plan);
    let body = json!({"user_id": user, "email": format!("{user}@example.org"), "plan": plan, "referral_code": code});
    let a = signup(app, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    user
}

/// Signs a new user up and returns its id and referral code.
pub async fn new_user(app: &App, plan: &str) -> (String, String) {
    sign_up(app, plan, None).await
}

/// A new user on `plan` signed up at `signed_up_at`: (user id, referral code).
pub async fn new_user_since(app: &App, plan: &str, signed_up_at: &str) -> (String, String) {
    sign_up(app, plan, Some(signed_up_at)).await
}

async fn sign_up(app: &App, plan: &str, signed_up_at: Option<&str>) -> (String, String) {
    let user = unique(plan);
    let mut body = json!({"user_id": user, "email": format!("{user}@example.com"), "plan": plan});
    if let Some(at) = signed_up_at {
        body["signed_up_at"] = json!(at);
    }
    let a = signup(app, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let code = a.json["account"]["referral_code"].as_str().expect("code").to_owned();
    (user, code)
}

/// The account's balance via `GET /v1/me/balance`.
pub async fn balance(app: &App, user: &str) -> Value {
    let a = account_event(app, &user_event("balance.json", Some(user), "")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["balance"].clone()
}

/// Runs `rollover` with a Scheduler payload at `time`, with `deadline_ms`
/// (the Lambda context's: milliseconds since the epoch; 0 for none).
pub async fn rollover_at(app: &App, time: &str, deadline_ms: u64) -> Value {
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = deadline_ms;
    let event = lambda_runtime::LambdaEvent::new(json!({"time": time}), ctx);
    serde_json::to_value(rollover::handle(app, event).await.expect("rollover runs")).expect("report")
}

/// Runs `email-outbox` with a Scheduler payload at `time`.
pub async fn outbox_at(app: &App, time: &str) -> Value {
    let event = lambda_runtime::LambdaEvent::new(json!({"time": time}), lambda_runtime::Context::default());
    serde_json::to_value(email_outbox::handle(app, event).await.expect("outbox runs")).expect("report")
}

/// The time `minutes` from now, as the API writes times (for a scheduled
/// run's event).
pub fn in_minutes(minutes: i64) -> String {
    credits::cycle::format_time(credits::cycle::now() + chrono::Duration::minutes(minutes))
}

/// Milliseconds since the epoch, `ahead` from now.
pub fn epoch_ms_in(ahead: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    u64::try_from((now + ahead).as_millis()).expect("ms")
}
