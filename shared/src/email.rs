//! Emails: what each says, the outbox item that carries it, and the SES v2
//! adapter that sends one. When they are sent, and what happens after, is
//! orchestration: see `ops::outbox`.

use crate::balance::Balance;
use crate::cycle::Time;
/// Which email: defined beside the letters, whose templates are per kind.
pub use crate::letters::EmailKind;
use crate::letters::Letters;
use crate::options::CreditOptions;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::Duration;

/// How long an email waits after its commit before the scheduled sender may
/// pick it up: the request's own send normally marks it sent well before.
pub const FIRST_SEND_GRACE: Duration = Duration::minutes(2);

/// Attempts after which an email is given up on (`failed`): with the backoff
/// below, the last comes 26.5 hours after the first, so a day's outage or
/// misconfiguration of SES loses nothing.
pub const MAX_ATTEMPTS: u32 = 13;

/// Delay before the next attempt after `attempts` failed ones: 1, 2, 4, ...
/// minutes, at most 6 hours.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 1_i64 << attempts.saturating_sub(1).min(9);
    Duration::minutes(minutes.min(360))
}

/// Where an outbox email stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailStatus {
    /// Waiting for its (next) attempt, on the schedule index.
    Pending,
    /// SES accepted it.
    Sent,
    /// Given up on after its last attempt.
    Failed,
}

impl EmailStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }
}

/// The id of the email a request causes: stable, so a retried transaction
/// writes the same email once, and free of personal data (user ids may be
/// email addresses, and email ids reach the logs).
pub fn email_id(kind: EmailKind, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", kind.as_str())
}

/// An email in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEmail {
    /// Unique and derived from the request that caused it, so a retried
    /// transaction writes the same email, once.
    pub id: String,
    /// Its template.
    pub kind: EmailKind,
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// When it was queued.
    pub created_at: Time,
    /// When the scheduled sender may try it.
    pub next_attempt_at: Time,
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// `1050` cents → `$10.50`.
pub fn dollars(cents: i64) -> String {
    format!("${}.{:02}", thousands(cents / 100), (cents % 100).abs())
}

/// An email of `kind` to `to`, written from the letters with `values`,
/// pending from `at`.
fn write(
    letters: &Letters,
    kind: EmailKind,
    id_parts: &[&str],
    user_id: &str,
    to: &str,
    values: Vec<(&'static str, String)>,
    at: Time,
) -> OutboxEmail {
    let (subject, text, html) = letters.write(kind, user_id, values);
    OutboxEmail {
        id: email_id(kind, id_parts),
        kind,
        to: to.to_owned(),
        subject,
        text,
        html,
        created_at: at,
        next_attempt_at: at + FIRST_SEND_GRACE,
    }
}

/// Where a bonus went: to the bonus bucket, or (like every credit) first to
/// repay a debt.
fn bonus_note(bonus: i64, debt_repaid: i64) -> String {
    let owed = "what you owed after an earlier refund or correction";
    match bonus - debt_repaid {
        _ if debt_repaid <= 0 => format!("We added {} credits to your bonus balance.", thousands(bonus)),
        added if added > 0 => format!(
            "We added {} credits to your bonus balance; the other {} repaid {owed}.",
            thousands(added),
            thousands(debt_repaid)
        ),
        _ => format!("All {} credits repaid {owed}.", thousands(bonus)),
    }
}

/// A referral bonus paid: what both bonus emails say.
pub struct BonusPaid<'a> {
    /// The referrer, who gets the email.
    pub referrer: &'a str,
    /// The referred user whose signup or upgrade paid it.
    pub referred: &'a str,
    /// The bonus paid.
    pub bonus: i64,
    /// The part of it that repaid a debt rather than reaching the bonus bucket.
    pub debt_repaid: i64,
    /// The referrer's balance after the bonus.
    pub balance: Balance,
}

