//! DICOM UIDs (PS3.5 §9.1): components of digits separated by dots, none
//! empty, 64 characters at most, no leading zero in a component other than
//! "0".
//!
//! Two levels, one set of rules. What telerad configures or generates must
//! conform exactly ([`validate_conformant`]). What arrives from the network
//! ([`validate_uid`]) is trimmed of its padding and may have leading zeros,
//! which real modalities emit and which are harmless; everything else is
//! refused before a UID can become part of a path.

use thiserror::Error;

/// The longest UID (PS3.5 §9.1).
pub const MAX_UID_LEN: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{uid:?} is not a valid DICOM UID: {reason}")]
pub struct UidError {
    /// The UID as given (cut to 80 characters).
    pub uid: String,
    pub reason: String,
}

/// Strips the padding DICOM allows at the end of a UI value (PS3.5 §6.2:
/// NUL), and the spaces some implementations send instead.
pub fn trim_uid(raw: &str) -> &str {
    raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// A received UID, trimmed; leading zeros in a component are tolerated.
pub fn validate_uid(raw: &str) -> Result<&str, UidError> {
    let uid = trim_uid(raw);
    check(uid, false).map(|()| uid)
}

/// A UID exactly as PS3.5 §9.1 defines it, untrimmed.
pub fn validate_conformant(uid: &str) -> Result<&str, UidError> {
    check(uid, true).map(|()| uid)
}

/// A new UID under the 2.25 arc (PS3.5 §B.2): a random 128-bit number in
/// decimal, unique without a registered root.
pub fn new_uid() -> String {
    format!("2.25.{}", rand::random::<u128>())
}

/// Whether `uid` conforms exactly.
pub fn is_valid_uid(uid: &str) -> bool {
    validate_conformant(uid).is_ok()
}

fn check(uid: &str, no_leading_zeros: bool) -> Result<(), UidError> {
    let reason = if uid.is_empty() {
        "it is empty".to_owned()
    } else if uid.chars().count() > MAX_UID_LEN {
        format!(
            "at most {MAX_UID_LEN} characters, this one has {}",
            uid.chars().count()
        )
    } else if let Some(c) = uid.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        format!(
            "it contains {}, but only digits and dots are allowed",
            describe_char(c)
        )
    } else if uid.split('.').any(str::is_empty) {
        "it has an empty component (a leading, trailing or doubled dot)".to_owned()
    } else if let Some(component) = uid
        .split('.')
        .find(|c| no_leading_zeros && c.len() > 1 && c.starts_with('0'))
    {
        format!("component {component:?} has a leading zero")
    } else {
        return Ok(());
    };
    Err(UidError {
        uid: uid.chars().take(80).collect(),
        reason,
    })
}

/// A character as someone reading it would recognise it, including the
/// invisible ones.
pub fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the control or space character U+{:04X}", u32::from(c))
    } else {
        format!("{c:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uids_conform_and_differ() {
        let (a, b) = (new_uid(), new_uid());
        assert!(is_valid_uid(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn real_uids_pass_both_levels() {
        for uid in [
            "1.2.840.10008.5.1.4.1.1.2",
            "0",
            "1.0.2",
            "2.25.329800735698586629295641978511506172918",
        ] {
            assert_eq!(validate_conformant(uid), Ok(uid));
            assert_eq!(validate_uid(uid), Ok(uid));
        }
        assert_eq!(
            validate_uid("1.2.840.10008.5.1.4.1.1.2\0"),
            Ok("1.2.840.10008.5.1.4.1.1.2")
        );
    }

    #[test]
    fn leading_zeros_are_received_but_not_conformant() {
        let uid = "1.3.6.1.4.1.5962.1.2.0.977067309.06001.0";
        assert_eq!(validate_uid(uid), Ok(uid));
        let error = validate_conformant(uid).expect_err("a leading zero");
        assert!(
            error.reason.contains("\"06001\" has a leading zero"),
            "{error}"
        );
    }

    #[test]
    fn junk_and_paths_are_refused_with_the_reason() {
        for (uid, expected) in [
            ("", "it is empty"),
            ("1.2..3", "empty component"),
            ("1.2.3.", "empty component"),
            (".1.2", "empty component"),
            ("1.2.840.x", "contains 'x'"),
            ("1.2\t3", "U+0009"),
            ("../../x", "contains '/'"),
            ("1.2\\3", "contains '\\\\'"),
        ] {
            let error = validate_uid(uid).expect_err(uid);
            assert!(error.reason.contains(expected), "{uid:?}: {error}");
        }
        let sixty_four = format!("1.{}", "2".repeat(62));
        assert!(validate_conformant(&sixty_four).is_ok());
        let sixty_five = format!("1.{}", "2".repeat(63));
        let error = validate_uid(&sixty_five).expect_err("too long");
        assert!(error.reason.contains("this one has 65"), "{error}");
    }
}
