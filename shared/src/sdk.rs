//! The AWS SDK's configuration, read from the environment Lambda sets, with
//! the project's one HTTPS client.
//!
//! This replaces `aws-config`'s loader, which looks in many more places a
//! function never uses (profile files, SSO, web identity with its STS client,
//! ECS, IMDS): without it the functions build without `aws-config` and
//! `aws-sdk-sts`, and a cold start does not search those places. What a
//! deployed function and a local run set is read, under the SDK's own names:
//!
//! | variable | |
//! |---|---|
//! | `AWS_REGION` (or `AWS_DEFAULT_REGION`) | required |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | required |
//! | `AWS_SESSION_TOKEN` | with temporary credentials (Lambda's) |
//! | `AWS_ENDPOINT_URL` | every service's endpoint (the local emulator) |
//! | `AWS_ENDPOINT_URL_<SERVICE>` | one service's: `_DYNAMODB`, `_SESV2`, `_SSM` |
//! | `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` | `true`: the two above are ignored |
//! | `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT` | `true` or `false` |
//! | `AWS_CA_BUNDLE` | a PEM file of further roots to trust (one that cannot be read or holds no usable root fails the cold start) |
//! | `AWS_MAX_ATTEMPTS` | attempts per AWS request, first included (default 3) |
//! | `AWS_RETRY_MODE` | `standard` (the default) or `adaptive` |
//! | `CREDITS_AWS_CALL_TIMEOUTS` | `off`: no [`ATTEMPT_TIMEOUT`] or [`OPERATION_TIMEOUT`] (a benchmark against the one-request-at-a-time emulator) |
//! | `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` | a partition table of your own (a file holding a `partitions` list: any other fails the cold start; an empty value counts as unset), used as it is (else [`partition::build`] sets it for each client) |
//!
//! The HTTPS client trusts the five Amazon roots the `aws` partition's
//! endpoints chain to, compiled in, and the system's store too only in the
//! other partitions and in regions the table does not list (reading the
//! system's ~150 roots was two thirds of a cold start's CPU).
//!
//! Timeouts are [`timeouts`]: the SDK's 3.1 s to connect, and, which the SDK
//! leaves unbounded, [`ATTEMPT_TIMEOUT`] per attempt and
//! [`OPERATION_TIMEOUT`] per call, retries included, so a connection that
//! goes silent is given up and retried instead of holding the function until
//! Lambda ends it.

use crate::config::ConfigError;
use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryMode};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::ConfigBag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::{
    connector_metadata::ConnectorMetadata,
    http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector},
    runtime_components::RuntimeComponents,
};
pub use aws_types::sdk_config::SdkConfig;
use aws_types::{
    region::Region,
    service_config::{LoadServiceConfig, ServiceConfigKey},
};
use std::collections::BTreeMap;
use std::time::Duration;

pub mod partition;

/// The roots of trust of AWS service endpoints (Amazon Trust Services), PEM.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("aws-roots.pem");

/// The variable naming a PEM file of further roots to trust (the AWS CLI's
/// name for it): a TLS-inspecting proxy's, or an endpoint of your own.
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";

/// The SDK configuration of this process's environment. An error fails the
/// cold start: it is logged here and returned. Build its clients with
/// [`partition::build`].
pub fn from_env() -> Result<SdkConfig, ConfigError> {
    from_vars(std::env::vars()).inspect_err(|e| tracing::error!(error = %e, "cold start failed: AWS configuration"))
}

