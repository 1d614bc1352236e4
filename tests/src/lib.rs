//! Test harness: real API Gateway v2 events (from `fixtures/`) through the
//! handlers, with the real AWS SDK clients, against the local emulator that
//! `make test` starts (`AWS_ENDPOINT_URL`, `TABLE_NAME`, `SENDER_EMAIL`).

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use credits::{App, Config, Mail};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A unique id for this test run and call, so tests share one table safely.
pub fn unique(prefix: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.get_or_init(|| (0..6).map(|_| fastrand::alphanumeric()).collect());
    format!("{prefix}-{run}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Records the DynamoDB operations a client sends (each transmission).
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    /// The operations sent so far, in order (`"TransactWriteItems"`, ...).
    pub fn operations(&self) -> Vec<String> {
        self.0.lock().map(|ops| ops.clone()).unwrap_or_default()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut ops) = self.0.lock() {
            ops.clear();
        }
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
        if let Ok(mut ops) = self.0.lock() {
            ops.push(op);
        }
        Ok(())
    }
}

/// The app under test, configured like a deployed function from the
/// environment, with `overrides` on top.
pub async fn app_with(overrides: &[(&str, &str)], log: Option<RequestLog>) -> App {
    let overrides: HashMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = Config::from_lookup(|name| overrides.get(name).cloned().or_else(|| std::env::var(name).ok()))
        .expect("test configuration (run the tests through `make test`)");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
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

/// A raw DynamoDB client, to look at the table behind the handlers' backs.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// Reads a fixture event.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Turns event JSON into the request lambda_http hands a handler.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// A service-route event: the fixture with this body (raw text).
pub fn service_event(fixture_name: &str, body: &str) -> Value {
    let mut event = fixture(fixture_name);
    event["body"] = json!(body);
    event["headers"]["content-length"] = json!(body.len().to_string());
    event
}

/// A user-route event for `sub` (`None`: no JWT claims) with this query.
pub fn user_event(fixture_name: &str, sub: Option<&str>, query: &str) -> Value {
    let mut event = fixture(fixture_name);
    match sub {
        Some(sub) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub),
        None => {
            if let Some(ctx) = event["requestContext"].as_object_mut() {
                ctx.remove("authorizer");
            }
        }
    }
    event["rawQueryString"] = json!(query);
    if let Some(obj) = event.as_object_mut() {
        obj.remove("queryStringParameters");
    }
    event
}

/// Moves an event to another method and path.
pub fn with_route(mut event: Value, method: &str, path: &str) -> Value {
    event["rawPath"] = json!(path);
    event["routeKey"] = json!(format!("{method} {path}"));
    event["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

/// An answer, decoded.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (Null when not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
    /// Whether `idempotent-replayed: true` was set.
    pub replayed: bool,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Decodes a handler's response.
pub fn answer(response: Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let text = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    Answer { status, json: serde_json::from_str(&text).unwrap_or(Value::Null), text, replayed }
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

/// Sends an event through `spend`.
pub async fn spend_event(app: &App, event: &Value) -> Answer {
    answer(spend::handle(app, request(event)).await.expect("handlers never fail"))
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
    let user = unique(plan);
    let a = signup(app, json!({"user_id": user, "email": format!("{user}@example.com"), "plan": plan})).await;
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

fn num(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {item:?}"))
}

/// Every item of a partition.
pub async fn partition(db: &aws_sdk_dynamodb::Client, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME");
    partition_in(db, &table, pk).await
}

/// Every item of a partition of `table`.
pub async fn partition_in(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = db
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .expect("query");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Checks, straight from the table, that an account's ledger explains its
/// balance: deltas sum to each bucket, entries are numbered 1..=n without
/// gaps, each `balance_after` follows from the one before, none negative.
pub async fn assert_ledger_explains_balance(user: &str) {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME");
    assert_ledger_explains_balance_in(&table, user).await;
}

/// [`assert_ledger_explains_balance`] on another table.
pub async fn assert_ledger_explains_balance_in(table: &str, user: &str) {
    let db = dynamodb().await;
    let items = partition_in(&db, table, &format!("USER#{user}")).await;
    let account = items.iter().find(|i| i.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "ACCOUNT"));
    let account = account.unwrap_or_else(|| panic!("no account {user}"));
    let mut entries: Vec<_> = items
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|s| s.starts_with("LEDGER#")))
        .collect();
    entries.sort_by_key(|e| num(e, "seq"));
    let mut running = [0_i64; 3];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(num(e, "seq"), i as i64 + 1, "{user}: ledger numbering");
        for (b, bucket) in ["plan", "bonus", "flexible"].iter().enumerate() {
            running[b] += num(e, &format!("d_{bucket}"));
            assert_eq!(
                num(e, &format!("after_{bucket}")),
                running[b],
                "{user}: balance_after.{bucket} of entry {}",
                i + 1
            );
            assert!(running[b] >= 0, "{user}: {bucket} went negative");
        }
    }
    assert_eq!(num(account, "ledger_seq"), entries.len() as i64, "{user}: ledger_seq");
    assert_eq!(
        [num(account, "bal_plan"), num(account, "bal_bonus"), num(account, "bal_flexible")],
        running,
        "{user}: balance vs sum of ledger deltas"
    );
}

/// Messages the emulator's SES accepted (from `/moto-api/data.json`).
pub async fn sent_emails() -> Vec<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("emulator reachable");
    let req = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let data: Value = serde_json::from_str(body).expect("data.json");
    let mut out = Vec::new();
    collect_messages(&data["ses"], &mut out);
    out
}

