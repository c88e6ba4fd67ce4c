//! From TOML text to a [`Config`], with every failure tied to a key path
//! and, where toml knows it, a line number.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_path_to_error::{Path, Segment};

use crate::Config;
use crate::dicom::DicomConfig;
use crate::escalation::EscalationConfig;
use crate::forwarding::ForwardingConfig;
use crate::http::HttpConfig;
use crate::problem::{ConfigError, Problem};
use crate::radiologist::Radiologist;
use crate::rota::RotaConfig;
use crate::rule::RuleConfig;
use crate::site::SiteEntry;
use crate::sla::SlaConfig;
use crate::storage::StorageConfig;
use crate::studies::StudiesConfig;

/// The file as written. Sections are read straight into their public
/// types; sites go through [`SiteEntry`] so that their networks and time
/// zone are checked with the other rules.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    dicom: DicomConfig,
    http: HttpConfig,
    storage: StorageConfig,
    studies: StudiesConfig,
    sites: Vec<SiteEntry>,
    radiologists: Vec<Radiologist>,
    rota: RotaConfig,
    rules: Vec<RuleConfig>,
    sla: SlaConfig,
    escalation: EscalationConfig,
    forwarding: ForwardingConfig,
}

/// The configuration in `text`, and per site the problems met converting
/// it (to be merged with the validation problems). Fails only when the text
/// is not TOML or not of the expected form.
pub(crate) fn parse(text: &str) -> Result<(Config, Vec<Vec<Problem>>), ConfigError> {
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|error| ConfigError::Parse(vec![syntax_problem(text, &error)]))?;
    let file: ConfigFile = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| ConfigError::Parse(vec![form_problem(text, &error)]))?;

    let (sites, conversion): (Vec<_>, Vec<_>) = file
        .sites
        .into_iter()
        .enumerate()
        .map(|(index, entry)| entry.into_site(index))
        .unzip();
    let config = Config {
        dicom: file.dicom,
        http: file.http,
        storage: file.storage,
        studies: file.studies,
        sites,
        radiologists: file.radiologists,
        rota: file.rota,
        rules: file.rules,
        sla: file.sla,
        escalation: file.escalation,
        forwarding: file.forwarding,
    };
    Ok((config, conversion))
}

/// The text is not TOML: there is no key path yet, only a position.
fn syntax_problem(text: &str, error: &toml::de::Error) -> Problem {
    let position = match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!(" at line {line}, column {column}")
        }
        None => String::new(),
    };
    Problem::new(
        "",
        format!("TOML syntax error{position}: {}", one_line(error.message())),
    )
}

/// The text is TOML but a key is unknown, missing or of the wrong type.
fn form_problem(text: &str, error: &serde_path_to_error::Error<toml::de::Error>) -> Problem {
    let inner = error.inner();
    let path = path_text(error.path());
    let mut message = plain_number_types(&one_line(inner.message()));
    if path == "sites" && message.contains("expected a sequence") {
        message.push_str("; write each site as a [[sites]] table, with double brackets");
    }
    // Only the line, never its text: it may hold a database password.
    if let Some(span) = inner.span() {
        let (line, _) = line_and_column(text, span.start);
        let _ = write!(message, " (line {line})");
    }
    Problem::new(path, message)
}

/// serde names the Rust type it expected ("expected u16"); say what that
/// means for someone writing TOML.
fn plain_number_types(message: &str) -> String {
    const TYPES: [(&str, &str); 4] = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
    ];
    for (rust, plain) in TYPES {
        if let Some(start) = message.strip_suffix(rust) {
            return format!("{start}{plain}");
        }
    }
    message.to_owned()
}