/// The SDK configuration of the variables `vars` (name, value), as
/// [`from_env`] reads the process's.
pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<SdkConfig, ConfigError> {
    let env: BTreeMap<String, String> =
        vars.into_iter().filter(|(name, value)| read(name) && !value.is_empty()).collect();
    let var = |name: &str| env.get(name).map(String::as_str);
    // A variable of two words, `yes` or `no` (any case), as a bool.
    let either = |name: &'static str, yes: &str, no: &str| match var(name).map(str::to_ascii_lowercase) {
        None => Ok(None),
        Some(word) if word == yes => Ok(Some(true)),
        Some(word) if word == no => Ok(Some(false)),
        Some(other) => Err(ConfigError::Invalid { name, reason: format!("{other:?} is neither {yes} nor {no}") }),
    };
    let flag = |name: &'static str| either(name, "true", "false");
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).ok_or(ConfigError::Missing("AWS_REGION"))?;
    let key_id = var("AWS_ACCESS_KEY_ID").ok_or(ConfigError::Missing("AWS_ACCESS_KEY_ID"))?;
    let secret = var("AWS_SECRET_ACCESS_KEY").ok_or(ConfigError::Missing("AWS_SECRET_ACCESS_KEY"))?;
    let credentials =
        Credentials::new(key_id, secret, var("AWS_SESSION_TOKEN").map(str::to_owned), None, "environment");
    let ignore_endpoints = flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")?.unwrap_or(false);
    let service_endpoints = if ignore_endpoints {
        BTreeMap::new()
    } else {
        env.iter()
            .filter(|(name, _)| name.starts_with(SERVICE_ENDPOINT_PREFIX))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    };
    let endpoint_url = var("AWS_ENDPOINT_URL").filter(|_| !ignore_endpoints);
    // The SDK's endpoint rules refuse every call of a client with FIPS or
    // dual-stack and an endpoint of its own: refused here, so the cold start
    // says so.
    let custom =
        endpoint_url.map(|_| "AWS_ENDPOINT_URL").or_else(|| service_endpoints.keys().next().map(String::as_str));
    let (fips, dual_stack) = (flag("AWS_USE_FIPS_ENDPOINT")?, flag("AWS_USE_DUALSTACK_ENDPOINT")?);
    for (name, on) in [("AWS_USE_FIPS_ENDPOINT", fips), ("AWS_USE_DUALSTACK_ENDPOINT", dual_stack)] {
        if let (Some(true), Some(custom)) = (on, custom) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("true together with {custom}, which the SDK refuses on every call; use one of them"),
            });
        }
    }
    if let Some(path) = var(partition::PARTITION_FILE_ENV) {
        partition_file(path)?;
    }
    let http = https_client(var(CA_BUNDLE_ENV).map(std::path::Path::new), trusts_system_roots(region))?;
    let mut builder = SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http)
        .service_config(ServiceEndpoints(service_endpoints));
    builder.set_endpoint_url(endpoint_url.map(str::to_owned));
    builder.set_use_fips(fips);
    builder.set_use_dual_stack(dual_stack);
    builder.set_retry_config(retry_config(var("AWS_MAX_ATTEMPTS"), var("AWS_RETRY_MODE"))?);
    let call_timeouts = either(CALL_TIMEOUTS_ENV, "on", "off")?.unwrap_or(true);
    Ok(builder.timeout_config(timeouts(call_timeouts)).build())
}

/// The variable that turns [`ATTEMPT_TIMEOUT`] and [`OPERATION_TIMEOUT`]
/// off: `off` for an emulator that serves one request at a time, where a
/// request can wait seconds behind others under a benchmark's load (`make
/// bench` sets it); `on` (the default) everywhere else.
pub const CALL_TIMEOUTS_ENV: &str = "CREDITS_AWS_CALL_TIMEOUTS";

/// Whether `name` is a variable this module reads.
fn read(name: &str) -> bool {
    name.starts_with("AWS_") || name == CALL_TIMEOUTS_ENV || name == partition::PARTITION_FILE_ENV
}

/// Whether a function in `region` trusts the system's roots too. Endpoints
/// of the `aws` partition chain to the compiled-in Amazon roots; those of
/// the others (China, GovCloud, the ISO partitions) and of a region the
/// table does not list are not known to.
fn trusts_system_roots(region: &str) -> bool {
    partition::partition_of(region) != Some("aws")
}

/// Fails unless `path` is a file holding a partition table (JSON with a
/// `partitions` list, each with its `id`, `regionRegex` and `outputs`): the
/// SDK reads it as the first client of each crate is built, and panics on
/// one it cannot read or parse. (A regular file: the SDK reads it again.)
fn partition_file(path: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name: partition::PARTITION_FILE_ENV, reason };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(invalid(format!("{path} is not a regular file"))),
        Err(e) => return Err(invalid(format!("{path}: {e}"))),
    }
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("{path}: {e}")))?;
    let table: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("{path} is not JSON: {e}")))?;
    let partitions = table["partitions"].as_array().filter(|p| !p.is_empty());
    let complete =
        |p: &serde_json::Value| p["id"].is_string() && p["regionRegex"].is_string() && p["outputs"].is_object();
    match partitions {
        Some(list) if list.iter().all(complete) => Ok(()),
        _ => Err(invalid(format!(
            "{path} is not a partition table (a \"partitions\" list, each with \"id\", \"regionRegex\" and \"outputs\")"
        ))),
    }
}

