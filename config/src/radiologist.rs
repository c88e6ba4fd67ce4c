//! `[[radiologists]]`: who reads studies, in which subspecialties, for
//! which sites, and where their images go.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::dicom::ae_title_error;
use crate::problem::Problem;
use crate::unread::{self, Unread};

/// The subspecialties a radiologist, a shift or a routing rule may name.
/// A closed list, so that "nuero" in one place is an error rather than a
/// subspecialty nobody on the rota has.
pub const SUBSPECIALTIES: [&str; 9] = [
    "neuro",
    "body",
    "chest",
    "msk",
    "paediatric",
    "breast",
    "cardiac",
    "interventional",
    "general",
];

/// A radiologist who can be on the rota or in the escalation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Radiologist {
    /// Short identifier used by the rota, the rules, logs and the database.
    pub id: String,
    /// Full name, as shown to colleagues and hospitals.
    pub name: String,
    /// What they read, from [`SUBSPECIALTIES`].
    pub subspecialties: Vec<String>,
    /// Sites whose studies they are licensed (credentialed) to read.
    pub sites: Vec<String>,
    /// Studies assigned and not yet reported above which no more are given.
    pub max_open_studies: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where their studies are forwarded; `None` when they read from the
    /// web viewer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workstation: Option<Workstation>,
    /// A paging or SMS gateway that wakes them for a study that needs them
    /// now (assignment, escalation, a critical result not acknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::Webhook>,
}

impl Radiologist {
    pub fn has_subspecialty(&self, subspecialty: &str) -> bool {
        self.subspecialties.iter().any(|s| s == subspecialty)
    }

    /// Whether they may read studies from `site`.
    pub fn is_licensed_for(&self, site: &str) -> bool {
        self.sites.iter().any(|s| s == site)
    }
}

/// A reading workstation's DICOM storage SCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workstation {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
    /// DICOM TLS to this workstation, trusting the certificates this
    /// authority (PEM) signed for `host`; telerad presents `[dicom]
    /// tls_cert` if the workstation asks for a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Lossless compression on the way: worth it for a workstation behind
    /// a slow link (a home 20 to 50 ms and 50 Mbit/s away), not on a LAN
    /// where the encoding costs more than the bytes it saves.
    #[serde(default)]
    pub compression: TransferCompression,
    /// C-STOREs that may be outstanding at once on one association, where
    /// the workstation negotiates an asynchronous operations window (DICOM
    /// PS3.7 D.3.3.3): on a long link each image then no longer waits a
    /// round trip for the one before. 1 proposes no window (for the rare
    /// receiver that cannot take the proposal).
    #[serde(default = "default_operations_window")]
    pub operations_window: u16,
}

/// The largest operations window a workstation may be given.
pub const MAX_OPERATIONS_WINDOW: u16 = 64;

fn default_operations_window() -> u16 {
    16
}

/// How images travel to a workstation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferCompression {
    /// As stored (re-encoded only into a little-endian syntax the
    /// workstation accepts).
    #[default]
    None,
    /// JPEG-LS Lossless (DICOM PS3.5 A.4.3) proposed first for uncompressed
    /// images, the stored syntax next; images come out bit for bit equal.
    JpegLs,
}

impl Config {
    /// The radiologist whose id is `id`.
    pub fn radiologist(&self, id: &str) -> Option<&Radiologist> {
        self.radiologists.iter().find(|r| r.id == id)
    }
}

pub(crate) fn is_subspecialty(name: &str) -> bool {
    SUBSPECIALTIES.contains(&name)
}

/// The message for a subspecialty not in [`SUBSPECIALTIES`].
pub(crate) fn unknown_subspecialty(name: &str) -> String {
    format!(
        "{name:?} is not a known subspecialty: expected one of {}",
        SUBSPECIALTIES.join(", ")
    )
}

/// The message for a radiologist id that no `[[radiologists]]` has, or
/// `None` if one has it, or if one that could not be read may have it.
pub(crate) fn unknown_radiologist(config: &Config, unread: &Unread, id: &str) -> Option<String> {
    if config.radiologist(id).is_some() || unread.may_be_radiologist(id) {
        return None;
    }
    let known: Vec<&str> = config.radiologists.iter().map(|r| r.id.as_str()).collect();
    Some(if known.is_empty() {
        format!("no radiologist has id {id:?}: there is no [[radiologists]] table")
    } else {
        format!(
            "no radiologist has id {id:?}: expected one of {}",
            known.join(", ")
        )
    })
}

