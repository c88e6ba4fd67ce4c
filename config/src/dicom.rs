//! The `[dicom]` section: how the storage SCP listens and what it accepts,
//! and the DICOM value rules (AE titles, UIDs) that the rest of the
//! configuration is checked against.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use telerad_dicom::uid::describe_char;

use serde::{Deserialize, Serialize};

/// The DICOM listener (storage SCP) and the limits of its associations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DicomConfig {
    /// The called AE title telerad answers to.
    pub ae_title: String,
    pub bind: IpAddr,
    pub port: u16,
    /// Associations served at once; further ones are rejected rather than
    /// queued, so that a burst of scanners cannot exhaust memory.
    pub max_associations: usize,
    /// The maximum PDU length we announce and accept, in bytes.
    pub max_pdu_length: u32,
    /// Seconds allowed for the A-ASSOCIATE-RQ after connecting, and for the
    /// release handshake (the ARTIM timer of PS3.8).
    pub artim_timeout_secs: u64,
    /// Seconds without any PDU after which an association is aborted.
    pub idle_timeout_secs: u64,
    /// Seconds that running associations are given to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// The largest data set accepted in one instance, in bytes: past it the
    /// instance is refused (A700) while it streams in, and a deflated data
    /// set may not inflate past it either.
    pub max_instance_bytes: u64,
    /// SOP Class UIDs accepted for storage; `None` means the built-in list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_sop_classes: Option<Vec<String>>,
    /// DICOM over TLS (PS3.15 Annex B) on this port, beside the plain one
    /// (2762 is the port registered for it).
    pub tls_port: Option<u16>,
    /// PEM certificate chain and key telerad presents on `tls_port`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the authorities whose client certificates are
    /// accepted; when set, a peer without one is refused in the handshake.
    pub tls_client_ca: Option<PathBuf>,
}

impl DicomConfig {
    /// The SOP classes stored, by DIMSE and STOW-RS alike: those configured,
    /// else the built-in list.
    pub fn storage_sop_classes(&self) -> Vec<String> {
        self.accepted_sop_classes
            .clone()
            .unwrap_or_else(telerad_dicom::sop_class::default_storage_sop_classes)
    }
}