fn collect_messages(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) if map.contains_key("destinations") || map.contains_key("destination") => {
            out.push(v.clone())
        }
        Value::Object(map) => map.values().for_each(|v| collect_messages(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_messages(v, out)),
        _ => {}
    }
}

/// The outbox item of an email id, straight from the table.
pub async fn outbox_item(email_id: &str) -> Option<HashMap<String, AttributeValue>> {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME");
    outbox_item_in(&table, email_id).await
}

/// The outbox item of an email id in `table`.
pub async fn outbox_item_in(table: &str, email_id: &str) -> Option<HashMap<String, AttributeValue>> {
    let db = dynamodb().await;
    partition_in(&db, table, &format!("EMAIL#{email_id}")).await.into_iter().next()
}

/// A string attribute of an item.
pub fn attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
}

/// A number attribute of an item.
pub fn attr_n(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    num(item, name)
}

/// A new, empty table with the schema of the one `make test` created from
/// template.yaml (read back with DescribeTable, so the two cannot drift), for
/// tests whose scheduled work must not see other tests' items.
pub async fn fresh_table() -> String {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, GlobalSecondaryIndex, Projection};
    let db = dynamodb().await;
    let template = std::env::var("TABLE_NAME").expect("TABLE_NAME");
    let described = db.describe_table().table_name(&template).send().await.expect("describe table");
    let table = described.table.expect("table");
    let name = unique(&template);
    let mut create = db
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(table.key_schema().to_vec()))
        .set_attribute_definitions(Some(
            table
                .attribute_definitions()
                .iter()
                .map(|a| {
                    AttributeDefinition::builder()
                        .attribute_name(a.attribute_name())
                        .attribute_type(a.attribute_type().clone())
                        .build()
                        .expect("attribute")
                })
                .collect(),
        ));
    for index in table.global_secondary_indexes() {
        let projection = index.projection().cloned().unwrap_or_else(|| Projection::builder().build());
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.index_name().unwrap_or_default())
                .set_key_schema(Some(index.key_schema().to_vec()))
                .projection(projection)
                .build()
                .expect("index"),
        );
    }
    create.send().await.expect("create table");
    name
}

/// The app on its own fresh table, with `overrides` on top.
pub async fn app_on_fresh_table(overrides: &[(&str, &str)]) -> App {
    let table = fresh_table().await;
    let mut all = vec![("TABLE_NAME", table.as_str())];
    all.extend_from_slice(overrides);
    app_with(&all, None).await
}

/// Runs `rollover` with a Scheduler payload at `time`, with `deadline_ms`
/// (milliseconds since the epoch; 0 for none).
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

/// Milliseconds since the epoch, `ahead` from now.
pub fn epoch_ms_in(ahead: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    u64::try_from((now + ahead).as_millis()).expect("ms")
}

/// The account item as stored.
pub async fn account_item(app: &App, user: &str) -> HashMap<String, AttributeValue> {
    let db = dynamodb().await;
    let out = db
        .get_item()
        .table_name(&app.config.table_name)
        .key("pk", AttributeValue::S(format!("USER#{user}")))
        .key("sk", AttributeValue::S("ACCOUNT".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item");
    out.item.expect("account exists")
}

/// The ledger entries of a user on the app's table, oldest first, as
/// `(kind, plan delta, ref)`.
pub async fn ledger_kinds(app: &App, user: &str) -> Vec<(String, i64, String)> {
    let db = dynamodb().await;
    let table = app.config.table_name.clone();
    let out = db
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :l)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
        .expression_attribute_values(":l", AttributeValue::S("LEDGER#".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    out.items
        .unwrap_or_default()
        .iter()
        .map(|i| (attr(i, "entry_kind").to_owned(), num(i, "d_plan"), attr(i, "ref").to_owned()))
        .collect()
}
