//! From TOML text to a [`Config`], with every failure tied to a key path
//! and, where toml knows it, a line number.

use std::fmt::Write as _;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::Config;
use crate::audit::AuditConfig;
use crate::critical::CriticalResultsConfig;
use crate::dicom::DicomConfig;
use crate::escalation::EscalationConfig;
use crate::forwarding::ForwardingConfig;
use crate::http::HttpConfig;
use crate::notifications::NotificationsConfig;
use crate::problem::{ConfigError, Problem};
use crate::radiologist::Radiologist;
use crate::rota::RotaConfig;
use crate::rule::RuleConfig;
use crate::site::SiteEntry;
use crate::sla::SlaConfig;
use crate::storage::StorageConfig;
use crate::studies::StudiesConfig;
use crate::unread::{self, Unread};

/// The file as written. Sections are read straight into their public
/// types; sites go through [`SiteEntry`] so that their networks and time
/// zone are checked with the other rules. Each section is read on its own
/// (see [`parse`]); the whole is read only to report an unknown section
/// with the list of known ones.
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
    critical_results: CriticalResultsConfig,
    escalation: EscalationConfig,
    forwarding: ForwardingConfig,
    notifications: NotificationsConfig,
    audit: AuditConfig,
}

/// The TOML document as written, with the position of every key, kept to
/// give each problem the line of the key it is about.
pub(crate) struct Document<'i> {
    text: &'i str,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Document<'i> {
    /// Reads `text` as TOML. Fails only when it is not TOML.
    pub(crate) fn parse(text: &'i str) -> Result<Document<'i>, ConfigError> {
        let root = DeTable::parse(text)
            .map_err(|error| ConfigError::Parse(vec![syntax_problem(text, &error)]))?;
        Ok(Document { text, root })
    }

    /// The line of the key at `path` (as [`Problem::path`] spells it), or of
    /// its nearest ancestor written in the file when the key itself was left
    /// to its default. `None` when not even the section is written.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        let mut span = None;
        let mut node = Node::Table(self.root.get_ref());
        for segment in path_segments(path) {
            let found = match (&node, &segment) {
                (Node::Table(table), PathSegment::Key(key)) => table
                    .get_key_value(key.as_str())
                    .map(|(key, value)| (key.span(), value)),
                (Node::Array(array), PathSegment::Index(index)) => {
                    array.get(*index).map(|value| (value.span(), value))
                }
                _ => None,
            };
            let Some((found_span, value)) = found else {
                break;
            };
            span = Some(found_span);
            node = match value.get_ref() {
                DeValue::Table(table) => Node::Table(table),
                DeValue::Array(array) => Node::Array(array),
                _ => Node::Leaf,
            };
        }
        span.map(|span| line_and_column(self.text, span.start).0)
    }
}

enum Node<'a, 'i> {
    Table(&'a DeTable<'i>),
    Array(&'a [Spanned<DeValue<'i>>]),
    Leaf,
}

enum PathSegment {
    Key(String),
    Index(usize),
}

/// The segments of a path written by [`path_text`]: bare keys, `"quoted"`
/// keys and `[index]`es.
fn path_segments(path: &str) -> Vec<PathSegment> {
    let mut segments = Vec::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {}
            '[' => {
                let digits: String = chars.by_ref().take_while(|&c| c != ']').collect();
                match digits.parse() {
                    Ok(index) => segments.push(PathSegment::Index(index)),
                    Err(_) => break,
                }
            }
            '"' => {
                let mut key = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => key.extend(chars.next()),
                        other => key.push(other),
                    }
                }
                segments.push(PathSegment::Key(key));
            }
            first => {
                let mut key = String::from(first);
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                segments.push(PathSegment::Key(key));
            }
        }
    }
    segments
}