impl BonusPaid<'_> {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bonus", thousands(self.bonus)),
            ("debt_repaid", thousands(self.debt_repaid)),
            ("bonus_note", bonus_note(self.bonus, self.debt_repaid)),
            ("balance", thousands(self.balance.total())),
        ]
    }
}

/// The referrer's email for a rewarded signup.
pub fn referral_signup_bonus(letters: &Letters, paid: &BonusPaid<'_>, to: &str, at: Time) -> OutboxEmail {
    let ids = [paid.referred];
    write(letters, EmailKind::ReferralSignupBonus, &ids, paid.referrer, to, paid.values(), at)
}

/// The referrer's email for a referred user's upgrade (to `plan`, by the
/// plan change `change_id`).
pub fn referral_upgrade_bonus(
    letters: &Letters,
    paid: &BonusPaid<'_>,
    change_id: &str,
    plan: &str,
    to: &str,
    at: Time,
) -> OutboxEmail {
    let mut values = paid.values();
    values.push(("plan", plan.to_owned()));
    write(letters, EmailKind::ReferralUpgradeBonus, &[paid.referred, change_id], paid.referrer, to, values, at)
}

/// What a purchase receipt shows.
pub struct Receipt<'a> {
    /// The buyer.
    pub user_id: &'a str,
    /// The payment.
    pub payment_id: &'a str,
    /// Amount paid.
    pub amount_cents: i64,
    /// Credits bought.
    pub credits: i64,
    /// The rate applied.
    pub rate_per_dollar: i64,
    /// The buyer's plan.
    pub plan: &'a str,
    /// Credits that went to repay a debt rather than to the bucket.
    pub debt_repaid: i64,
    /// The balance after the purchase.
    pub balance: Balance,
}

/// The buyer's receipt.
pub fn purchase_receipt(letters: &Letters, r: &Receipt<'_>, to: &str, at: Time) -> OutboxEmail {
    let repayment_note = if r.debt_repaid > 0 {
        format!("{} of them repaid what you owed after an earlier refund or correction.", thousands(r.debt_repaid))
    } else {
        "Flexible credits never expire.".to_owned()
    };
    let values = vec![
        ("payment_id", r.payment_id.to_owned()),
        ("amount", dollars(r.amount_cents)),
        ("credits", thousands(r.credits)),
        ("plan", r.plan.to_owned()),
        ("rate_per_dollar", thousands(r.rate_per_dollar)),
        ("debt_repaid", thousands(r.debt_repaid)),
        ("repayment_note", repayment_note),
        ("balance", thousands(r.balance.total())),
    ];
    write(letters, EmailKind::PurchaseReceipt, &[r.user_id, r.payment_id], r.user_id, to, values, at)
}

/// The low-balance email: the balance, the threshold it fell below, and how
/// to get more credits, personalised as `GET /v1/me/credit-options` would
/// answer (`options` is computed on the balance after the change).
pub fn low_balance(
    letters: &Letters,
    user_id: &str,
    to: &str,
    threshold: i64,
    options: &CreditOptions,
    at: Time,
) -> OutboxEmail {
    let buy = &options.buy;
    let buy_option = match buy.rate_per_dollar {
        Some(rate) => format!("Buy flexible credits at {} credits per dollar: {}", thousands(rate), letters.buy_url),
        None if buy.plans_that_can_buy.is_empty() => "Credits cannot be bought on any plan.".to_owned(),
        None => format!("Flexible credits can be bought on the {} plan.", or_list(&buy.plans_that_can_buy)),
    };
    let refer = &options.refer;
    let refer_option = if refer.rewarded_signups_left_this_cycle > 0 {
        format!(
            "Invite friends with your link {}: you earn {} credits for each one who signs up ({} left this cycle).",
            refer.link,
            thousands(refer.signup_bonus),
            refer.rewarded_signups_left_this_cycle
        )
    } else {
        format!("Invite friends with your link {}: new signups are rewarded again from your next cycle.", refer.link)
    };
    let upgrade_option = match options.best_upgrade() {
        Some(u) if u.credits_now > 0 => format!(
            "Upgrade to {}: it adds {} credits right away and {} every month.",
            u.plan,
            thousands(u.credits_now),
            thousands(u.monthly_allowance)
        ),
        Some(u) => format!(
            "Upgrade to {}: {} credits every month from your next cycle.",
            u.plan,
            thousands(u.monthly_allowance)
        ),
        None => format!("You are on the {} plan, the highest there is.", options.plan.name),
    };
    let cycle_end = crate::cycle::format_time(options.plan.cycle_end);
    let values = vec![
        ("threshold", thousands(threshold)),
        ("plan", options.plan.name.clone()),
        ("cycle_end", cycle_end.clone()),
        ("buy_option", buy_option),
        ("refer_link", refer.link.clone()),
        ("signup_bonus", thousands(refer.signup_bonus)),
        ("refer_option", refer_option),
        ("upgrade_option", upgrade_option),
        ("balance", thousands(options.balance.total())),
    ];
    let threshold = threshold.to_string();
    write(letters, EmailKind::LowBalance, &[user_id, &cycle_end, &threshold], user_id, to, values, at)
}

