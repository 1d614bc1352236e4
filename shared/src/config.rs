//! Configuration, read once per cold start from the environment.

use crate::letters::{EmailSettings, Letters};
use crate::plans::{Catalogue, CatalogueError};

/// Where referral links point when `REFERRAL_BASE_URL` is not set.
pub const DEFAULT_REFERRAL_BASE_URL: &str = "https://app.example.com/signup";

/// Everything a function needs to know besides its AWS clients.
#[derive(Clone, Debug)]
pub struct Config {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// Verified SES identity emails are sent from (`SENDER_EMAIL`); only the
    /// functions that send email require it.
    pub sender_email: Option<String>,
    /// Base of referral links (`REFERRAL_BASE_URL`).
    pub referral_base_url: String,
    /// Plans and bonuses (`CREDITS_CONFIG` over the defaults).
    pub catalogue: Catalogue,
    /// The brand and email templates (`CREDITS_CONFIG`'s `email`, checked).
    pub letters: Letters,
    /// Local development only (`CREDITS_DEV_IDENTITY_HEADERS=1`, set by
    /// `make run`, never by template.yaml): lets the headers
    /// [`DEV_CALLER_HEADER`] and [`DEV_USER_HEADER`] stand in for API
    /// Gateway's IAM and JWT authorizer context, which a local HTTP server
    /// does not add.
    pub dev_identity_headers: bool,
}

/// Environment variable that enables [`Config::dev_identity_headers`].
pub const DEV_IDENTITY_ENV: &str = "CREDITS_DEV_IDENTITY_HEADERS";
/// With dev identity headers: any value stands in for an IAM-signed caller.
pub const DEV_CALLER_HEADER: &str = "x-dev-caller";
/// With dev identity headers: the signed-in user's id (the JWT `sub`).
pub const DEV_USER_HEADER: &str = "x-dev-user";

/// A configuration the function cannot start with.
#[derive(thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `CREDITS_CONFIG` does not describe a usable catalogue.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

/// Shown as its message: `main` returning this error prints `Error: {:?}`,
/// and the cold start's failure should read as a sentence, not a struct.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can supply their own.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let table_name = set("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?;
        // DynamoDB's rule for a table name, or a table's ARN (a stray space or
        // newline would otherwise fail every request, not the cold start).
        let arn = table_name.starts_with("arn:");
        let name_char = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b) || (arn && b":/".contains(&b));
        if !(3..=if arn { 1024 } else { 255 }).contains(&table_name.len()) || !table_name.bytes().all(name_char) {
            return Err(ConfigError::Invalid {
                name: "TABLE_NAME",
                reason: "must be a table name (3 to 255 characters of A-Z a-z 0-9 _ . -) or a table's ARN".into(),
            });
        }
        let sender_email = set("SENDER_EMAIL");
        if let Some(sender) = &sender_email {
            if crate::types::Email::parse(sender).is_err() {
                return Err(ConfigError::Invalid { name: "SENDER_EMAIL", reason: "not an email address".into() });
            }
        }
        let referral_base_url = set("REFERRAL_BASE_URL").unwrap_or_else(|| DEFAULT_REFERRAL_BASE_URL.to_owned());
        // The links append `?ref=CODE`, and the emails' links take its origin.
        let host = referral_base_url.strip_prefix("https://").or_else(|| referral_base_url.strip_prefix("http://"));
        if host.is_none_or(|rest| rest.is_empty() || rest.starts_with('/'))
            || referral_base_url.contains(['?', '#'])
            || referral_base_url.contains(char::is_whitespace)
        {
            return Err(ConfigError::Invalid {
                name: "REFERRAL_BASE_URL",
                reason: "must be an http:// or https:// URL with a host, and no query, fragment or spaces".into(),
            });
        }
        let (catalogue, email) = match set("CREDITS_CONFIG") {
            Some(json) => Catalogue::from_document(&json)?,
            None => (Catalogue::default(), EmailSettings::default()),
        };
        let letters = Letters::from_settings(email, origin(&referral_base_url))
            .map_err(|e| CatalogueError(format!("email.{e}")))?;
        let dev_identity_headers = match set(DEV_IDENTITY_ENV).as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(_) => {
                return Err(ConfigError::Invalid { name: DEV_IDENTITY_ENV, reason: "must be 1 or 0".into() });
            }
        };
        Ok(Config { table_name, sender_email, referral_base_url, catalogue, letters, dev_identity_headers })
    }
}

/// The scheme and host of a URL: `https://app.example.com/signup` → `https://app.example.com`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..].find('/').map_or(url, |slash| &url[..after_scheme + slash])
}

