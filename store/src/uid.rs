//! DICOM UIDs that are safe to use as file and directory names.
//!
//! A UID from the network becomes part of a path under the storage root, so
//! anything but the syntax of DICOM PS3.5 §9.1 (digits and dots, at most 64
//! characters) is refused before it reaches the file system. Leading zeros in
//! a component are tolerated: real modalities emit them and they are harmless
//! in a path.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{uid:?} is not a valid DICOM UID: {reason}")]
pub struct UidError {
    pub uid: String,
    pub reason: &'static str,
}

/// Strips the padding DICOM allows at the end of a UI value (PS3.5 §6.2: NUL),
/// and the spaces some implementations send instead.
pub fn trim_uid(raw: &str) -> &str {
    raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// Checks the UID syntax; the returned value is the trimmed UID.
pub fn validate_uid(raw: &str) -> Result<&str, UidError> {
    let uid = trim_uid(raw);
    let fail = |reason| {
        Err(UidError {
            uid: uid.chars().take(80).collect(),
            reason,
        })
    };
    if uid.is_empty() {
        return fail("it is empty");
    }
    if uid.len() > 64 {
        return fail("longer than 64 characters");
    }
    if !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return fail("only digits and dots are allowed");
    }
    if uid.split('.').any(str::is_empty) {
        return fail("a component is empty");
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_uids_and_trims_padding() {
        assert_eq!(
            validate_uid("1.2.840.10008.5.1.4.1.1.2\0"),
            Ok("1.2.840.10008.5.1.4.1.1.2")
        );
        assert_eq!(
            validate_uid("1.3.6.1.4.1.5962.1.2.0.977067309.6001.0"),
            Ok("1.3.6.1.4.1.5962.1.2.0.977067309.6001.0")
        );
    }

    #[test]
    fn refuses_paths_and_junk() {
        for bad in [
            "../../x",
            "1.2/3",
            "1..2",
            ".1.2",
            "1.2.",
            "",
            "1.2.a",
            "1.2\\3",
            "/etc/passwd",
        ] {
            assert!(validate_uid(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_uid(&"1".repeat(65)).is_err());
    }
}
