//! Validated values of the contract: ids, idempotency keys, emails, amounts.
//!
//! Each `parse` returns a message fit for a 400 answer; the caller prefixes
//! the field's name.

use std::fmt;

/// Why a value was refused.
pub type Invalid = String;

fn check_chars(value: &str, what: &str, extra: &[u8]) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > 128 {
        return Err(format!("must be 1 to 128 characters, got {}", value.chars().count()));
    }
    match value.bytes().find(|b| !(b.is_ascii_alphanumeric() || extra.contains(b))) {
        None => Ok(()),
        Some(_) => Err(format!("may only contain {what}")),
    }
}

/// A user id: 1-128 characters of `A-Z a-z 0-9 . _ : @ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Validates a user id.
    pub fn parse(value: &str) -> Result<UserId, Invalid> {
        check_chars(value, "A-Z a-z 0-9 . _ : @ -", b"._:@-")?;
        Ok(UserId(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as it may appear in logs: ids that look like email addresses
    /// are masked.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An idempotency key (`payment_id`, `change_id`, `spend_id`): 1-128
/// characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// Validates a key.
    pub fn parse(value: &str) -> Result<Key, Invalid> {
        check_chars(value, "A-Z a-z 0-9 . _ : -", b"._:-")?;
        Ok(Key(value.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: at most 254 characters, exactly one `@`, something on
/// both sides, no spaces or control characters, and ASCII: SES sends only to
/// 7-bit ASCII addresses (a Unicode domain goes in its Punycode form,
/// `xn--...`), so any other address would be accepted and never reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates an address.
    pub fn parse(value: &str) -> Result<Email, Invalid> {
        if !value.is_ascii() {
            return Err("must be ASCII (a Unicode domain in its Punycode form, xn--...)".into());
        }
        if value.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        match value.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
                Ok(Email(value.to_owned()))
            }
            _ => Err("must have exactly one @ with text on both sides".into()),
        }
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with its plus-tag, gmail dots and case removed, to tell
    /// whether two addresses reach the same person.
    pub fn normalized(&self) -> String {
        crate::referral::normalize_email(&self.0)
    }
}

/// Masks an email-like value for logs: `jane.doe@example.com` → `j***@example.com`.
pub fn redact(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => value.to_owned(),
    }
}

/// Masks every email address in a free text, as [`redact`] masks one: an
/// SES error names the recipient it refused.
pub fn redact_emails(text: &str) -> String {
    // The local part runs back to a space or a delimiter (an address may hold
    // almost any character there); the domain is letters, digits, dots, hyphens.
    let local_char = |c: char| !c.is_whitespace() && !"<>()[],;:\"@".contains(c);
    let domain_char = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let (before, after) = (&rest[..at], &rest[at + 1..]);
        let local_start =
            before.len() - before.chars().rev().take_while(|c| local_char(*c)).map(char::len_utf8).sum::<usize>();
        let domain_end = after.chars().take_while(|c| domain_char(*c)).map(char::len_utf8).sum::<usize>();
        let (local, domain) = (&before[local_start..], &after[..domain_end]);
        out.push_str(&before[..local_start]);
        if local.is_empty() || domain.is_empty() {
            out.push_str(local);
            out.push('@');
            rest = after;
        } else {
            out.push_str(&redact(&format!("{local}@{domain}")));
            rest = &after[domain_end..];
        }
    }
    out.push_str(rest);
    out
}

/// A free-text label of at most `max` characters without control characters.
pub fn parse_label(value: &str, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// A whole number within `range`.
pub fn in_range(value: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, Invalid> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between {} and {}", range.start(), range.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_allow_the_contract_characters_only() {
        assert!(UserId::parse("user_1.a:b@c-d").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"a".repeat(128)).is_ok());
        assert!(UserId::parse(&"a".repeat(129)).is_err());
        for bad in ["a b", "a/b", "a#b", "ü", "a\u{0}b", "a\nb"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_do_not_allow_at_signs() {
        assert!(Key::parse("pay_123:x-y.z").is_ok());
        assert!(Key::parse("a@b").is_err());
    }

    #[test]
    fn emails_need_exactly_one_at_sign() {
        assert!(Email::parse("a@b").is_ok());
        assert!(Email::parse("a@xn--bcher-kva.example").is_ok());
        for bad in ["", "ab", "@b", "a@", "a@b@c", "a b@c", "a@b\u{7}", "josé@example.com", "a@bücher.example"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(242));
        assert_eq!(long.len(), 254);
        assert!(Email::parse(&long).is_ok());
        assert!(Email::parse(&format!("a{long}")).is_err());
    }

    #[test]
    fn redaction_hides_the_local_part() {
        assert_eq!(redact("jane.doe@example.com"), "j***@example.com");
        assert_eq!(redact("user-42"), "user-42");
    }

    #[test]
    fn every_address_in_a_text_is_masked() {
        let ses = "Email address is not verified. The following identities failed the check in region \
                   US-EAST-1: jane.doe@example.com, bob+x@mail.example.org.";
        assert_eq!(
            redact_emails(ses),
            "Email address is not verified. The following identities failed the check in region \
             US-EAST-1: j***@example.com, b***@mail.example.org."
        );
        assert_eq!(redact_emails("no address @ all, a@ or @b, é@é"), "no address @ all, a@ or @b, é@é");
        assert_eq!(redact_emails("<ann@x.io>"), "<a***@x.io>");
        assert_eq!(redact_emails("to o!brien#1@x.com: refused"), "to o***@x.com: refused");
    }

    #[test]
    fn labels_are_bounded_in_characters_not_bytes() {
        assert!(parse_label(&"é".repeat(64), 64).is_ok());
        assert!(parse_label(&"é".repeat(65), 64).is_err());
        assert!(parse_label("tab\there", 64).is_err());
    }
}
