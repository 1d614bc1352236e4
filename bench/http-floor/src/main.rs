//! A purchase's four AWS requests sent as plain HTTP/1.1, without the AWS
//! SDK: what the Lambda runtime, hyper and the kernel's sockets cost on their
//! own, the floor under `sdk-floor` (the same requests through the SDK).
//! Built and measured by `make bench`, which runs it beside `sdk-floor` and
//! the functions.
//!
//! Each invocation builds and sends the JSON bodies the SDK sends for
//! `sdk-floor`'s requests (a TransactGetItems of two items, a
//! TransactWriteItems of four, an SES email, an UpdateItem), reads each
//! answer and parses it as JSON, over one kept-alive connection to
//! `AWS_ENDPOINT_URL`. It does not sign (the emulator does not check
//! signatures; its `Authorization` header is a fixed string of a real one's
//! shape), retry, resolve endpoints or time out, so it cannot run against
//! AWS: it only shows how much of `sdk-floor`'s CPU is the SDK's.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use lambda_http::{run, service_fn, Error, Request, RequestExt, Response};
use serde_json::{json, Value};

struct Floor {
    http: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    table: String,
    sender: String,
    /// A fixed `Authorization` header per service: the emulator routes a
    /// request by the service its credential scope names.
    dynamodb_authorization: String,
    ses_authorization: String,
}

fn key(pk: &str, sk: &str) -> Value {
    json!({"pk": {"S": pk}, "sk": {"S": sk}})
}

/// A new item under `pk`, with a few attributes beside its key (as `sdk-floor`'s).
fn put(table: &str, pk: &str, sk: &str) -> Value {
    json!({"Put": {
        "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "kind": {"S": sk}, "credits": {"N": "500"},
                 "created_at": {"S": "2026-12-03T00:00:00Z"}},
        "TableName": table,
        "ConditionExpression": "attribute_not_exists(pk)",
    }})
}

impl Floor {
    /// POSTs `body` to `path` and returns the parsed answer; an answer other
    /// than 200 is an error carrying its body.
    async fn post(&self, path: &str, target: Option<&str>, body: &Value) -> Result<Value, Error> {
        // DynamoDB's requests name their operation in a header; SES's in the path.
        let (content_type, authorization) = match target {
            Some(_) => ("application/x-amz-json-1.0", &self.dynamodb_authorization),
            None => ("application/json", &self.ses_authorization),
        };
        let mut request = hyper::Request::post(format!("{}{path}", self.endpoint))
            .header("content-type", content_type)
            .header("x-amz-date", "20261203T000000Z")
            .header("authorization", authorization);
        if let Some(target) = target {
            request = request.header("x-amz-target", target);
        }
        let request = request.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        let response = self.http.request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status != hyper::StatusCode::OK {
            return Err(format!("{path} {target:?}: {status} {}", String::from_utf8_lossy(&bytes)).into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn purchase_requests(&self, id: &str) -> Result<(), Error> {
        let table = self.table.as_str();
        let request = format!("http-floor#{id}");
        self.post(
            "/",
            Some("DynamoDB_20120810.TransactGetItems"),
            &json!({"TransactItems": [
                {"Get": {"Key": key("http-floor#account", "account"), "TableName": table}},
                {"Get": {"Key": key(&request, "idempotency"), "TableName": table}},
            ]}),
        )
        .await?;
        self.post(
            "/",
            Some("DynamoDB_20120810.TransactWriteItems"),
            &json!({"TransactItems": [
                {"Update": {
                    "Key": key("http-floor#account", "account"),
                    "UpdateExpression": "ADD purchased :credits, version :one",
                    "TableName": table,
                    "ExpressionAttributeValues": {":credits": {"N": "500"}, ":one": {"N": "1"}},
                }},
                put(table, &request, "ledger"),
                put(table, &request, "idempotency"),
                put(table, &request, "email"),
            ]}),
        )
        .await?;
        let content = |text: &str| json!({"Data": text, "Charset": "UTF-8"});
        self.post(
            "/v2/email/outbound-emails",
            None,
            &json!({
                "FromEmailAddress": self.sender,
                "Destination": {"ToAddresses": ["buyer@example.com"]},
                "Content": {"Simple": {
                    "Subject": content("Your credits have arrived"),
                    "Body": {
                        "Text": content("500 credits were added to your account."),
                        "Html": content("<p>500 credits were added to your account.</p>"),
                    },
                }},
            }),
        )
        .await?;
        self.post(
            "/",
            Some("DynamoDB_20120810.UpdateItem"),
            &json!({
                "TableName": table,
                "Key": key(&request, "email"),
                "UpdateExpression": "SET #status = :sent",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":sent": {"S": "sent"}},
            }),
        )
        .await?;
        Ok(())
    }
}

/// A variable the floor needs, or an error naming it.
fn var(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|e| format!("{name}: {e}").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let region = var("AWS_REGION")?;
    let key_id = var("AWS_ACCESS_KEY_ID")?;
    let authorization = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/20261203/{region}/{service}/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={}",
            "0".repeat(64)
        )
    };
    let floor = Floor {
        http: Client::builder(TokioExecutor::new()).build_http(),
        endpoint: var("AWS_ENDPOINT_URL")?.trim_end_matches('/').to_owned(),
        table: var("TABLE_NAME")?,
        sender: var("SENDER_EMAIL")?,
        dynamodb_authorization: authorization("dynamodb"),
        ses_authorization: authorization("ses"),
    };
    let floor = &floor;
    run(service_fn(move |req: Request| async move {
        let id = req.lambda_context_ref().map_or("", |c| c.request_id.as_str());
        floor.purchase_requests(id).await?;
        Ok::<_, Error>(Response::new(lambda_http::Body::from("{}")))
    }))
    .await
}
