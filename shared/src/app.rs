//! What a function builds once per cold start and lends to every request.

use crate::config::{Config, ConfigError};
use crate::email::Mailer;
use crate::store::Store;

/// The roots of trust of AWS service endpoints (Amazon Trust Services), PEM.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("aws-roots.pem");

/// The variable naming a PEM file of further roots to trust (the AWS CLI's
/// name for it): a TLS-inspecting proxy's, or an endpoint of your own.
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";

/// The AWS SDK's configuration loader, with the project's one HTTPS client
/// (hyper 1 + rustls on ring; see the workspace Cargo.toml). Endpoints,
/// region and credentials come from the SDK's own environment variables;
/// callers may override them on the loader (tests point it at the emulator).
///
/// The client trusts the roots AWS endpoints chain to, compiled in, plus
/// those of `AWS_CA_BUNDLE`, instead of the system's store: reading and
/// parsing the ~150 system roots was two thirds of a cold start's CPU.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext};
    let bundle = std::env::var_os(CA_BUNDLE_ENV).map(std::path::PathBuf::from);
    let tls = TlsContext::builder().with_trust_store(trust_store(bundle.as_deref())).build();
    let builder = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    // build() cannot fail today; were it to, the SDK's default (the system's roots) is still safe.
    let http = match tls {
        Ok(tls) => builder.tls_context(tls),
        Err(_) => builder,
    }
    .build_https();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    // Lambda (and a local run) sets the region and the credentials in the
    // environment: naming them skips building the default chains (profile
    // files, SSO, web identity with its STS client, ECS, IMDS), a fifth of a
    // cold start. Without them, the SDK's default chains apply.
    let loader = match std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")) {
        Ok(region) if !region.is_empty() => loader.region(aws_config::Region::new(region)),
        _ => loader,
    };
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some() {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    }
}

/// The compiled-in AWS roots, plus the certificates of `bundle` if it is a
/// readable PEM file of them; one that is not is logged and left out (the
/// HTTPS client would otherwise fail on its first connection).
fn trust_store(bundle: Option<&std::path::Path>) -> aws_smithy_http_client::tls::TrustStore {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let roots = aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM);
    let Some(path) = bundle else { return roots };
    let pem = std::fs::read(path).map_err(|e| e.to_string()).and_then(|pem| {
        match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Ok(pem),
            Ok(_) => Err("no certificate in it".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    });
    match pem {
        Ok(pem) => roots.with_pem_certificate(pem),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "{CA_BUNDLE_ENV} is not a PEM file of certificates; not trusted");
            roots
        }
    }
}

/// Whether a function sends email, and so needs `SENDER_EMAIL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mail {
    /// It sends email: a missing `SENDER_EMAIL` fails the cold start.
    Required,
    /// It never sends email.
    NotUsed,
}

/// Configuration and clients, built once per cold start and lent to every
/// request, so no request reads the environment or builds a client.
#[derive(Clone, Debug)]
pub struct App {
    /// Read from the environment at cold start.
    pub config: Config,
    /// DynamoDB, through the real SDK client.
    pub store: Store,
    /// SES v2; `None` in functions that send no email.
    pub mailer: Option<Mailer>,
}

impl App {
    /// Reads the environment and builds the clients (endpoints, region and
    /// credentials come from the AWS SDK's own variables).
    /// A configuration error fails the cold start, logged and returned.
    pub async fn from_env(mail: Mail) -> Result<App, ConfigError> {
        App::from_sdk(&sdk_loader().load().await, mail)
    }

    /// As [`App::from_env`], with an SDK configuration already loaded (a
    /// function that needs other AWS clients loads it once for all).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, mail: Mail) -> Result<App, ConfigError> {
        let app = match Config::from_env() {
            Ok(config) => {
                let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
                match mail {
                    Mail::Required => App::new(config, dynamodb, aws_sdk_sesv2::Client::new(sdk), mail),
                    // No SES client to build (a tenth of a cold start) for a function that sends nothing.
                    Mail::NotUsed => {
                        Ok(App { store: Store::new(dynamodb, config.table_name.clone()), config, mailer: None })
                    }
                }
            }
            Err(e) => Err(e),
        };
        match &app {
            Err(e) => tracing::error!(error = %e, "cold start failed: configuration"),
            Ok(app) if app.config.dev_identity_headers => tracing::warn!(
                "{} is set: identity headers stand in for API Gateway's authorizers; for local development only",
                crate::config::DEV_IDENTITY_ENV
            ),
            Ok(_) => {}
        }
        app
    }

    /// Builds an app from ready clients.
    pub fn new(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        ses: aws_sdk_sesv2::Client,
        mail: Mail,
    ) -> Result<App, ConfigError> {
        let mailer = match (mail, &config.sender_email) {
            (Mail::Required, None) => return Err(ConfigError::Missing("SENDER_EMAIL")),
            (Mail::Required, Some(sender)) => Some(Mailer::new(ses, sender, config.letters.from_name.as_deref())),
            (Mail::NotUsed, _) => None,
        };
        let store = Store::new(dynamodb, config.table_name.clone());
        Ok(App { config, store, mailer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{pem::PemObject, CertificateDer};

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_certificates() {
        let certs = CertificateDer::pem_slice_iter(AWS_ROOTS_PEM).collect::<Result<Vec<_>, _>>();
        assert_eq!(certs.map(|c| c.len()).ok(), Some(5));
    }

    #[test]
    fn a_ca_bundle_is_trusted_only_when_it_holds_certificates() {
        let dir = std::env::temp_dir().join(format!("credits-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.pem");
        std::fs::write(&good, AWS_ROOTS_PEM).expect("write");
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate").expect("write");
        let count =
            |store: aws_smithy_http_client::tls::TrustStore| format!("{store:?}").matches("CertificatePEM").count();
        assert_eq!(count(trust_store(None)), 1);
        assert_eq!(count(trust_store(Some(&good))), 2);
        assert_eq!(count(trust_store(Some(&bad))), 1);
        assert_eq!(count(trust_store(Some(&dir.join("missing.pem")))), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