/// The problems of `[[radiologists]]`.
pub(crate) fn problems(config: &Config, unread: &Unread) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem::new(path, message));
    // Where each id was first seen, to point a second use back at it.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (read, radiologist) in config.radiologists.iter().enumerate() {
        let i = unread.index(unread::RADIOLOGISTS, read);
        let path = format!("radiologists[{i}]");
        if let Some(message) = id_error(&radiologist.id) {
            report(format!("{path}.id"), message);
        } else if let Some(first) = ids.get(radiologist.id.as_str()) {
            report(
                format!("{path}.id"),
                format!(
                    "id {:?} is already used by radiologists[{first}]: ids must be unique",
                    radiologist.id
                ),
            );
        } else {
            ids.insert(&radiologist.id, i);
        }
        if radiologist.name.trim().is_empty() {
            report(
                format!("{path}.name"),
                "must not be empty: give the name shown to colleagues, such as \
                 \"Dr Claire Martin\""
                    .to_owned(),
            );
        }

        if radiologist.subspecialties.is_empty() {
            report(
                format!("{path}.subspecialties"),
                format!(
                    "must list at least one subspecialty, from {}",
                    SUBSPECIALTIES.join(", ")
                ),
            );
        }
        for (s, subspecialty) in radiologist.subspecialties.iter().enumerate() {
            let item = format!("{path}.subspecialties[{s}]");
            if !is_subspecialty(subspecialty) {
                report(item, unknown_subspecialty(subspecialty));
            } else if let Some(first) = radiologist.subspecialties[..s]
                .iter()
                .position(|other| other == subspecialty)
            {
                report(
                    item,
                    format!("{subspecialty:?} is already listed as {path}.subspecialties[{first}]"),
                );
            }
        }

        if radiologist.sites.is_empty() {
            report(
                format!("{path}.sites"),
                "must list at least one site: a radiologist licensed for no site could \
                 never be given a study"
                    .to_owned(),
            );
        }
        for (s, site) in radiologist.sites.iter().enumerate() {
            let item = format!("{path}.sites[{s}]");
            if let Some(message) = unknown_site(config, unread, site) {
                report(item, message);
            } else if let Some(first) = radiologist.sites[..s].iter().position(|o| o == site) {
                report(
                    item,
                    format!("{site:?} is already listed as {path}.sites[{first}]"),
                );
            }
        }

        if radiologist.max_open_studies == 0 {
            report(
                format!("{path}.max_open_studies"),
                "must be at least 1: a radiologist who may hold no study would never \
                 be given one"
                    .to_owned(),
            );
        }
        if radiologist
            .phone
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            report(
                format!("{path}.phone"),
                "is empty: give a number or remove the key".to_owned(),
            );
        }
        if let Some(email) = &radiologist.email
            && !looks_like_email(email)
        {
            report(
                format!("{path}.email"),
                format!("{email:?} is not an email address: expected name@domain"),
            );
        }
        if let Some(workstation) = &radiologist.workstation {
            if let Some(message) = ae_title_error(&workstation.ae_title) {
                report(format!("{path}.workstation.ae_title"), message);
            }
            if workstation.host.trim().is_empty() {
                report(
                    format!("{path}.workstation.host"),
                    "must not be empty: give the workstation's address or host name".to_owned(),
                );
            }
            if !(1..=MAX_OPERATIONS_WINDOW).contains(&workstation.operations_window) {
                report(
                    format!("{path}.workstation.operations_window"),
                    format!(
                        "{} is out of range: 1 (no window) to {MAX_OPERATIONS_WINDOW}",
                        workstation.operations_window
                    ),
                );
            }
            if workstation.port == 0 {
                report(
                    format!("{path}.workstation.port"),
                    "must not be 0: give the TCP port of the workstation's DICOM \
                     receiver (often 104 or 11112)"
                        .to_owned(),
                );
            }
        }
    }
    problems
}