/// The path as TOML would write it: `sites[0].ae_titles[2]`, with keys
/// that are not bare TOML keys quoted.
fn path_text(path: &Path) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(text, "[{index}]");
            }
            Segment::Map { key } => {
                if !text.is_empty() {
                    text.push('.');
                }
                if is_bare_key(key) {
                    text.push_str(key);
                } else {
                    let _ = write!(text, "{key:?}");
                }
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    text
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.as_bytes().get(..offset).unwrap_or_default();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A problem is shown on one line of a list; toml's messages rarely span
/// several, but when they do, join them.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_problem(text: &str) -> Problem {
        match parse(text) {
            Err(ConfigError::Parse(problems)) => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                problems
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| unreachable!())
            }
            Err(other) => panic!("expected a parse error, got {other}"),
            Ok((config, _)) => panic!("expected a parse error, got {config:?}"),
        }
    }

    const SITE: &str = "[[sites]]\nname = \"ch-a\"\nae_titles = [\"CT\"]\ntime_zone = \"UTC\"\n";

    #[test]
    fn unknown_key_in_a_site_names_its_path_line_and_the_expected_keys() {
        let text = format!("{SITE}colour = \"blue\"\n");
        let problem = parse_problem(&text);
        assert_eq!(problem.path, "sites[0].colour");
        assert!(
            problem.message.contains("unknown field `colour`"),
            "{problem}"
        );
        assert!(problem.message.contains("`ae_titles`"), "{problem}");
        assert!(problem.message.contains("(line 5)"), "{problem}");
    }

    #[test]
    fn unknown_key_in_a_section_names_its_path() {
        let problem = parse_problem("[dicom]\nport = 104\naet = \"X\"\n");
        assert_eq!(problem.path, "dicom.aet");
        assert!(problem.message.contains("unknown field `aet`"), "{problem}");
        assert!(problem.message.contains("(line 3)"), "{problem}");
    }

    #[test]
    fn unknown_section_names_its_path() {
        let problem = parse_problem("[dimse]\nport = 104\n");
        assert_eq!(problem.path, "dimse");
        assert!(
            problem.message.contains("unknown field `dimse`"),
            "{problem}"
        );
    }

    #[test]
    fn wrong_type_names_its_path_and_line() {
        let problem = parse_problem("[dicom]\n\nport = \"104\"\n");
        assert_eq!(problem.path, "dicom.port");
        assert!(problem.message.contains("invalid type"), "{problem}");
        assert!(problem.message.contains("(line 3)"), "{problem}");
    }

    #[test]
    fn number_too_large_for_its_field_names_its_path() {
        let problem = parse_problem("[http]\nport = 70000\n");
        assert_eq!(problem.path, "http.port");
        assert_eq!(
            problem.message,
            "invalid value: integer `70000`, expected a whole number from 0 to 65535 (line 2)"
        );
    }

    #[test]
    fn negative_number_names_its_path() {
        let problem = parse_problem("[studies]\ndefault_quiet_period_secs = -5\n");
        assert_eq!(problem.path, "studies.default_quiet_period_secs");
        assert!(
            problem
                .message
                .contains("expected a whole number, 0 or more"),
            "{problem}"
        );
    }

    #[test]
    fn bad_ip_address_names_its_path() {
        let problem = parse_problem("[dicom]\nbind = \"0.0.0.256\"\n");
        assert_eq!(problem.path, "dicom.bind");
    }

    #[test]
    fn wrong_type_deep_in_a_site_names_the_element() {
        let text = "[[sites]]\nname = \"a\"\nae_titles = [\"CT\", 5]\ntime_zone = \"UTC\"\n";
        let problem = parse_problem(text);
        assert_eq!(problem.path, "sites[0].ae_titles[1]");
    }

    #[test]
    fn missing_required_site_key_names_the_site() {
        let problem = parse_problem("[[sites]]\nname = \"ch-a\"\nae_titles = [\"CT\"]\n");
        assert_eq!(problem.path, "sites[0]");
        assert!(
            problem.message.contains("missing field `time_zone`"),
            "{problem}"
        );
    }

    #[test]
    fn sites_as_a_single_table_is_a_type_error_at_sites() {
        let problem = parse_problem("[sites]\nname = \"ch-a\"\n");
        assert_eq!(problem.path, "sites");
        assert!(problem.message.contains("[[sites]]"), "{problem}");
    }

    #[test]
    fn syntax_error_gives_line_and_column() {
        let problem = parse_problem("[dicom]\nport = 104\nae_title = \"TELERAD\n");
        assert_eq!(problem.path, "");
        assert!(
            problem
                .message
                .starts_with("TOML syntax error at line 3, column"),
            "{problem}"
        );
    }

    #[test]
    fn duplicate_key_is_a_syntax_error() {
        let problem = parse_problem("[dicom]\nport = 104\nport = 105\n");
        assert!(problem.message.contains("line 3"), "{problem}");
    }

    #[test]
    fn quoted_keys_are_quoted_in_the_path() {
        let problem = parse_problem("[dicom]\n\"max pdu\" = 1\n");
        assert_eq!(problem.path, "dicom.\"max pdu\"");
    }

    #[test]
    fn line_and_column_count_characters_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 3), (2, 1));
        assert_eq!(line_and_column(text, 7), (2, 4));
        assert_eq!(line_and_column(text, 8), (3, 1));
        assert_eq!(line_and_column(text, 999), (3, 2));
    }
}
