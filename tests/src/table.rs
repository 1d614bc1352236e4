//! The table behind the handlers' backs: items as stored, partitions, and
//! fresh tables with the schema of the one `make test` created.

use aws_sdk_dynamodb::types::AttributeValue;
use credits::App;
use std::collections::HashMap;

/// An item as stored.
pub type Item = HashMap<String, AttributeValue>;

/// A raw DynamoDB client, to look at the table behind the handlers' backs.
/// Without the functions' timeouts: the emulator takes over 4 s to scan a
/// page of a table the chaos suite filled (7,800 items, 1 MB a page), which
/// no function does.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let sdk = crate::drivers::sdk_config()
        .to_builder()
        .timeout_config(aws_sdk_dynamodb::config::timeout::TimeoutConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// A string attribute of an item ("" where absent).
pub fn attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
}

/// A number attribute of an item; panics where absent.
pub fn attr_n(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {item:?}"))
}

/// A number attribute of an item, `default` where absent (items written
/// before the attribute existed).
pub fn attr_n_or(item: &Item, name: &str, default: i64) -> i64 {
    if item.contains_key(name) {
        attr_n(item, name)
    } else {
        default
    }
}

/// Every item of a partition of the app's table.
pub async fn partition(app: &App, pk: &str) -> Vec<Item> {
    let db = dynamodb().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = db
            .query()
            .table_name(&app.config.table_name)
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

/// Every item of the app's table (a scan: for tests only).
pub async fn scan(app: &App) -> Vec<Item> {
    let db = dynamodb().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = db
            .scan()
            .table_name(&app.config.table_name)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// The account item of a user, as stored (one item read: the partition
/// holds the whole ledger too).
pub async fn account_item(app: &App, user: &str) -> Item {
    let out = dynamodb()
        .await
        .get_item()
        .table_name(&app.config.table_name)
        .key("pk", AttributeValue::S(format!("USER#{user}")))
        .key("sk", AttributeValue::S("ACCOUNT".to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item");
    out.item.unwrap_or_else(|| panic!("no account {user}"))
}

/// Sets attributes of a user's account behind the handlers' backs (to plant
/// a state no request can make: a plan the catalogue lost, a huge bucket).
pub async fn set_account_attributes(app: &App, user: &str, values: &[(&str, AttributeValue)]) {
    set_attributes(app, &format!("USER#{user}"), "ACCOUNT", values).await
}

/// Sets attributes of an outbox email behind the handlers' backs.
pub async fn set_email_attributes(app: &App, email_id: &str, values: &[(&str, AttributeValue)]) {
    set_attributes(app, &format!("EMAIL#{email_id}"), "EMAIL", values).await
}

/// Sets attributes of a user's hold behind the handlers' backs (to make it
/// past its time without waiting for it).
pub async fn set_hold_attributes(app: &App, user: &str, hold_id: &str, values: &[(&str, AttributeValue)]) {
    set_attributes(app, &format!("USER#{user}"), &format!("HOLD#{hold_id}"), values).await
}

/// Sets attributes of an existing item.
async fn set_attributes(app: &App, pk: &str, sk: &str, values: &[(&str, AttributeValue)]) {
    let mut update = dynamodb()
        .await
        .update_item()
        .table_name(&app.config.table_name)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .condition_expression("attribute_exists(pk)");
    let mut sets = Vec::new();
    for (i, (name, value)) in values.iter().enumerate() {
        sets.push(format!("#a{i} = :v{i}"));
        update = update
            .expression_attribute_names(format!("#a{i}"), *name)
            .expression_attribute_values(format!(":v{i}"), value.clone());
    }
    update.update_expression(format!("SET {}", sets.join(", "))).send().await.expect("item updated");
}

/// The outbox item of an email id.
pub async fn outbox_item(app: &App, email_id: &str) -> Option<Item> {
    partition(app, &format!("EMAIL#{email_id}")).await.into_iter().next()
}

/// The ledger entries of a user, oldest first, as `(kind, plan delta, ref)`.
pub async fn ledger_kinds(app: &App, user: &str) -> Vec<(String, i64, String)> {
    let mut entries: Vec<Item> = partition(app, &format!("USER#{user}"))
        .await
        .into_iter()
        .filter(|i| attr(i, "sk").starts_with("LEDGER#"))
        .collect();
    entries.sort_by_key(|e| attr_n(e, "seq"));
    entries.iter().map(|i| (attr(i, "entry_kind").to_owned(), attr_n(i, "d_plan"), attr(i, "ref").to_owned())).collect()
}

/// A new, empty table with the schema of `app`'s (read back with
/// DescribeTable, so the two cannot drift), for tests whose scheduled work
/// must not see other tests' items.
pub async fn fresh_table(app: &App) -> String {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, GlobalSecondaryIndex, Projection};
    let db = dynamodb().await;
    let template = &app.config.table_name;
    let described = db.describe_table().table_name(template).send().await.expect("describe table");
    let table = described.table.expect("table");
    let name = crate::unique(template);
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