/// The message for a site name that no `[[sites]]` has, or `None`, also
/// when a site that could not be read may have it.
pub(crate) fn unknown_site(config: &Config, unread: &Unread, name: &str) -> Option<String> {
    if config.sites.iter().any(|site| site.name == name) || unread.may_name_site(name) {
        return None;
    }
    let known: Vec<&str> = config.sites.iter().map(|s| s.name.as_str()).collect();
    Some(format!(
        "no site is named {name:?}: expected one of {}",
        if known.is_empty() {
            "the [[sites]] names (there are none)".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

/// Same alphabet as site names: ids end up in URLs, logs and file names.
fn id_error(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("must not be empty: give a short id such as \"dr-martin\"".to_owned());
    }
    let bad = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))?;
    Some(format!(
        "{id:?} is not a valid radiologist id: it contains {bad:?}, but only lowercase \
         letters a-z, digits, '-' and '_' are allowed"
    ))
}

/// Only what catches a phone number or a name typed in the wrong key; the
/// mail server is the judge of the rest.
pub(crate) fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// What the validation tests of the routing sections share: a valid base
/// of two sites and three radiologists, and assertions on problem paths.
#[cfg(test)]
pub(crate) mod check {
    use crate::{Config, ConfigError, Problem};

    pub(crate) const BASE: &str = r#"
[[sites]]
name = "ch-a"
ae_titles = ["A_CT"]
time_zone = "Europe/Paris"

[[sites]]
name = "ch-b"
ae_titles = ["B_CT"]
time_zone = "Europe/Paris"

[[radiologists]]
id = "dr-a"
name = "Dr A"
subspecialties = ["neuro", "general"]
sites = ["ch-a", "ch-b"]
max_open_studies = 8

[[radiologists]]
id = "dr-b"
name = "Dr B"
subspecialties = ["chest"]
sites = ["ch-a"]
max_open_studies = 4

[[radiologists]]
id = "dr-c"
name = "Dr C"
subspecialties = ["general"]
sites = ["ch-b"]
max_open_studies = 1
"#;

    /// The validation problems of `BASE` followed by `more`.
    pub(crate) fn problems(more: &str) -> Vec<Problem> {
        match Config::from_toml_str(&format!("{BASE}\n{more}")) {
            Err(ConfigError::Invalid(problems)) => problems,
            Err(other) => panic!("expected validation problems, got {other}"),
            Ok(_) => Vec::new(),
        }
    }

    /// The single problem of form of `BASE` followed by `more`: a missing
    /// key, a value of the wrong type, or an unknown key (which is listed
    /// with the validation problems).
    pub(crate) fn parse_problem(more: &str) -> Problem {
        match Config::from_toml_str(&format!("{BASE}\n{more}")) {
            Err(ConfigError::Parse(problems) | ConfigError::Invalid(problems))
                if problems.len() == 1 =>
            {
                problems[0].clone()
            }
            other => panic!("expected one problem, got {other:?}"),
        }
    }

    pub(crate) fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    /// Asserts that `BASE` followed by `more` has exactly one problem, at
    /// `path`, whose message contains `expected`.
    #[track_caller]
    pub(crate) fn assert_one(more: &str, path: &str, expected: &str) {
        let problems = problems(more);
        assert_eq!(paths(&problems), [path], "{problems:#?}");
        assert!(
            problems[0].message.contains(expected),
            "expected {expected:?} in {}",
            problems[0]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::check::{BASE, assert_one, parse_problem, paths, problems};
    use super::*;

    /// `BASE` with the first radiologist's table replaced by `table`.
    fn first(table: &str) -> String {
        format!("[[radiologists]]\n{table}\n")
    }

    #[test]
    fn base_is_valid_and_has_no_routing_section() {
        assert_eq!(problems(""), vec![]);
        let config = Config::from_toml_str(BASE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.radiologists.len(), 3);
        assert_eq!(
            config.radiologist("dr-b").map(|r| r.max_open_studies),
            Some(4)
        );
        assert!(config.rota.shifts.is_empty() && config.rules.is_empty());
    }

    #[test]
    fn ids_are_checked_and_unique() {
        let entry = |id: &str| {
            first(&format!(
                "id = \"{id}\"\nname = \"X\"\nsubspecialties = [\"body\"]\nsites = [\"ch-a\"]\n\
                 max_open_studies = 1"
            ))
        };
        assert_one(&entry("Dr-X"), "radiologists[3].id", "contains 'D'");
        assert_one(&entry(""), "radiologists[3].id", "must not be empty");
        assert_one(
            &entry("dr-b"),
            "radiologists[3].id",
            "id \"dr-b\" is already used by radiologists[1]",
        );
    }

    #[test]
    fn each_field_is_checked_at_its_path() {
        let text = first(
            "id = \"dr-x\"\nname = \" \"\nsubspecialties = [\"neuro\", \"nuero\", \"neuro\"]\n\
             sites = [\"ch-a\", \"ch-z\", \"ch-a\"]\nmax_open_studies = 0\nphone = \"\"\n\
             email = \"06 12 34 56 78\"\n\
             [radiologists.workstation]\nae_title = \"A_WORKSTATION_TOO_LONG\"\nhost = \"\"\nport = 0\n\
             operations_window = 0",
        );
        let problems = problems(&text);
        assert_eq!(
            paths(&problems),
            [
                "radiologists[3].name",
                "radiologists[3].subspecialties[1]",
                "radiologists[3].subspecialties[2]",
                "radiologists[3].sites[1]",
                "radiologists[3].sites[2]",
                "radiologists[3].max_open_studies",
                "radiologists[3].phone",
                "radiologists[3].email",
                "radiologists[3].workstation.ae_title",
                "radiologists[3].workstation.host",
                "radiologists[3].workstation.operations_window",
                "radiologists[3].workstation.port",
            ],
            "{problems:#?}"
        );
        assert!(
            problems[1]
                .message
                .contains("\"nuero\" is not a known subspecialty")
        );
        assert!(
            problems[2]
                .message
                .contains("already listed as radiologists[3].subspecialties[0]")
        );
        assert!(
            problems[3]
                .message
                .contains("no site is named \"ch-z\": expected one of ch-a, ch-b")
        );
        assert!(problems[5].message.contains("must be at least 1"));
    }

    #[test]
    fn empty_lists_are_reported() {
        assert_one(
            &first(
                "id = \"dr-x\"\nname = \"X\"\nsubspecialties = []\nsites = [\"ch-a\"]\nmax_open_studies = 1",
            ),
            "radiologists[3].subspecialties",
            "at least one subspecialty",
        );
        assert_one(
            &first(
                "id = \"dr-x\"\nname = \"X\"\nsubspecialties = [\"msk\"]\nsites = []\nmax_open_studies = 1",
            ),
            "radiologists[3].sites",
            "at least one site",
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_parse_errors_with_their_path() {
        let problem = parse_problem(&first(
            "id = \"dr-x\"\nname = \"X\"\nsubspecialties = [\"msk\"]\nsites = [\"ch-a\"]\n\
             max_open_studies = 1\npager = \"123\"",
        ));
        assert_eq!(problem.path, "radiologists[3].pager");
        assert!(
            problem.message.contains("unknown field `pager`"),
            "{problem}"
        );
        let problem = parse_problem(&first("id = \"dr-x\"\nname = \"X\"\nsites = [\"ch-a\"]"));
        assert_eq!(problem.path, "radiologists[3]");
        assert!(
            problem.message.contains("missing field `subspecialties`"),
            "{problem}"
        );
    }

    #[test]
    fn ids_use_the_site_name_alphabet() {
        assert_eq!(id_error("dr-martin_2"), None);
        assert!(id_error("").is_some_and(|m| m.contains("must not be empty")));
        assert!(id_error("Dr-Martin").is_some_and(|m| m.contains("contains 'D'")));
        assert!(id_error("dr martin").is_some_and(|m| m.contains("contains ' '")));
    }

    #[test]
    fn routing_problems_come_in_file_order_after_the_sites() {
        let text = "[[radiologists]]\nid = \"dr-x\"\nname = \"X\"\nsubspecialties = [\"neuro\"]\n\
                    sites = [\"ch-q\"]\nmax_open_studies = 1\n\
                    [rota]\ntime_zone = \"Europe/Paris\"\n\
                    [[rota.shifts]]\nradiologist = \"dr-x\"\nrole = \"primary\"\nsubspecialty = \"neuro\"\n\
                    days = [\"mon\"]\nstart = \"20:00\"\nend = \"8:00\"\n\
                    [[rota.overrides]]\nradiologist = \"dr-x\"\nkind = \"swap\"\n\
                    from = \"2026-01-02T00:00\"\nto = \"2026-01-01T00:00\"\n\
                    [[rules]]\nname = \"r\"\ndescription = \"(\"\nsubspecialty = \"neuro\"\npriority = \"stat\"\n\
                    [sla]\nstat = { acknowledge_secs = 0, preliminary_secs = 1 }\n\
                    [escalation]\nchain = [\"dr-y\"]\n";
        let text = format!("[dicom]\nport = 0\n{text}");
        let problems = problems(&text);
        assert_eq!(
            paths(&problems),
            [
                "dicom.port",
                "radiologists[3].sites[0]",
                "rota.shifts[0].end",
                "rota.overrides[0].to",
                "rota.overrides[0].with",
                "rules[0].description",
                "sla.stat.acknowledge_secs",
                "escalation.chain[0]",
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn example_has_a_night_rota_and_rules() {
        let config = Config::example();
        assert_eq!(config.radiologists.len(), 5);
        for subspecialty in ["neuro", "body", "chest", "general"] {
            assert!(
                config
                    .radiologists
                    .iter()
                    .any(|r| r.has_subspecialty(subspecialty)),
                "{subspecialty}"
            );
        }
        assert_eq!(config.rota.time_zone.as_deref(), Some("Europe/Paris"));
        assert_eq!(config.rota.shifts.len(), 11);
        assert_eq!(config.rota.overrides.len(), 2);
        let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "stroke-description",
                "stroke-request",
                "chest-ct",
                "stat-request",
                "urgent-request"
            ]
        );
        assert_eq!(config.escalation.chain, ["dr-rousseau", "dr-martin"]);
    }

    #[test]
    fn email_check_is_loose() {
        assert!(looks_like_email("c.martin@example.org"));
        assert!(!looks_like_email("+33 6 12 34 56 78"));
        assert!(!looks_like_email("c.martin@"));
        assert!(!looks_like_email("c martin@example.org"));
    }
}