impl Default for DicomConfig {
    fn default() -> DicomConfig {
        DicomConfig {
            ae_title: "TELERAD".to_owned(),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 11112,
            max_associations: 32,
            max_pdu_length: 131_072,
            artim_timeout_secs: 30,
            idle_timeout_secs: 300,
            shutdown_grace_secs: 10,
            max_instance_bytes: DEFAULT_MAX_INSTANCE_BYTES,
            accepted_sop_classes: None,
            tls_port: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

/// 2 GiB: a multi-frame enhanced CT or a long ultrasound loop is a few
/// hundred MB; past this it is a mistake or an attack.
pub const DEFAULT_MAX_INSTANCE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The longest AE title DICOM allows (PS3.5 6.2, VR AE).
const AE_TITLE_MAX_CHARS: usize = 16;

/// Why `title` cannot be an AE title, or `None` if it can.
///
/// PS3.5 6.2: at most 16 characters of the default character repertoire
/// without control characters or backslash; leading and trailing spaces are
/// not significant, so a title of spaces only names nothing.
pub(crate) fn ae_title_error(title: &str) -> Option<String> {
    let reason = if title.is_empty() {
        "it is empty; expected 1 to 16 characters".to_owned()
    } else if title.chars().count() > AE_TITLE_MAX_CHARS {
        format!(
            "at most {AE_TITLE_MAX_CHARS} characters, this one has {}",
            title.chars().count()
        )
    } else if title.trim_matches(' ').is_empty() {
        "it is only spaces; expected at least one letter or digit".to_owned()
    } else if title.contains('\\') {
        "it contains a backslash, which DICOM reserves as a value separator".to_owned()
    } else if let Some(c) = title.chars().find(|c| !(' '..='~').contains(c)) {
        format!(
            "it contains {}, but only printable ASCII characters are allowed",
            describe_char(c)
        )
    } else {
        return None;
    };
    Some(format!("{title:?} is not a DICOM AE title: {reason}"))
}

/// Why `uid` cannot be a DICOM UID, or `None` if it can: the rules of
/// PS3.5 §9.1 as `telerad_dicom::uid` holds them, exactly (a configured UID
/// has no excuse for a leading zero).
pub(crate) fn uid_error(uid: &str) -> Option<String> {
    telerad_dicom::uid::validate_conformant(uid)
        .err()
        .map(|e| format!("{uid:?} is not a DICOM UID: {}", e.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let dicom = DicomConfig::default();
        assert_eq!(dicom.ae_title, "TELERAD");
        assert_eq!(dicom.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(dicom.port, 11112);
        assert_eq!(dicom.max_associations, 32);
        assert_eq!(dicom.max_pdu_length, 131_072);
        assert_eq!(dicom.artim_timeout_secs, 30);
        assert_eq!(dicom.idle_timeout_secs, 300);
        assert_eq!(dicom.shutdown_grace_secs, 10);
        assert_eq!(dicom.max_instance_bytes, 2_147_483_648);
        assert_eq!(dicom.accepted_sop_classes, None);
    }

    #[test]
    fn good_ae_titles_pass() {
        for title in [
            "A",
            "CHV_CT",
            "STORESCU",
            "16CHARSXXXXXXXXX",
            " PADDED  ",
            "a-b.c@d",
        ] {
            assert_eq!(ae_title_error(title), None, "{title:?}");
        }
    }

    #[test]
    fn empty_ae_title_is_refused() {
        let message = ae_title_error("").unwrap_or_default();
        assert!(message.contains("it is empty"), "{message}");
    }

    #[test]
    fn seventeen_character_ae_title_is_refused_with_its_length() {
        let message = ae_title_error("17CHARSXXXXXXXXXX").unwrap_or_default();
        assert_eq!(
            message,
            "\"17CHARSXXXXXXXXXX\" is not a DICOM AE title: at most 16 characters, this one has 17"
        );
    }

    #[test]
    fn all_space_ae_title_is_refused() {
        let message = ae_title_error("    ").unwrap_or_default();
        assert!(message.contains("only spaces"), "{message}");
    }

    #[test]
    fn backslash_in_ae_title_is_refused() {
        let message = ae_title_error("CT\\MR").unwrap_or_default();
        assert!(message.contains("backslash"), "{message}");
    }

    #[test]
    fn control_and_non_ascii_characters_in_ae_title_are_refused() {
        let tab = ae_title_error("CT\tMR").unwrap_or_default();
        assert!(tab.contains("U+0009"), "{tab}");
        let accent = ae_title_error("RADIOLOGIÉ").unwrap_or_default();
        assert!(accent.contains("'É'"), "{accent}");
        assert!(accent.contains("printable ASCII"), "{accent}");
    }

    #[test]
    fn good_uids_pass() {
        for uid in [
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.840.10008.5.1.4.1.1.4",
            "0",
            "1.0.2",
            "2.25.329800735698586629295641978511506172918",
        ] {
            assert_eq!(uid_error(uid), None, "{uid:?}");
        }
    }

    #[test]
    fn bad_uids_are_refused_with_the_reason() {
        let cases = [
            ("", "it is empty"),
            (
                "1.2.840.10008.5.1.4.1.1.02",
                "component \"02\" has a leading zero",
            ),
            ("1.2..3", "empty component"),
            ("1.2.3.", "empty component"),
            (".1.2", "empty component"),
            ("1.2.840.x", "contains 'x'"),
            ("1.2.840 ", "U+0020"),
        ];
        for (uid, expected) in cases {
            let message = uid_error(uid).unwrap_or_default();
            assert!(message.contains(expected), "{uid:?}: {message}");
            assert!(message.contains("is not a DICOM UID"), "{uid:?}: {message}");
        }
    }

    #[test]
    fn uid_longer_than_64_characters_is_refused() {
        let sixty_four = format!("1.{}", "2".repeat(62));
        assert_eq!(uid_error(&sixty_four), None);
        let sixty_five = format!("1.{}", "2".repeat(63));
        let message = uid_error(&sixty_five).unwrap_or_default();
        assert!(message.contains("this one has 65"), "{message}");
    }
}