/// The configuration of `document`, per site the problems met converting
/// it (to be merged with the validation problems), the problems of form
/// (unknown keys, missing keys, values of the wrong type) and what was
/// left out because of them.
///
/// Each section, and each element of a list, is read on its own, so that
/// one that cannot be read hides none of the others: it is reported and
/// left out (a section takes its defaults), and the rest is read. An
/// unknown key (a typo, most often) is reported and removed, and its table
/// read without it.
pub(crate) fn parse(document: &Document<'_>) -> Parsed {
    let mut reader = Reader {
        document,
        problems: Vec::new(),
        unread: Unread::default(),
    };
    let mut file = ConfigFile::default();
    // The map is sorted by key; problems are listed in the order of the
    // file instead.
    let mut sections: Vec<_> = document.root.get_ref().iter().collect();
    sections.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in sections {
        let value = value.clone();
        match key.get_ref().as_ref() {
            "dicom" => file.dicom = reader.section("dicom", value),
            "http" => file.http = reader.section("http", value),
            "storage" => file.storage = reader.section("storage", value),
            "studies" => file.studies = reader.section("studies", value),
            "sites" => file.sites = reader.list(unread::SITES, value),
            "radiologists" => file.radiologists = reader.list(unread::RADIOLOGISTS, value),
            "rota" => file.rota = reader.rota(value),
            "rules" => file.rules = reader.list(unread::RULES, value),
            "sla" => file.sla = reader.section("sla", value),
            "critical_results" => file.critical_results = reader.section("critical_results", value),
            "escalation" => file.escalation = reader.section("escalation", value),
            "forwarding" => file.forwarding = reader.section("forwarding", value),
            "notifications" => file.notifications = reader.section("notifications", value),
            "audit" => file.audit = reader.section("audit", value),
            // Read as the whole file, for serde to name the sections
            // expected.
            _ => {
                let mut table = DeTable::new();
                table.insert(key.clone(), value);
                let span = document.root.span();
                let _: Option<ConfigFile> =
                    reader.read("", Spanned::new(span, DeValue::Table(table)));
            }
        }
    }

    let mut sites = Vec::with_capacity(file.sites.len());
    let mut conversion = Vec::with_capacity(file.sites.len());
    for (i, entry) in file.sites.into_iter().enumerate() {
        let (site, problems) = entry.into_site(reader.unread.index(unread::SITES, i));
        sites.push(site);
        conversion.push(problems);
    }
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
        critical_results: file.critical_results,
        escalation: file.escalation,
        forwarding: file.forwarding,
        notifications: file.notifications,
        audit: file.audit,
    };
    Parsed {
        config,
        conversion,
        problems: reader.problems,
        unread: reader.unread,
    }
}

/// What [`parse`] read.
pub(crate) struct Parsed {
    pub(crate) config: Config,
    pub(crate) conversion: Vec<Vec<Problem>>,
    pub(crate) problems: Vec<Problem>,
    pub(crate) unread: Unread,
}

struct Reader<'d, 'i> {
    document: &'d Document<'i>,
    problems: Vec<Problem>,
    unread: Unread,
}

impl<'i> Reader<'_, 'i> {
    /// A `T` read from `value`, which is at `path`; `None`, once the
    /// problem is reported, if a key is missing or has a value of the wrong
    /// type.
    fn read<T: DeserializeOwned>(
        &mut self,
        path: &str,
        mut value: Spanned<DeValue<'i>>,
    ) -> Option<T> {
        // Serde stops at the first unknown key: each round removes one, so
        // there are at most as many rounds as keys.
        loop {
            let deserializer = ValueDeserializer::from(value.clone());
            match serde_path_to_error::deserialize(deserializer) {
                Ok(read) => return Some(read),
                Err(error) => {
                    self.problems
                        .push(form_problem(self.document, path, &error));
                    let unknown = error.inner().message().starts_with("unknown field");
                    if !(unknown && remove_key(value.get_mut(), error.path())) {
                        return None;
                    }
                }
            }
        }
    }

    /// The section at `path`, or its defaults if it cannot be read.
    fn section<T: DeserializeOwned + Default>(
        &mut self,
        path: &str,
        value: Spanned<DeValue<'i>>,
    ) -> T {
        self.read(path, value).unwrap_or_else(|| {
            self.unread.left_out(path);
            T::default()
        })
    }

    /// The elements of the list at `path` that can be read.
    fn list<T: DeserializeOwned>(
        &mut self,
        path: &'static str,
        value: Spanned<DeValue<'i>>,
    ) -> Vec<T> {
        let DeValue::Array(elements) = value.get_ref() else {
            // Not a list: reading it as one names what was expected.
            let name = name_of(path, &value);
            return self.read(path, value).unwrap_or_else(|| {
                self.unread.left_out(path);
                self.left_out_name(path, name);
                Vec::new()
            });
        };
        let mut read = Vec::with_capacity(elements.len());
        let mut indices = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            let element_path = format!("{path}[{index}]");
            let name = name_of(path, element);
            match self.read(&element_path, element.clone()) {
                Some(element) => {
                    read.push(element);
                    indices.push(index);
                }
                None => {
                    self.unread.left_out(element_path);
                    self.left_out_name(path, name);
                }
            }
        }
        self.unread.list_read(path, indices, elements.len());
        read
    }

    /// Keeps the name of a site or the id of a radiologist left out, which
    /// other sections refer to.
    fn left_out_name(&mut self, list: &str, name: Option<String>) {
        match list {
            unread::SITES => self.unread.site_left_out(name),
            unread::RADIOLOGISTS => self.unread.radiologist_left_out(name),
            _ => {}
        }
    }

    /// `[rota]`, its shifts and overrides each read on its own, so that a
    /// broken one hides neither the others nor the rota's time zone.
    fn rota(&mut self, value: Spanned<DeValue<'i>>) -> RotaConfig {
        let span = value.span();
        let mut value = value.into_inner();
        let (shifts, overrides) = match &mut value {
            DeValue::Table(table) => (table.remove("shifts"), table.remove("overrides")),
            _ => (None, None),
        };
        let mut rota: RotaConfig = self.section("rota", Spanned::new(span, value));
        if let Some(shifts) = shifts {
            rota.shifts = self.list(unread::SHIFTS, shifts);
        }
        if let Some(overrides) = overrides {
            rota.overrides = self.list(unread::OVERRIDES, overrides);
        }
        rota
    }
}