/// Longest wait for one attempt of an AWS call, its answer included: a
/// DynamoDB or SES answer takes milliseconds, so an attempt this slow is a
/// connection gone silent (a dropped packet, a pooled connection the network
/// forgot while Lambda was frozen), and a fresh attempt is the way out. A
/// transaction whose answer was lost is safe to send again: its conditions
/// and idempotency record decide, as after any lost answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest an AWS call may take, its retries and their pauses included; it
/// then fails as unavailable (a request answers 503). Below the HTTP
/// functions' 10 s Lambda timeout, and what a scheduled run keeps in hand
/// before its deadline ([`crate::ops::schedule::Budget::MARGIN`]).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The SDK's connect timeout (its default for the latest behaviour
/// version), with [`ATTEMPT_TIMEOUT`] and [`OPERATION_TIMEOUT`] when `calls`.
fn timeouts(calls: bool) -> TimeoutConfig {
    let connect = TimeoutConfig::builder().connect_timeout(Duration::from_millis(3_100));
    match calls {
        true => connect.operation_attempt_timeout(ATTEMPT_TIMEOUT).operation_timeout(OPERATION_TIMEOUT).build(),
        false => connect.build(),
    }
}

/// The retry configuration `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` ask for,
/// as `aws-config` reads them; `None` (the SDK's default: standard, three
/// attempts) when neither is set.
fn retry_config(max_attempts: Option<&str>, mode: Option<&str>) -> Result<Option<RetryConfig>, ConfigError> {
    if max_attempts.is_none() && mode.is_none() {
        return Ok(None);
    }
    // The SDK's own parser: trimmed, any case, as aws-config reads it.
    let mode = match mode {
        None => RetryMode::Standard,
        Some(m) => m.parse::<RetryMode>().map_err(|_| ConfigError::Invalid {
            name: "AWS_RETRY_MODE",
            reason: format!("{:?} is neither standard nor adaptive", m.trim().to_ascii_lowercase()),
        })?,
    };
    let config = RetryConfig::standard().with_retry_mode(mode);
    let Some(attempts) = max_attempts else { return Ok(Some(config)) };
    match attempts.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(config.with_max_attempts(n))),
        _ => Err(ConfigError::Invalid {
            name: "AWS_MAX_ATTEMPTS",
            reason: format!("{attempts:?} is not a whole number of at least 1"),
        }),
    }
}

const SERVICE_ENDPOINT_PREFIX: &str = "AWS_ENDPOINT_URL_";

/// The `AWS_ENDPOINT_URL_<SERVICE>` variables, which the SDK's service
/// clients ask for by service id ("DynamoDB" reads `AWS_ENDPOINT_URL_DYNAMODB`).
#[derive(Debug)]
struct ServiceEndpoints(BTreeMap<String, String>);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let name = format!("{}_{}", key.env(), key.service_id().to_uppercase().replace(' ', "_"));
        self.0.get(&name).cloned()
    }
}

/// The project's one HTTPS client (hyper 1 + rustls on ring; see the
/// workspace Cargo.toml). It trusts the roots AWS endpoints chain to,
/// compiled in, plus those of `bundle` (`AWS_CA_BUNDLE`), instead of the
/// system's store (reading and parsing the ~150 system roots was two thirds
/// of a cold start's CPU), unless `system_roots`.
fn https_client(bundle: Option<&std::path::Path>, system_roots: bool) -> Result<SharedHttpClient, ConfigError> {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext};
    let store = trust_store(bundle)?.with_native_roots(system_roots);
    let tls = TlsContext::builder().with_trust_store(store).build();
    let builder = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    // build() cannot fail today; were it to, the SDK's default (the system's roots) is still safe.
    let client = match tls {
        Ok(tls) => builder.tls_context(tls),
        Err(_) => builder,
    }
    .build_https();
    Ok(SharedHttpClient::new(ConnectorOnFirstRequest(client)))
}

