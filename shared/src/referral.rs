//! Referral codes and the email normalisation behind self-referral checks.

/// The code alphabet: digits and upper-case letters without the look-alikes
/// 0/O and 1/I/L. 31 symbols, 8 of them: 31^8 ≈ 8.5 × 10^11 codes.
pub const CODE_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Length of a referral code.
pub const CODE_LEN: usize = 8;

/// A fresh random referral code. Uniqueness is enforced by the store, which
/// claims the code in the signup's transaction; a collision draws another.
pub fn new_code() -> String {
    (0..CODE_LEN).map(|_| CODE_ALPHABET[fastrand::usize(..CODE_ALPHABET.len())] as char).collect()
}

/// A code as a caller typed it, upper-cased; `None` where it cannot be a code
/// this service issued (so no lookup is needed to call it invalid).
pub fn canonical_code(input: &str) -> Option<String> {
    let code = input.trim().to_ascii_uppercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// What became of a signup's referral code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    /// The referrer earned the signup bonus.
    Rewarded,
    /// No account has this code; the signup went ahead without a referrer.
    InvalidCode,
    /// The code's owner has the same normalised email; no bonus, no referrer.
    SelfReferral,
    /// The referrer's cap for its cycle is used: no bonus, referrer recorded.
    CapReached,
}

/// Lower-cases an address, drops a `+tag` from its local part and, for
/// gmail.com and googlemail.com (one mailbox), the dots too.
pub fn normalize_email(address: &str) -> String {
    let lower = address.to_lowercase();
    let Some((local, domain)) = lower.rsplit_once('@') else {
        return lower;
    };
    let local = local.split('+').next().unwrap_or(local);
    let domain = if domain == "googlemail.com" { "gmail.com" } else { domain };
    let local = if domain == "gmail.com" { local.replace('.', "") } else { local.to_owned() };
    format!("{local}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        for c in [b'0', b'O', b'1', b'I', b'L'] {
            assert!(!CODE_ALPHABET.contains(&c), "{}", c as char);
        }
        let mut sorted = CODE_ALPHABET.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 31);
    }

    #[test]
    fn new_codes_are_eight_symbols_of_the_alphabet_and_vary() {
        let codes: std::collections::HashSet<String> = (0..1_000).map(|_| new_code()).collect();
        assert!(codes.len() > 990);
        for code in &codes {
            assert_eq!(canonical_code(code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn typed_codes_are_upper_cased_and_checked() {
        assert_eq!(canonical_code(" abcd2345 ").as_deref(), Some("ABCD2345"));
        assert_eq!(canonical_code("ABCD234"), None);
        assert_eq!(canonical_code("ABCD2340"), None);
        assert_eq!(canonical_code("ABCDEFGI"), None);
    }

    #[test]
    fn emails_normalise_case_tags_and_gmail_dots() {
        assert_eq!(normalize_email("Jane.Doe+promo@Example.com"), "jane.doe@example.com");
        assert_eq!(normalize_email("Jane.Doe+promo@Gmail.com"), "janedoe@gmail.com");
        assert_eq!(normalize_email("j.a.n.e.doe@googlemail.com"), "janedoe@gmail.com");
        assert_eq!(normalize_email("a+b+c@x.org"), "a@x.org");
        assert_ne!(normalize_email("jane.doe@example.com"), normalize_email("janedoe@example.com"));
    }
}
