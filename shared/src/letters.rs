//! What every email says: the deployer's brand (product name, sender name,
//! links) and one template per kind, with `{{name}}` placeholders.
//!
//! The default texts are templates in the same language, so a deployer's
//! template and the default go through one renderer. Templates are checked
//! once, at cold start: an unknown kind or placeholder fails it, naming
//! what is wrong. Rendering escapes every value in the HTML part (the
//! template's own markup is kept); the plain-text part takes values as
//! they are. Hand-written rather than a templating crate: placeholders are
//! all the language needs, and this is about 60 lines where an engine adds
//! a dependency, and its code to every function, for loops and filters no
//! template here uses.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The emails the service sends; each has its own template and id scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailKind {
    /// To a referrer, for a rewarded signup.
    ReferralSignupBonus,
    /// To a referrer, for a referred user's upgrade.
    ReferralUpgradeBonus,
    /// To a buyer.
    PurchaseReceipt,
    /// To a user whose balance fell below a threshold.
    LowBalance,
}

impl EmailKind {
    /// Every kind.
    pub const ALL: [EmailKind; 4] = [
        EmailKind::ReferralSignupBonus,
        EmailKind::ReferralUpgradeBonus,
        EmailKind::PurchaseReceipt,
        EmailKind::LowBalance,
    ];

    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::ReferralSignupBonus => "referral_signup_bonus",
            EmailKind::ReferralUpgradeBonus => "referral_upgrade_bonus",
            EmailKind::PurchaseReceipt => "purchase_receipt",
            EmailKind::LowBalance => "low_balance",
        }
    }

    /// The kind with this stored name.
    pub fn from_name(name: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Placeholders every kind offers.
pub const COMMON: &[&str] = &["product_name", "dashboard_url", "buy_url", "user_id", "balance"];

/// The placeholders a kind offers besides [`COMMON`].
pub fn placeholders(kind: EmailKind) -> &'static [&'static str] {
    match kind {
        EmailKind::ReferralSignupBonus => &["bonus", "debt_repaid", "bonus_note"],
        EmailKind::ReferralUpgradeBonus => &["bonus", "plan", "debt_repaid", "bonus_note"],
        EmailKind::PurchaseReceipt => {
            &["payment_id", "amount", "credits", "plan", "rate_per_dollar", "debt_repaid", "repayment_note"]
        }
        EmailKind::LowBalance => &[
            "threshold",
            "plan",
            "cycle_end",
            "buy_option",
            "refer_link",
            "signup_bonus",
            "refer_option",
            "upgrade_option",
        ],
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(String),
}

/// Text with `{{name}}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    /// Parses `text`, accepting only placeholders named in `known`.
    pub fn parse(text: &str, known: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| "a {{ without its }}".to_owned())?;
            let name = after[..close].trim();
            if !known.contains(&name) {
                return Err(format!("unknown placeholder {{{{{name}}}}}; this kind offers {}", known.join(", ")));
            }
            parts.push(Part::Value(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    /// Fills the placeholders, HTML-escaping the values when `html`.
    pub fn render(&self, values: &BTreeMap<&str, String>, html: bool) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(name) => {
                    let value = values.get(name.as_str()).map_or("", String::as_str);
                    if html {
                        out.push_str(&escape(value));
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
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

/// One kind's email: subject, plain text, HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    subject: Template,
    text: Template,
    html: Template,
}

/// `CREDITS_CONFIG`'s `email` object, as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    product_name: Option<String>,
    from_name: Option<String>,
    dashboard_url: Option<String>,
    buy_url: Option<String>,
    #[serde(default)]
    templates: BTreeMap<String, TemplateSettings>,
}

/// One kind's template, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    subject: String,
    text: String,
    html: String,
}

/// The brand and every kind's letter, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letters {
    /// The product's name, in every email.
    pub product_name: String,
    /// The display name emails come from (`"Acme" <sender>`), if any.
    pub from_name: Option<String>,
    /// Where users see their balance.
    pub dashboard_url: String,
    /// Where users buy credits.
    pub buy_url: String,
    letters: BTreeMap<&'static str, Letter>,
}

/// The default paragraphs of each kind (text), from which the default
/// templates are made.
fn default_paragraphs(kind: EmailKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        EmailKind::ReferralSignupBonus => (
            "You earned {{bonus}} bonus credits",
            &[
                "Someone you invited just signed up with your referral link.",
                "{{bonus_note}} Your balance is now {{balance}} credits.",
            ],
        ),
        EmailKind::ReferralUpgradeBonus => (
            "You earned {{bonus}} bonus credits",
            &[
                "Someone you invited upgraded to the {{plan}} plan.",
                "{{bonus_note}} Your balance is now {{balance}} credits.",
            ],
        ),
        EmailKind::PurchaseReceipt => (
            "Your receipt: {{credits}} credits",
            &[
                "Thank you for your purchase.",
                "Payment {{payment_id}}: {{amount}} USD for {{credits}} flexible credits ({{plan}} plan, {{rate_per_dollar}} credits per dollar).",
                "{{repayment_note}}",
                "Your balance is now {{balance}} credits.",
            ],
        ),
        EmailKind::LowBalance => (
            "You have {{balance}} credits left",
            &[
                "Your {{product_name}} balance is down to {{balance}} credits.",
                "How to get more credits:",
                "{{buy_option}}",
                "{{refer_option}}",
                "{{upgrade_option}}",
                "Your balance: {{dashboard_url}}",
            ],
        ),
    }
}

