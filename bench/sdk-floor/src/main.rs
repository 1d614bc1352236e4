//! The AWS requests of one purchase and nothing else, built and measured
//! beside the real functions by `make bench`: what the Lambda runtime, the
//! logger and the AWS SDK cost on their own, installed and configured as the
//! functions install and configure them (`credits::telemetry`,
//! `credits::sdk`). Each invocation sends, as a purchase does,
//! a TransactGetItems of two items, a TransactWriteItems of four (an account
//! update and three new items), one SES email and an UpdateItem marking it
//! sent; its items are smaller than a purchase's, so its figures are a floor.
//! No rules, no idempotency or ledger logic, and no log line of its own.
//!
//! `FLOOR_SKIP` leaves parts of its start out, to weigh them
//! (bench/cold-start-parts.sh): `logger` (no logger installed), `ses` (no SES
//! client), `clients` (no SDK configuration or client). Without SES an
//! invocation stops before the email, and without clients it sends nothing.

use aws_sdk_dynamodb::types::{AttributeValue, Get, Put, TransactGetItem, TransactWriteItem, Update};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use lambda_http::{run, service_fn, Error, Request, RequestExt, Response};
use std::collections::HashMap;

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    ses: Option<aws_sdk_sesv2::Client>,
    table: String,
    sender: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A new item under `pk`, with a few attributes beside its key.
fn put(table: &str, pk: &str, sk: &str) -> Result<TransactWriteItem, Error> {
    let mut item = key(pk, sk);
    item.insert("kind".to_owned(), s(sk));
    item.insert("credits".to_owned(), n(500));
    item.insert("created_at".to_owned(), s("2026-12-03T00:00:00Z"));
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

async fn purchase_requests(c: &Clients, id: &str) -> Result<(), Error> {
    let account = key("floor#account", "account");
    let request = format!("floor#{id}");
    let get = |k: HashMap<String, AttributeValue>| -> Result<TransactGetItem, Error> {
        Ok(TransactGetItem::builder().get(Get::builder().table_name(&c.table).set_key(Some(k)).build()?).build())
    };
    c.dynamodb
        .transact_get_items()
        .transact_items(get(account.clone())?)
        .transact_items(get(key(&request, "idempotency"))?)
        .send()
        .await?;

    let update = Update::builder()
        .table_name(&c.table)
        .set_key(Some(account))
        .update_expression("ADD purchased :credits, version :one")
        .expression_attribute_values(":credits", n(500))
        .expression_attribute_values(":one", n(1))
        .build()?;
    c.dynamodb
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(put(&c.table, &request, "ledger")?)
        .transact_items(put(&c.table, &request, "idempotency")?)
        .transact_items(put(&c.table, &request, "email")?)
        .send()
        .await?;

    let Some(ses) = &c.ses else { return Ok(()) };
    let content = |text: &str| Content::builder().data(text).charset("UTF-8").build();
    let message = Message::builder()
        .subject(content("Your credits have arrived")?)
        .body(
            Body::builder()
                .text(content("500 credits were added to your account.")?)
                .html(content("<p>500 credits were added to your account.</p>")?)
                .build(),
        )
        .build();
    ses.send_email()
        .from_email_address(&c.sender)
        .destination(Destination::builder().to_addresses("buyer@example.com").build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await?;

    c.dynamodb
        .update_item()
        .table_name(&c.table)
        .set_key(Some(key(&request, "email")))
        .update_expression("SET #status = :sent")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":sent", s("sent"))
        .send()
        .await?;
    Ok(())
}

/// A variable the floor needs, or an error naming it.
fn var(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|e| format!("{name}: {e}").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let skip = std::env::var("FLOOR_SKIP").unwrap_or_default();
    let skip = |part: &str| skip.split(',').any(|s| s.trim() == part);
    if !skip("logger") {
        credits::telemetry::init();
    }
    let clients = if skip("clients") {
        None
    } else {
        let sdk = credits::sdk::from_env()?;
        Some(Clients {
            dynamodb: credits::sdk::partition::build(&sdk, aws_sdk_dynamodb::Client::new),
            ses: (!skip("ses")).then(|| credits::sdk::partition::build(&sdk, aws_sdk_sesv2::Client::new)),
            table: var("TABLE_NAME")?,
            sender: var("SENDER_EMAIL")?,
        })
    };
    let clients = &clients;
    run(service_fn(move |req: Request| async move {
        let id = req.lambda_context_ref().map_or("", |c| c.request_id.as_str());
        if let Some(clients) = clients {
            purchase_requests(clients, id).await?;
        }
        Ok::<_, Error>(Response::new(lambda_http::Body::from("{}")))
    }))
    .await
}
