//! Emails: what each says, the outbox item that carries it, and the SES v2
//! adapter that sends one. When they are sent, and what happens after, is
//! orchestration: see `ops::outbox`.

use crate::balance::Balance;
use crate::cycle::Time;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::Duration;

/// How long an email waits after its commit before the scheduled sender may
/// pick it up: the request's own send normally marks it sent well before.
pub const FIRST_SEND_GRACE: Duration = Duration::minutes(2);

/// Attempts after which an email is given up on (`failed`).
pub const MAX_ATTEMPTS: u32 = 8;

/// Delay before the next attempt after `attempts` failed ones: 1, 2, 4, ...
/// minutes, at most 6 hours.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 1_i64 << attempts.saturating_sub(1).min(9);
    Duration::minutes(minutes.min(360))
}

/// The emails the service sends; each has its own template and id scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailKind {
    /// To a referrer, for a rewarded signup.
    ReferralSignupBonus,
    /// To a referrer, for a referred user's upgrade.
    ReferralUpgradeBonus,
    /// To a buyer.
    PurchaseReceipt,
}

impl EmailKind {
    const ALL: [EmailKind; 3] =
        [EmailKind::ReferralSignupBonus, EmailKind::ReferralUpgradeBonus, EmailKind::PurchaseReceipt];

    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::ReferralSignupBonus => "referral_signup_bonus",
            EmailKind::ReferralUpgradeBonus => "referral_upgrade_bonus",
            EmailKind::PurchaseReceipt => "purchase_receipt",
        }
    }

    /// The kind with this stored name.
    pub fn from_name(name: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
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

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

fn compose(id: String, kind: EmailKind, to: &str, subject: String, lines: &[String], at: Time) -> OutboxEmail {
    let text = format!("{}\n\n— The credits team\n", lines.join("\n\n"));
    let paragraphs: String = lines.iter().map(|l| format!("<p>{}</p>", escape(l))).collect();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">{paragraphs}<p>— The credits team</p></body></html>"
    );
    OutboxEmail {
        id,
        kind,
        to: to.to_owned(),
        subject,
        text,
        html,
        created_at: at,
        next_attempt_at: at + FIRST_SEND_GRACE,
    }
}

/// The referrer's email for a rewarded signup.
pub fn referral_signup_bonus(new_user: &str, to: &str, bonus: i64, balance: Balance, at: Time) -> OutboxEmail {
    compose(
        email_id(EmailKind::ReferralSignupBonus, &[new_user]),
        EmailKind::ReferralSignupBonus,
        to,
        format!("You earned {} bonus credits", thousands(bonus)),
        &[
            "Someone you invited just signed up with your referral link.".to_owned(),
            format!(
                "We added {} credits to your bonus balance. Your balance is now {} credits.",
                thousands(bonus),
                thousands(balance.total())
            ),
        ],
        at,
    )
}

/// The referrer's email for a referred user's upgrade.
pub fn referral_upgrade_bonus(
    change: (&str, &str),
    to: &str,
    bonus: i64,
    plan: &str,
    balance: Balance,
    at: Time,
) -> OutboxEmail {
    let (user_id, change_id) = change;
    compose(
        email_id(EmailKind::ReferralUpgradeBonus, &[user_id, change_id]),
        EmailKind::ReferralUpgradeBonus,
        to,
        format!("You earned {} bonus credits", thousands(bonus)),
        &[
            format!("Someone you invited upgraded to the {plan} plan."),
            format!(
                "We added {} credits to your bonus balance. Your balance is now {} credits.",
                thousands(bonus),
                thousands(balance.total())
            ),
        ],
        at,
    )
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
pub fn purchase_receipt(r: &Receipt<'_>, to: &str, at: Time) -> OutboxEmail {
    compose(
        email_id(EmailKind::PurchaseReceipt, &[r.user_id, r.payment_id]),
        EmailKind::PurchaseReceipt,
        to,
        format!("Your receipt: {} credits", thousands(r.credits)),
        &[
            "Thank you for your purchase.".to_owned(),
            format!(
                "Payment {}: {} USD for {} flexible credits ({} plan, {} credits per dollar).",
                r.payment_id,
                dollars(r.amount_cents),
                thousands(r.credits),
                r.plan,
                r.rate_per_dollar
            ),
            if r.debt_repaid > 0 {
                format!(
                    "{} of them repaid what you owed after an earlier refund or correction.",
                    thousands(r.debt_repaid)
                )
            } else {
                "Flexible credits never expire.".to_owned()
            },
            format!("Your balance is now {} credits.", thousands(r.balance.total())),
        ],
        at,
    )
}

/// Why SES did not take an email.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// SES asks us to slow down: not the email's fault.
    #[error("SES throttled: {0}")]
    Throttled(String),
    /// Anything else: refused, unreachable, misconfigured.
    #[error("SES failed: {0}")]
    Failed(String),
}

/// Sends emails from the configured sender through SES v2.
#[derive(Clone, Debug)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
}

impl Mailer {
    /// A mailer sending as `sender`.
    pub fn new(client: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Mailer {
        Mailer { client, sender: sender.into() }
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
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(err) => {
                let throttled = match &err {
                    SdkError::ServiceError(e) => {
                        matches!(
                            e.err(),
                            SendEmailError::TooManyRequestsException(_) | SendEmailError::LimitExceededException(_)
                        ) || matches!(e.err().code(), Some("Throttling" | "ThrottlingException"))
                    }
                    _ => false,
                };
                let text = DisplayErrorContext(&err).to_string();
                Err(if throttled { SendError::Throttled(text) } else { SendError::Failed(text) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let email = purchase_receipt(&r, "a@b.c", at);
        assert!(email.html.contains("p&lt;1&gt;"));
        assert!(email.text.contains("p<1>"));
        assert!(email.text.contains("$10.00 USD for 3,000 flexible credits"));
        assert!(email.text.contains("8,000 credits"));
        assert_eq!(email.next_attempt_at - email.created_at, FIRST_SEND_GRACE);
    }
}