/// `["a"]` → `a`; `["a", "b"]` → `a or b`; `["a", "b", "c"]` → `a, b or c`.
fn or_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Why SES did not take an email.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// SES asks us to slow down: not the email's fault.
    #[error("SES throttled: {0}")]
    Throttled(String),
    /// SES says it sends nothing for now, whatever the email: the account's
    /// sending is paused or suspended, or its MAIL FROM domain unverified.
    /// Not the email's fault either, and it may last longer than an email's
    /// attempts.
    #[error("SES unavailable: {0}")]
    Unavailable(String),
    /// Anything else: this email refused, the service misconfigured, or
    /// SES failing or out of reach (a server error, no answer in time), when
    /// it may have accepted the email: each try counts, so that a copy sent
    /// again is sent a bounded number of times.
    #[error("SES failed: {0}")]
    Failed(String),
}

/// Sends emails from the configured sender through SES v2.
#[derive(Clone, Debug)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    /// The `From` header: the sender, with the brand's display name if any.
    from: String,
}

/// `"Display Name" <address>`, the name quoted (and MIME-encoded where it
/// is not ASCII, as SES requires: in encoded words of at most 75 characters
/// each, RFC 2047's limit, split between characters); the bare address
/// without a name.
pub fn from_header(address: &str, name: Option<&str>) -> String {
    match name {
        None => address.to_owned(),
        Some(name) if name.is_ascii() => {
            format!("\"{}\" <{address}>", name.replace('\\', "\\\\").replace('"', "\\\""))
        }
        Some(name) => {
            // 45 bytes encode to 60 characters, 72 with `=?UTF-8?B?` and `?=`.
            const WORD_BYTES: usize = 45;
            let mut words = Vec::new();
            let mut word = String::new();
            for c in name.chars() {
                if word.len() + c.len_utf8() > WORD_BYTES {
                    words.push(format!("=?UTF-8?B?{}?=", base64(word.as_bytes())));
                    word.clear();
                }
                word.push(c);
            }
            words.push(format!("=?UTF-8?B?{}?=", base64(word.as_bytes())));
            format!("{} <{address}>", words.join(" "))
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Mailer {
    /// A mailer sending from `sender`, shown as `from_name` where given.
    pub fn new(client: aws_sdk_sesv2::Client, sender: &str, from_name: Option<&str>) -> Mailer {
        Mailer { client, from: from_header(sender, from_name) }
    }

    /// Sends one outbox email; returns SES's message id.
    pub async fn send(&self, email: &OutboxEmail) -> Result<String, SendError> {
        let content = |text: &str| {
            Content::builder().data(text).charset("UTF-8").build().map_err(|e| SendError::Failed(e.to_string()))
        };
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(Body::builder().text(content(&email.text)?).html(content(&email.html)?).build())
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(err) => {
                // SES's refusals name the recipient: masked, as in every log line.
                let text = crate::types::redact_emails(&DisplayErrorContext(&err).to_string());
                Err(send_error(&err, text))
            }
        }
    }
}

/// Which [`SendError`] an SES failure is, carrying `text`.
fn send_error(err: &SdkError<SendEmailError, HttpResponse>, text: String) -> SendError {
    match err {
        SdkError::ServiceError(e) => match e.err() {
            SendEmailError::TooManyRequestsException(_) | SendEmailError::LimitExceededException(_) => {
                SendError::Throttled(text)
            }
            SendEmailError::SendingPausedException(_)
            | SendEmailError::AccountSuspendedException(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_) => SendError::Unavailable(text),
            other if matches!(other.code(), Some("Throttling" | "ThrottlingException")) => SendError::Throttled(text),
            _ => SendError::Failed(text),
        },
        _ => SendError::Failed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ses_saying_it_sends_nothing_costs_no_attempt_and_its_failures_do() {
        use aws_sdk_sesv2::error::ErrorMetadata;
        use aws_sdk_sesv2::types::error::{
            AccountSuspendedException, MailFromDomainNotVerifiedException, MessageRejected, SendingPausedException,
            TooManyRequestsException,
        };
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let kind = |err: SdkError<SendEmailError, HttpResponse>| match send_error(&err, String::new()) {
            SendError::Throttled(_) => "throttled",
            SendError::Unavailable(_) => "unavailable",
            SendError::Failed(_) => "failed",
        };
        let service = |e: SendEmailError, status: u16| {
            let raw = HttpResponse::new(status.try_into().expect("status"), aws_smithy_types::body::SdkBody::empty());
            kind(SdkError::service_error(e, raw))
        };
        let generic = |code: &str| SendEmailError::generic(ErrorMetadata::builder().code(code).build());
        let cases = [
            (
                service(SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().build()), 429),
                "throttled",
            ),
            (service(generic("Throttling"), 400), "throttled"),
            (
                service(SendEmailError::SendingPausedException(SendingPausedException::builder().build()), 400),
                "unavailable",
            ),
            (
                service(SendEmailError::AccountSuspendedException(AccountSuspendedException::builder().build()), 400),
                "unavailable",
            ),
            (
                service(
                    SendEmailError::MailFromDomainNotVerifiedException(
                        MailFromDomainNotVerifiedException::builder().build(),
                    ),
                    400,
                ),
                "unavailable",
            ),
            // The email's own, the deployment's, or SES failing when it may
            // have taken the email: attempts count.
            (service(generic("InternalFailure"), 500), "failed"),
            (service(generic("ServiceUnavailable"), 503), "failed"),
            (kind(SdkError::timeout_error("no answer in time")), "failed"),
            (kind(SdkError::dispatch_failure(ConnectorError::io("connection reset".into()))), "failed"),
            (service(SendEmailError::MessageRejected(MessageRejected::builder().build()), 400), "failed"),
            (service(generic("AccessDeniedException"), 403), "failed"),
            (kind(SdkError::construction_failure("bad request")), "failed"),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn a_bonus_note_says_what_of_the_bonus_repaid_a_debt() {
        assert_eq!(bonus_note(250, 0), "We added 250 credits to your bonus balance.");
        assert_eq!(
            bonus_note(1_000, 400),
            "We added 600 credits to your bonus balance; the other 400 repaid what you owed after an earlier refund or correction."
        );
        assert_eq!(bonus_note(250, 250), "All 250 credits repaid what you owed after an earlier refund or correction.");
    }

    #[test]
    fn numbers_are_written_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(dollars(1_050), "$10.50");
        assert_eq!(dollars(1_000_000), "$10,000.00");
    }

    #[test]
    fn email_ids_are_stable_distinct_and_carry_no_address() {
        let id = email_id(EmailKind::PurchaseReceipt, &["jane@example.com", "pay-1"]);
        assert_eq!(id, email_id(EmailKind::PurchaseReceipt, &["jane@example.com", "pay-1"]));
        assert_ne!(id, email_id(EmailKind::PurchaseReceipt, &["jane@example.com", "pay-2"]));
        assert_ne!(id, email_id(EmailKind::ReferralUpgradeBonus, &["jane@example.com", "pay-1"]));
        assert!(id.starts_with("purchase_receipt-") && !id.contains("jane"), "{id}");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(EmailKind::from_name("newsletter"), None);
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let minutes: Vec<i64> = (1..=11).map(|a| backoff(a).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
    }

    #[test]
    fn the_last_attempt_comes_more_than_a_day_after_the_first() {
        let waited: i64 = (1..MAX_ATTEMPTS).map(|a| backoff(a).num_minutes()).sum();
        assert_eq!(waited, 1591, "26.5 hours");
    }

    #[test]
    fn html_bodies_escape_what_they_quote() {
        let at = crate::cycle::now();
        let r = Receipt {
            user_id: "u",
            payment_id: "p<1>",
            amount_cents: 1_000,
            credits: 3_000,
            rate_per_dollar: 300,
            plan: "pro",
            debt_repaid: 0,
            balance: Balance { plan: 5_000, bonus: 0, flexible: 3_000, ..Balance::default() },
        };
        let email = purchase_receipt(&Letters::defaults("https://app.example.com"), &r, "a@b.c", at);
        assert!(email.html.contains("p&lt;1&gt;"));
        assert!(email.text.contains("p<1>"));
        assert!(email.text.contains("$10.00 USD for 3,000 flexible credits"));
        assert!(email.text.contains("8,000 credits"));
        assert!(email.text.contains("Flexible credits never expire."));
        assert_eq!(email.next_attempt_at - email.created_at, FIRST_SEND_GRACE);
    }

    #[test]
    fn the_from_header_quotes_or_encodes_the_brand_name() {
        assert_eq!(from_header("c@example.com", None), "c@example.com");
        assert_eq!(from_header("c@example.com", Some("Acme \"Video\"")), "\"Acme \\\"Video\\\"\" <c@example.com>");
        assert_eq!(from_header("c@example.com", Some("Café")), "=?UTF-8?B?Q2Fmw6k=?= <c@example.com>");
        // Long names: encoded words of at most 75 characters, split between
        // characters (the second has one across a 45-byte boundary), that
        // decode to the name.
        for name in ["Éditions Numériques — «Vidéo» ✨ ".repeat(3), "é".repeat(40)] {
            encoded_words_decode_to(&name);
        }
    }

    fn encoded_words_decode_to(name: &str) {
        let header = from_header("c@example.com", Some(name));
        let (words, address) = header.rsplit_once(' ').expect("words, then the address");
        assert_eq!(address, "<c@example.com>");
        let decode = |text: &str| -> Vec<u8> {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let sextets: Vec<u32> = text
                .bytes()
                .filter(|b| *b != b'=')
                .map(|b| ALPHABET.iter().position(|a| *a == b).expect("base64") as u32)
                .collect();
            let mut out = Vec::new();
            for group in sextets.chunks(4) {
                let n = group.iter().enumerate().fold(0, |n, (i, s)| n | (s << (18 - 6 * i)));
                out.extend((0..group.len() - 1).map(|i| (n >> (16 - 8 * i)) as u8));
            }
            out
        };
        let mut decoded = String::new();
        let words: Vec<&str> = words.split(' ').collect();
        assert!(words.len() > 1, "{header}");
        for word in words {
            assert!(word.len() <= 75, "{} characters: {word}", word.len());
            let text = word.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
            decoded.push_str(std::str::from_utf8(&decode(text)).expect("each word whole characters"));
        }
        assert_eq!(decoded, name);
    }
}