#[cfg(test)]
impl Config {
    /// The defaults on table `credits-unit`, for unit tests of the rules.
    pub fn for_tests() -> Config {
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "credits-unit".to_owned())).expect("defaults")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn missing_table_name_is_named() {
        let err = config(&[]).expect_err("no table");
        assert_eq!(err.to_string(), "TABLE_NAME is not set");
    }

    #[test]
    fn a_table_name_or_a_referral_url_that_every_request_would_trip_on_fails_the_cold_start() {
        for table in ["credits ", "credits\n", "cr", "my table", "t\u{e9}ble"] {
            let err = config(&[("TABLE_NAME", table)]).expect_err("bad table name");
            assert!(err.to_string().contains("TABLE_NAME"), "{table:?}: {err}");
        }
        for table in ["credits-prod", "Credits_v2.main", "arn:aws:dynamodb:eu-west-1:123456789012:table/credits"] {
            assert!(config(&[("TABLE_NAME", table)]).is_ok(), "{table}");
        }
        for url in [
            "https://",
            "https:///signup",
            "ftp://x.example",
            "https://x.example/s?a=1",
            "https://x.example/#s",
            "https://x .example",
        ] {
            let err = config(&[("TABLE_NAME", "credits"), ("REFERRAL_BASE_URL", url)]).expect_err("bad url");
            assert!(err.to_string().contains("REFERRAL_BASE_URL"), "{url}: {err}");
        }
        for url in ["https://acme.example/join", "http://localhost:3000/signup", "https://acme.example"] {
            assert!(config(&[("TABLE_NAME", "credits"), ("REFERRAL_BASE_URL", url)]).is_ok(), "{url}");
        }
    }

    #[test]
    fn defaults_apply_where_nothing_is_set() {
        let c = config(&[("TABLE_NAME", "credits")]).expect("valid");
        assert_eq!(c.referral_base_url, DEFAULT_REFERRAL_BASE_URL);
        assert_eq!(c.sender_email, None);
        assert_eq!(c.catalogue, Catalogue::default());
    }

    #[test]
    fn a_bad_credits_config_fails_with_its_reason() {
        let err = config(&[("TABLE_NAME", "credits"), ("CREDITS_CONFIG", r#"{"plans": 3}"#)]).expect_err("bad");
        assert!(err.to_string().starts_with("invalid CREDITS_CONFIG: plans: invalid type"), "{err}");
    }

    #[test]
    fn dev_identity_headers_are_off_unless_asked_for() {
        assert!(!config(&[("TABLE_NAME", "credits")]).expect("valid").dev_identity_headers);
        assert!(config(&[("TABLE_NAME", "credits"), (DEV_IDENTITY_ENV, "1")]).expect("valid").dev_identity_headers);
        assert!(config(&[("TABLE_NAME", "credits"), (DEV_IDENTITY_ENV, "yes")]).is_err());
    }

    #[test]
    fn email_templates_are_checked_at_cold_start_naming_the_problem() {
        let with = |json: &str| config(&[("TABLE_NAME", "credits"), ("CREDITS_CONFIG", json)]);
        let err =
            with(r#"{"email": {"templates": {"low_balance": {"subject": "{{nope}}", "text": "t", "html": "h"}}}}"#)
                .expect_err("unknown placeholder");
        assert!(
            err.to_string().starts_with(
                "invalid CREDITS_CONFIG: email.templates.low_balance.subject: unknown placeholder {{nope}}"
            ),
            "{err}"
        );
        let err = with(r#"{"email": {"templates": {"welcome": {"subject": "s", "text": "t", "html": "h"}}}}"#)
            .expect_err("kind");
        assert!(err.to_string().contains("unknown kind \"welcome\""), "{err}");
        let ok = with(r#"{"email": {"product_name": "Acme"}}"#).expect("valid");
        assert_eq!(
            (ok.letters.product_name.as_str(), ok.letters.dashboard_url.as_str()),
            ("Acme", "https://app.example.com")
        );
    }

    #[test]
    fn origins_keep_scheme_and_host() {
        assert_eq!(origin("https://app.example.com/signup"), "https://app.example.com");
        assert_eq!(origin("http://localhost:3000"), "http://localhost:3000");
    }

    #[test]
    fn a_bad_sender_is_refused() {
        let err = config(&[("TABLE_NAME", "credits"), ("SENDER_EMAIL", "nobody")]).expect_err("bad");
        assert!(err.to_string().contains("SENDER_EMAIL"), "{err}");
    }
}