/// The HTTPS client, less the connector it builds and throws away for each
/// SDK client constructed. The SDK's hyper client does that in its
/// `validate_base_client_config` so that a system trust store is read at
/// construction rather than on the first request; the store here is compiled
/// in (where the system's is added, outside the `aws` partition and in
/// unlisted regions, it is read
/// on the first request instead), so those connectors (each a rustls configuration from the parsed
/// roots; two of them were 4-10% of `purchase`'s cold-start CPU) were waste.
/// The one connector a function uses is built on its first request and kept,
/// as before. Checked against aws-smithy-http-client 1.5.2, whose
/// `validate_base_client_config` does nothing else; recheck on an upgrade.
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The compiled-in AWS roots, plus the certificates of `bundle`. A bundle
/// that cannot be read, or holds no certificate the TLS library can use as a
/// root, fails the cold start (every call would fail on its first
/// connection otherwise); of a bundle holding some, the others are left out
/// and counted in a warning (the connector panics on one it cannot use).
fn trust_store(bundle: Option<&std::path::Path>) -> Result<aws_smithy_http_client::tls::TrustStore, ConfigError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let mut roots = aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM);
    let Some(path) = bundle else { return Ok(roots) };
    let invalid =
        |reason: String| ConfigError::Invalid { name: CA_BUNDLE_ENV, reason: format!("{}: {reason}", path.display()) };
    // (Bytes that are not UTF-8, in a comment, are no part of a certificate.)
    let text = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let text = String::from_utf8_lossy(&text);
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    // Blocks of another kind (`TRUSTED CERTIFICATE`, ...) are left out too.
    let (mut usable, mut unusable) =
        (0, text.matches("-----BEGIN ").count().saturating_sub(text.matches(BEGIN).count()));
    // Each certificate from its BEGIN line to its END line.
    for block in text.split_inclusive(END).filter_map(|b| b.find(BEGIN).map(|at| &b[at..])) {
        match CertificateDer::from_pem_slice(block.as_bytes()).map(|c| rustls::RootCertStore::empty().add(c)) {
            Ok(Ok(())) => {
                roots.add_pem_certificate(block.as_bytes());
                usable += 1;
            }
            _ => unusable += 1,
        }
    }
    if usable == 0 {
        return Err(invalid(format!(
            "no certificate usable as a root in it ({unusable} blocks left out; only BEGIN CERTIFICATE blocks are read)"
        )));
    }
    if unusable > 0 {
        tracing::warn!(path = %path.display(), usable, unusable, "{CA_BUNDLE_ENV}: certificates not usable as roots left out");
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;
    use aws_smithy_runtime_api::client::{
        http::{HttpConnector, HttpConnectorFuture},
        orchestrator::HttpRequest,
        result::ConnectorError,
        runtime_components::RuntimeComponentsBuilder,
    };
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("PATH", "/usr/bin"),
    ];

    /// Lambda's variables with `extra` set over them.
    fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all: Vec<_> = vars(LAMBDA).into_iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).collect();
        all.extend(vars(extra));
        all
    }

    #[tokio::test]
    async fn lambdas_variables_give_region_and_credentials_and_no_endpoint() {
        let sdk = from_vars(vars(LAMBDA)).expect("config");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        assert_eq!((sdk.use_fips(), sdk.use_dual_stack()), (None, None));
        let credentials =
            sdk.credentials_provider().expect("provider").provide_credentials().await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        assert!(sdk.behavior_version().is_some() && sdk.http_client().is_some());
    }

    #[test]
    fn fips_or_dual_stack_with_an_endpoint_of_ones_own_fails_the_cold_start_naming_both() {
        for (flag, endpoint) in
            [("AWS_USE_FIPS_ENDPOINT", "AWS_ENDPOINT_URL"), ("AWS_USE_DUALSTACK_ENDPOINT", "AWS_ENDPOINT_URL_DYNAMODB")]
        {
            let err =
                from_vars(with(&[(flag, "true"), (endpoint, "https://vpce.example")])).err().map(|e| e.to_string());
            assert!(err.as_deref().is_some_and(|e| e.contains(flag) && e.contains(endpoint)), "{err:?}");
            assert!(from_vars(with(&[(flag, "false"), (endpoint, "https://vpce.example")])).is_ok());
            assert!(from_vars(with(&[(flag, "true")])).is_ok());
            let ignored = with(&[
                (flag, "true"),
                (endpoint, "https://vpce.example"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ]);
            assert!(from_vars(ignored).is_ok(), "the endpoint variables ignored");
        }
    }

    #[test]
    fn clients_give_up_a_silent_attempt_and_a_call_that_outlasts_its_retries() {
        let sdk = from_vars(vars(LAMBDA)).expect("config");
        let dynamodb = aws_sdk_dynamodb::Config::from(&sdk);
        let sesv2 = aws_sdk_sesv2::Config::from(&sdk);
        for timeouts in [dynamodb.timeout_config(), sesv2.timeout_config()] {
            let timeouts = timeouts.expect("timeouts");
            assert_eq!(timeouts.connect_timeout(), Some(Duration::from_millis(3_100)));
            assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
            assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        }
        assert!(ATTEMPT_TIMEOUT * 2 < OPERATION_TIMEOUT, "room for a retry");
        let off = from_vars(with(&[(CALL_TIMEOUTS_ENV, "OFF")])).expect("config");
        let off = off.timeout_config().expect("timeouts");
        assert_eq!(off.connect_timeout(), Some(Duration::from_millis(3_100)));
        assert_eq!((off.operation_attempt_timeout(), off.operation_timeout()), (None, None));
        let on = from_vars(with(&[(CALL_TIMEOUTS_ENV, "on")])).expect("config");
        assert_eq!(on.timeout_config().and_then(|t| t.operation_timeout()), Some(OPERATION_TIMEOUT));
        let bad = from_vars(with(&[(CALL_TIMEOUTS_ENV, "sometimes")])).err().map(|e| e.to_string());
        assert!(bad.is_some_and(|e| e.contains(CALL_TIMEOUTS_ENV)));
    }

    #[test]
    fn a_missing_region_or_key_is_named() {
        let without = |name: &str| vars(LAMBDA).into_iter().filter(|(k, _)| k != name).collect::<Vec<_>>();
        let missing = |name| from_vars(without(name)).err().map(|e| e.to_string());
        assert_eq!(missing("AWS_REGION").as_deref(), Some("AWS_REGION is not set"));
        assert_eq!(missing("AWS_ACCESS_KEY_ID").as_deref(), Some("AWS_ACCESS_KEY_ID is not set"));
        assert_eq!(missing("AWS_SECRET_ACCESS_KEY").as_deref(), Some("AWS_SECRET_ACCESS_KEY is not set"));
        assert!(from_vars(without("AWS_SESSION_TOKEN")).is_ok());
        let empty = from_vars(with(&[("AWS_REGION", "")])).err().map(|e| e.to_string());
        assert_eq!(empty.as_deref(), Some("AWS_REGION is not set"));
        let fallback = from_vars(with(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "us-west-2")])).expect("config");
        assert_eq!(fallback.region().map(|r| r.as_ref()), Some("us-west-2"));
    }

    #[test]
    fn endpoints_come_from_the_sdks_variables_the_service_specific_first() {
        let sdk = from_vars(with(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5005"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]))
        .expect("config");
        let dynamodb = aws_sdk_dynamodb::Config::from(&sdk);
        let ses = aws_sdk_sesv2::Config::from(&sdk);
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5005"));
        assert!(format!("{dynamodb:?}").contains("http://127.0.0.1:8000"));
        assert!(!format!("{dynamodb:?}").contains("http://127.0.0.1:5005"));
        assert!(format!("{ses:?}").contains("http://127.0.0.1:5005"));
        assert!(!format!("{ses:?}").contains("http://127.0.0.1:8000"));

        let ignored = from_vars(with(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5005"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]))
        .expect("config");
        assert_eq!(ignored.endpoint_url(), None);
        assert!(!format!("{:?}", aws_sdk_dynamodb::Config::from(&ignored)).contains("127.0.0.1"));
    }

    #[test]
    fn fips_and_dual_stack_are_booleans() {
        let sdk = from_vars(with(&[("AWS_USE_FIPS_ENDPOINT", "true"), ("AWS_USE_DUALSTACK_ENDPOINT", "FALSE")]))
            .expect("config");
        assert_eq!((sdk.use_fips(), sdk.use_dual_stack()), (Some(true), Some(false)));
        let bad = from_vars(with(&[("AWS_USE_FIPS_ENDPOINT", "yes")])).err().map(|e| e.to_string());
        assert_eq!(bad.as_deref(), Some("AWS_USE_FIPS_ENDPOINT is invalid: \"yes\" is neither true nor false"));
    }

    #[test]
    fn retries_are_the_sdks_default_unless_asked_for() {
        let retry = |extra: &[(&str, &str)]| from_vars(with(extra)).map(|sdk| sdk.retry_config().cloned());
        assert_eq!(retry(&[]).ok(), Some(None));
        let standard = retry(&[("AWS_MAX_ATTEMPTS", "5")]).ok().flatten().expect("a retry config");
        assert_eq!((standard.mode(), standard.max_attempts()), (RetryMode::Standard, 5));
        let client = aws_sdk_dynamodb::Config::from(&from_vars(with(&[("AWS_MAX_ATTEMPTS", "5")])).expect("config"));
        assert_eq!(client.retry_config().map(|c| c.max_attempts()), Some(5));
        let adaptive = retry(&[("AWS_RETRY_MODE", " Adaptive ")]).ok().flatten().expect("a retry config");
        assert_eq!((adaptive.mode(), adaptive.max_attempts()), (RetryMode::Adaptive, 3));
        let both = retry(&[("AWS_RETRY_MODE", "adaptive"), ("AWS_MAX_ATTEMPTS", "1")]).ok().flatten();
        assert_eq!(both.map(|c| (c.mode(), c.max_attempts())), Some((RetryMode::Adaptive, 1)));
        let error = |extra| retry(extra).err().map(|e| e.to_string());
        assert_eq!(
            error(&[("AWS_MAX_ATTEMPTS", "0")]).as_deref(),
            Some("AWS_MAX_ATTEMPTS is invalid: \"0\" is not a whole number of at least 1")
        );
        assert!(error(&[("AWS_MAX_ATTEMPTS", "three")]).is_some());
        assert_eq!(
            error(&[("AWS_RETRY_MODE", "legacy")]).as_deref(),
            Some("AWS_RETRY_MODE is invalid: \"legacy\" is neither standard nor adaptive")
        );
    }

    /// An HTTP client that counts the SDK's calls and whose connector
    /// answers every request with a connection error.
    #[derive(Debug, Default)]
    struct Probe {
        validations: AtomicUsize,
        connectors: AtomicUsize,
    }

    #[derive(Debug)]
    struct ProbeClient(Arc<Probe>);

    #[derive(Debug)]
    struct Unreachable;

    impl HttpConnector for Unreachable {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Err(ConnectorError::io("unreachable".into())))
        }
    }

    impl HttpClient for ProbeClient {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            self.0.connectors.fetch_add(1, Ordering::SeqCst);
            SharedHttpConnector::new(Unreachable)
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            self.0.validations.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn clients_build_no_connector_until_their_first_request() {
        let sdk = |client: SharedHttpClient| {
            from_vars(with(&[("AWS_MAX_ATTEMPTS", "1")])).expect("config").to_builder().http_client(client).build()
        };
        let counts = |p: &Probe| (p.validations.load(Ordering::SeqCst), p.connectors.load(Ordering::SeqCst));

        // The configuration's own client is the wrapper.
        let own = from_vars(vars(LAMBDA)).expect("config");
        assert!(format!("{:?}", own.http_client()).contains("ConnectorOnFirstRequest"));

        // Without it, the SDK validates the client once per service client (the hyper client's
        // validation builds a connector and drops it).
        let bare = Arc::new(Probe::default());
        let config = sdk(SharedHttpClient::new(ProbeClient(bare.clone())));
        let _ = (aws_sdk_dynamodb::Client::new(&config), aws_sdk_sesv2::Client::new(&config));
        assert_eq!(counts(&bare), (2, 0));

        let wrapped = Arc::new(Probe::default());
        let config =
            sdk(SharedHttpClient::new(ConnectorOnFirstRequest(SharedHttpClient::new(ProbeClient(wrapped.clone())))));
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let _ses = aws_sdk_sesv2::Client::new(&config);
        assert_eq!(counts(&wrapped), (0, 0));
        let sent = dynamodb.list_tables().send().await;
        assert!(sent.is_err_and(|e| format!("{e:?}").contains("unreachable")));
        assert_eq!(counts(&wrapped), (0, 1));
    }

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_certificates() {
        let certs = CertificateDer::pem_slice_iter(AWS_ROOTS_PEM).collect::<Result<Vec<_>, _>>();
        assert_eq!(certs.map(|c| c.len()).ok(), Some(5));
    }

    /// Removes the directory when the test ends, an assertion's panic included.
    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let guard = TempDir(std::env::temp_dir().join(format!("credits-{name}-{}", std::process::id())));
        std::fs::create_dir_all(&guard.0).expect("temp dir");
        guard
    }

    #[test]
    fn a_ca_bundle_adds_its_usable_roots_and_one_with_none_fails_the_cold_start() {
        let guard = temp_dir("ca");
        let dir = &guard.0;
        let write = |name: &str, text: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let not_a_root = b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
        let good = write("good.pem", AWS_ROOTS_PEM);
        let mixed =
            write("mixed.pem", &[not_a_root.as_slice(), b"# Soci\xe9t\xe9 (Latin-1)\n", AWS_ROOTS_PEM].concat());
        let trusted_only =
            write("trusted.pem", b"-----BEGIN TRUSTED CERTIFICATE-----\nAAECAwQF\n-----END TRUSTED CERTIFICATE-----\n");
        let bad = write("bad.pem", b"not a certificate");
        let only_bad = write("not-a-root.pem", not_a_root);
        assert_eq!(CertificateDer::pem_file_iter(&only_bad).map(|certs| certs.count()).ok(), Some(1));
        let count = |store: Result<aws_smithy_http_client::tls::TrustStore, ConfigError>| {
            store.map(|s| format!("{s:?}").matches("CertificatePEM").count())
        };
        assert_eq!(count(trust_store(None)).ok(), Some(1));
        assert_eq!(count(trust_store(Some(&good))).ok(), Some(6), "the compiled-in five and each of the bundle's");
        assert_eq!(count(trust_store(Some(&mixed))).ok(), Some(6), "the unusable one left out, and the comment");
        match trust_store(Some(&trusted_only)) {
            Err(ConfigError::Invalid { reason, .. }) => assert!(reason.contains("1 blocks left out"), "{reason}"),
            other => panic!("{other:?}"),
        }
        for path in [bad, only_bad, dir.join("missing.pem")] {
            match trust_store(Some(&path)) {
                Err(ConfigError::Invalid { name, reason }) => {
                    assert_eq!(name, CA_BUNDLE_ENV);
                    assert!(reason.contains(&path.display().to_string()), "{reason}");
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        let failed = from_vars(with(&[(CA_BUNDLE_ENV, &dir.join("missing.pem").display().to_string())]));
        assert!(matches!(failed, Err(ConfigError::Invalid { name: CA_BUNDLE_ENV, .. })), "{failed:?}");
    }

    #[test]
    fn a_partition_file_of_the_deployers_must_be_json_and_an_empty_variable_is_none() {
        use partition::PARTITION_FILE_ENV;
        let guard = temp_dir("partition");
        let write = |name: &str, text: &str| {
            let path = guard.0.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let table = partition::table("eu-west-1").expect("a listed region");
        let json = write("partitions.json", &table);
        let not_json = write("partitions.txt", "partitions");
        let empty = write("empty.json", r#"{"version":"1.1","partitions":[]}"#);
        let botocore =
            write("endpoints.json", r#"{"partitions":[{"partition":"aws","regionRegex":"^x$","regions":{}}]}"#);
        assert!(from_vars(with(&[(PARTITION_FILE_ENV, &json.display().to_string())])).is_ok());
        assert!(from_vars(with(&[(PARTITION_FILE_ENV, "")])).is_ok());
        for path in [not_json, empty, botocore, guard.0.clone(), guard.0.join("missing.json")] {
            let failed = from_vars(with(&[(PARTITION_FILE_ENV, &path.display().to_string())]));
            assert!(matches!(failed, Err(ConfigError::Invalid { name: PARTITION_FILE_ENV, .. })), "{failed:?}");
        }
    }

    #[test]
    fn only_the_aws_partition_trusts_the_compiled_in_roots_alone() {
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            assert!(!trusts_system_roots(region), "{region}");
        }
        for region in ["cn-north-1", "us-gov-west-1", "us-iso-east-1", "xx-newregion-1"] {
            assert!(trusts_system_roots(region), "{region}");
        }
    }
}