/// The key by which other sections refer to an element of `list`, as far
/// as it can be read: a site's `name`, a radiologist's `id`.
fn name_of(list: &str, element: &Spanned<DeValue<'_>>) -> Option<String> {
    let key = match list {
        unread::SITES => "name",
        unread::RADIOLOGISTS => "id",
        _ => return None,
    };
    match element.get_ref() {
        DeValue::Table(table) => match table.get(key).map(Spanned::get_ref) {
            Some(DeValue::String(name)) => Some(name.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Removes the key at `path` from `root`; false if there is none there.
fn remove_key(root: &mut DeValue<'_>, path: &Path) -> bool {
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((Segment::Map { key: last }, parents)) = segments.split_last() else {
        return false;
    };
    let mut cursor = root;
    for segment in parents {
        let value = match (segment, cursor) {
            (Segment::Map { key }, DeValue::Table(table)) => table.get_mut(key.as_str()),
            (Segment::Seq { index }, DeValue::Array(elements)) => elements.get_mut(*index),
            _ => None,
        };
        match value {
            Some(value) => cursor = value.get_mut(),
            None => return false,
        }
    }
    match cursor {
        DeValue::Table(table) => table.remove(last.as_str()).is_some(),
        _ => false,
    }
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
fn form_problem(
    document: &Document<'_>,
    prefix: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> Problem {
    let inner = error.inner();
    let path = join_path(prefix, &path_text(error.path()));
    let mut message = plain_number_types(&one_line(inner.message()));
    if path == "sites" && message.contains("expected a sequence") {
        message.push_str("; write each site as a [[sites]] table, with double brackets");
    }
    // Only the line, never its text: it may hold a database password.
    let line = match inner.span() {
        Some(span) => Some(line_and_column(document.text, span.start).0),
        None => document.line_of(&path),
    };
    Problem::new(path, message).at_line(line)
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

/// `rest`, a path within the value at `prefix`, as a path from the root.
fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() || rest.is_empty() || rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
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

    /// The one problem met reading `text`: a syntax or form error, or an
    /// unknown key.
    fn parse_problem(text: &str) -> Problem {
        let problems = match Document::parse(text) {
            Err(ConfigError::Parse(problems)) => problems,
            Err(other) => panic!("expected a parse error, got {other}"),
            Ok(document) => parse(&document).problems,
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems
            .into_iter()
            .next()
            .unwrap_or_else(|| unreachable!())
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
        assert_eq!(problem.line, Some(5), "{problem}");
    }

    #[test]
    fn unknown_key_in_a_section_names_its_path() {
        let problem = parse_problem("[dicom]\nport = 104\naet = \"X\"\n");
        assert_eq!(problem.path, "dicom.aet");
        assert!(problem.message.contains("unknown field `aet`"), "{problem}");
        assert_eq!(problem.line, Some(3), "{problem}");
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
        assert_eq!(problem.line, Some(3), "{problem}");
    }

    #[test]
    fn number_too_large_for_its_field_names_its_path() {
        let problem = parse_problem("[http]\nport = 70000\n");
        assert_eq!(problem.path, "http.port");
        assert_eq!(
            problem.message,
            "invalid value: integer `70000`, expected a whole number from 0 to 65535"
        );
        assert_eq!(problem.line, Some(2));
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