fn default_letter(kind: EmailKind) -> (String, String, String) {
    let (subject, paragraphs) = default_paragraphs(kind);
    let text = format!("{}\n\n— The {{{{product_name}}}} team\n", paragraphs.join("\n\n"));
    let html_paragraphs: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">{html_paragraphs}<p>— The {{{{product_name}}}} team</p></body></html>"
    );
    (subject.to_owned(), text, html)
}

impl Letters {
    /// The defaults, with the brand's names and links: product "credits",
    /// both links at `origin` (the referral base URL's scheme and host).
    pub fn defaults(origin: &str) -> Letters {
        Letters::from_settings(EmailSettings::default(), origin).unwrap_or_else(|_| Letters {
            product_name: "credits".into(),
            from_name: None,
            dashboard_url: origin.to_owned(),
            buy_url: origin.to_owned(),
            letters: BTreeMap::new(),
        })
    }

    /// The brand and letters of `settings` over the defaults; an error names
    /// the kind, part and problem (`templates.low_balance.html: unknown placeholder {{x}}`).
    pub fn from_settings(settings: EmailSettings, origin: &str) -> Result<Letters, String> {
        let kinds = EmailKind::ALL;
        if let Some(unknown) = settings.templates.keys().find(|k| EmailKind::from_name(k).is_none()) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(format!("templates: unknown kind {unknown:?}; the kinds are {}", names.join(", ")));
        }
        for (name, value) in [("product_name", &settings.product_name), ("from_name", &settings.from_name)] {
            if value
                .as_ref()
                .is_some_and(|v| v.trim().is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control))
            {
                return Err(format!("{name}: must be 1 to 100 characters without control characters"));
            }
        }
        for (name, value) in [("dashboard_url", &settings.dashboard_url), ("buy_url", &settings.buy_url)] {
            if value.as_ref().is_some_and(|v| !(v.starts_with("https://") || v.starts_with("http://"))) {
                return Err(format!("{name}: must start with https:// (or http://)"));
            }
        }
        let mut letters = BTreeMap::new();
        for kind in kinds {
            let mut known: Vec<&str> = COMMON.to_vec();
            known.extend_from_slice(placeholders(kind));
            let (subject, text, html) = match settings.templates.get(kind.as_str()) {
                Some(t) => (t.subject.clone(), t.text.clone(), t.html.clone()),
                None => default_letter(kind),
            };
            // A subject is one header line: a line break in it would end the header.
            if subject.chars().any(char::is_control) {
                return Err(format!(
                    "templates.{}.subject: must be one line, without control characters",
                    kind.as_str()
                ));
            }
            let part = |name: &str, source: &str| {
                Template::parse(source, &known).map_err(|e| format!("templates.{}.{name}: {e}", kind.as_str()))
            };
            letters.insert(
                kind.as_str(),
                Letter { subject: part("subject", &subject)?, text: part("text", &text)?, html: part("html", &html)? },
            );
        }
        let dashboard_url = settings.dashboard_url.unwrap_or_else(|| origin.to_owned());
        Ok(Letters {
            product_name: settings.product_name.unwrap_or_else(|| "credits".to_owned()),
            from_name: settings.from_name,
            buy_url: settings.buy_url.unwrap_or_else(|| dashboard_url.clone()),
            dashboard_url,
            letters,
        })
    }

    /// Writes one email of `kind`: subject, text, HTML. `values` are the
    /// kind's own placeholders; the brand's are filled in here.
    pub fn write(
        &self,
        kind: EmailKind,
        user_id: &str,
        values: Vec<(&'static str, String)>,
    ) -> (String, String, String) {
        let mut all: BTreeMap<&str, String> = BTreeMap::from([
            ("product_name", self.product_name.clone()),
            ("dashboard_url", self.dashboard_url.clone()),
            ("buy_url", self.buy_url.clone()),
            ("user_id", user_id.to_owned()),
        ]);
        all.extend(values);
        match self.letters.get(kind.as_str()) {
            Some(letter) => {
                (letter.subject.render(&all, false), letter.text.render(&all, false), letter.html.render(&all, true))
            }
            None => (String::new(), String::new(), String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn placeholders_are_filled_and_html_values_escaped() {
        let t = Template::parse("<b>Hi {{ user_id }}</b>, {{balance}}!", &["user_id", "balance"]).expect("valid");
        let filled: BTreeMap<&str, String> =
            BTreeMap::from([("user_id", "<script>alert(1)</script>".to_owned()), ("balance", "5 & 6".to_owned())]);
        assert_eq!(t.render(&filled, true), "<b>Hi &lt;script&gt;alert(1)&lt;/script&gt;</b>, 5 &amp; 6!");
        assert_eq!(t.render(&filled, false), "<b>Hi <script>alert(1)</script></b>, 5 & 6!");
    }

    #[test]
    fn unknown_placeholders_and_unclosed_braces_are_refused_by_name() {
        let err = Template::parse("Hello {{nme}}", &["name"]).expect_err("unknown");
        assert!(err.contains("{{nme}}") && err.contains("name"), "{err}");
        assert!(Template::parse("Hello {{name", &["name"]).is_err());
    }

    #[test]
    fn a_deployers_template_and_brand_replace_the_defaults() {
        let settings: EmailSettings = serde_json::from_value(serde_json::json!({
            "product_name": "Acme <Video>", "from_name": "Acme", "dashboard_url": "https://acme.example/app",
            "templates": {"purchase_receipt": {"subject": "{{product_name}}: {{credits}} credits",
                "text": "Thanks {{user_id}}", "html": "<h1>{{product_name}}</h1><a href=\"{{buy_url}}\">buy</a>"}}
        }))
        .expect("settings");
        let letters = Letters::from_settings(settings, "https://app.example.com").expect("valid");
        assert_eq!(letters.buy_url, "https://acme.example/app", "buy_url defaults to the dashboard");
        let (subject, text, html) = letters.write(EmailKind::PurchaseReceipt, "u-1", values(&[("credits", "3,000")]));
        assert_eq!(subject, "Acme <Video>: 3,000 credits");
        assert_eq!(text, "Thanks u-1");
        assert_eq!(html, "<h1>Acme &lt;Video&gt;</h1><a href=\"https://acme.example/app\">buy</a>");
        let (_, text, _) =
            letters.write(EmailKind::ReferralSignupBonus, "u-1", values(&[("bonus", "250"), ("balance", "1,250")]));
        assert!(text.ends_with("— The Acme <Video> team\n"), "{text}");
    }

    #[test]
    fn bad_settings_fail_naming_the_kind_and_part() {
        let bad = |v: serde_json::Value| {
            Letters::from_settings(serde_json::from_value(v).expect("shape"), "https://a.example").expect_err("bad")
        };
        let t = |subject: &str| serde_json::json!({"subject": subject, "text": "t", "html": "h"});
        assert!(bad(serde_json::json!({"templates": {"newsletter": t("s")}})).contains("unknown kind \"newsletter\""));
        let err = bad(serde_json::json!({"templates": {"low_balance": t("{{credits}}")}}));
        assert!(err.starts_with("templates.low_balance.subject: unknown placeholder {{credits}}"), "{err}");
        assert!(bad(serde_json::json!({"buy_url": "ftp://x"})).contains("buy_url"));
        assert!(bad(serde_json::json!({"product_name": " "})).contains("product_name"));
        let err = bad(serde_json::json!({"templates": {"low_balance": t("Low\n{{balance}}")}}));
        assert!(err.starts_with("templates.low_balance.subject: must be one line"), "{err}");
        // The length limit counts characters, not bytes.
        let ok = |v: serde_json::Value| {
            Letters::from_settings(serde_json::from_value(v).expect("shape"), "https://a.example")
        };
        assert!(ok(serde_json::json!({"from_name": "é".repeat(100)})).is_ok());
        assert!(bad(serde_json::json!({"from_name": "é".repeat(101)})).contains("from_name"));
    }

    #[test]
    fn the_defaults_keep_todays_wording() {
        let letters = Letters::defaults("https://app.example.com");
        let (subject, text, html) = letters.write(
            EmailKind::ReferralUpgradeBonus,
            "u",
            values(&[("bonus", "1,500"), ("plan", "pro"), ("balance", "2,750")]),
        );
        assert_eq!(subject, "You earned 1,500 bonus credits");
        assert!(text.starts_with("Someone you invited upgraded to the pro plan.\n\n"), "{text}");
        assert!(text.ends_with("— The credits team\n"));
        assert!(html.contains("<p>Someone you invited upgraded to the pro plan.</p>"), "{html}");
    }
}
