//! What a function builds once per cold start and lends to every request.

use crate::config::{Config, ConfigError};
use crate::email::Mailer;
use crate::sdk::partition;
use crate::store::Store;

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
    /// credentials come from the AWS SDK's own variables, [`crate::sdk`]).
    /// A configuration error fails the cold start, logged and returned. Call
    /// it at a cold start, before other threads: see [`App::from_sdk`].
    pub fn from_env(mail: Mail) -> Result<App, ConfigError> {
        App::from_sdk(&crate::sdk::from_env()?, mail)
    }

    /// As [`App::from_env`], with the SDK configuration already read (a
    /// function that needs other AWS clients reads it once for all). The
    /// clients are built with their region's partition pinned
    /// ([`partition::build`]): call it at a cold start, before other threads.
    pub fn from_sdk(sdk: &crate::sdk::SdkConfig, mail: Mail) -> Result<App, ConfigError> {
        let app = match Config::from_env() {
            Ok(config) => {
                let dynamodb = partition::build(sdk, aws_sdk_dynamodb::Client::new);
                match mail {
                    Mail::Required => {
                        App::new(config, dynamodb, partition::build(sdk, aws_sdk_sesv2::Client::new), mail)
                    }
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
