//! What an account is made of: usernames in one normal form, bounded profile fields.
//!
//! A username is normalised once — surrounding space trimmed, Unicode NFKC, case-folded — at
//! register, at login and at lookup, so `"alice "`, `" alice"`, `"ALICE"` and `"ＡＬＩＣＥ"`
//! (full width) are one account, one rate-limit bucket and one row on every database.

use unicode_normalization::UnicodeNormalization;

use crate::Error;

/// The longest email address (RFC 5321's path limit).
pub(crate) const MAX_EMAIL: usize = 254;

/// The longest group description, in characters.
pub(crate) const MAX_DESCRIPTION: usize = 1024;

/// The longest avatar (a URL or a short reference), in bytes.
pub(crate) const MAX_AVATAR: usize = 512;

/// The normal form of a username: trimmed, NFKC, lower case; 3 to 32 of `[a-z0-9_.-]`.
pub(crate) fn username(raw: &str) -> Result<String, Error> {
    let normal: String = raw.trim().nfkc().flat_map(char::to_lowercase).collect();
    let ok = (3..=32).contains(&normal.len())
        && normal
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(normal)
    } else {
        Err(Error::InvalidArgument(
            "username must be 3 to 32 letters, digits, '_', '.' or '-'".to_owned(),
        ))
    }
}

/// An email address, trimmed: empty (none), or `local@domain` with a dotted domain, at most
/// 254 bytes, no spaces or control characters.
pub(crate) fn email(raw: &str) -> Result<String, Error> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(String::new());
    }
    let bad = || Error::InvalidArgument("email is not a valid address".to_owned());
    if email.len() > MAX_EMAIL || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || !domain.contains('.')
        || !labels_ok
    {
        return Err(bad());
    }
    Ok(email.to_owned())
}

/// A free-text field of at most `max` characters (after trimming).
pub(crate) fn bounded(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(Error::InvalidArgument(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_case_and_width_are_one_username() {
        for raw in [
            "alice",
            "alice ",
            " alice",
            "ALICE",
            "\u{ff21}lice",
            " AlIcE\t",
        ] {
            assert_eq!(username(raw).unwrap(), "alice", "{raw:?}");
        }
        for bad in ["al", "a lice", "alice!", "", "ålice", &"a".repeat(33)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(email(" ann@example.com ").unwrap(), "ann@example.com");
        assert_eq!(email("").unwrap(), "");
        for bad in [
            "not-an-email",
            "a@b",
            "@example.com",
            "ann@",
            "a b@example.com",
            "ann@exa mple.com",
            "ann@-example.com",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bounded_fields() {
        assert_eq!(bounded("description", " hi ", 10).unwrap(), "hi");
        assert!(bounded("description", &"x".repeat(11), 10).is_err());
    }
}
