//! Typed configuration of the telerad server, read from TOML and checked.
//!
//! This crate is for turning `telerad.toml` (or the embedded example) into a
//! [`Config`] whose values are known to be usable: listeners, DICOM limits,
//! storage location and the sending sites with their AE titles, networks
//! and time zones. Every problem is reported with the path of the key that
//! holds it, in words meant for the hospital IT person editing the file.
//! It is not for command-line parsing, opening sockets or databases, or
//! any runtime state: the `telerad` binary applies its overrides to a
//! [`Config`], calls [`Config::validate`] again, and hands the sections to
//! the crates that use them.

mod audit;
mod critical;
mod dicom;
mod escalation;
mod forwarding;
mod http;
mod notifications;
mod parse;
mod priority;
mod problem;
mod radiologist;
mod rota;
mod rule;
mod site;
mod sla;
mod storage;
mod studies;
mod unread;
mod validate;

use std::path::Path;

use serde::Serialize;

pub use crate::audit::{AuditConfig, MIN_RETENTION_MONTHS};
pub use crate::critical::CriticalResultsConfig;
pub use crate::dicom::DicomConfig;
pub use crate::escalation::EscalationConfig;
pub use crate::forwarding::ForwardingConfig;
pub use crate::http::{HttpConfig, HttpTls};
pub use crate::notifications::{NotificationsConfig, Smtp, SmtpSecurity, Webhook};
pub use crate::priority::{Priority, UnknownPriority};
pub use crate::problem::{ConfigError, Problem};
pub use crate::radiologist::{Radiologist, SUBSPECIALTIES, TransferCompression, Workstation};
pub use crate::rota::{
    Override, OverrideKind, Resolution, Role, RotaConfig, Shift, WrittenInstant, day_name,
    parse_clock_time, parse_day, parse_instant, resolve_local, time_zone,
};
pub use crate::rule::{DEFAULT_RULE_NAME, RuleConfig, description_regex_error};
pub use crate::site::{CommitmentRequester, Site};
pub use crate::sla::{SlaConfig, SlaTargets};
pub use crate::storage::{StorageConfig, redact_password};
pub use crate::studies::StudiesConfig;

/// The commented example configuration, also what `telerad serve` runs
/// with when no file is given.
pub const EXAMPLE_TOML: &str = include_str!("../example.toml");

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub dicom: DicomConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub studies: StudiesConfig,
    pub sites: Vec<Site>,
    pub radiologists: Vec<Radiologist>,
    pub rota: RotaConfig,
    pub rules: Vec<RuleConfig>,
    pub sla: SlaConfig,
    pub critical_results: CriticalResultsConfig,
    pub escalation: EscalationConfig,
    pub forwarding: ForwardingConfig,
    pub notifications: NotificationsConfig,
    pub audit: AuditConfig,
}

impl Config {
    /// The configuration of [`EXAMPLE_TOML`].
    ///
    /// # Panics
    ///
    /// If the embedded example is invalid, which a unit test rules out.
    pub fn example() -> Config {
        match Config::from_toml_str(EXAMPLE_TOML) {
            Ok(config) => config,
            // The file is compiled in and its validity is a unit test, so
            // this is a build defect, not an input error.
            Err(error) => panic!("the embedded example.toml is not valid: {error}"),
        }
    }

    /// Parses and validates a configuration. Keys left out take their
    /// defaults; at least one site is required.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] if the text is not TOML, [`ConfigError::Invalid`]
    /// with every problem found (unknown or missing keys, values of the
    /// wrong type, values that break the rules), each with its line.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let document = parse::Document::parse(text)?;
        let parsed = parse::parse(&document);
        let mut problems = parsed.problems;
        problems.extend(
            validate::problems(&parsed.config, &parsed.conversion, &parsed.unread)
                .into_iter()
                .map(|problem| {
                    let line = problem.line.or_else(|| document.line_of(&problem.path));
                    problem.at_line(line)
                }),
        );
        let config = parsed.config;
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Reads, parses and validates the configuration file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] if the file cannot be read, otherwise as
    /// [`Config::from_toml_str`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_owned(),
            error,
        })?;
        Config::from_toml_str(&text)
    }

    /// Checks every rule again; for use after values were changed in code,
    /// such as command-line overrides.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = validate::problems(self, &[], &unread::Unread::default());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The site that `calling_ae_title` belongs to. Leading and trailing
    /// spaces (DICOM padding) are not significant; case is.
    pub fn site_for_calling_ae(&self, calling_ae_title: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|site| site.has_ae_title(calling_ae_title))
    }

    /// The database to connect to: `storage.database_url`, or else
    /// `sqlite://{data_dir}/telerad.db?mode=rwc`.
    pub fn database_url(&self) -> String {
        self.storage.database_url()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;

    use super::*;

    const ONE_SITE: &str = r#"
[[sites]]
name = "ch-a"
ae_titles = ["CT"]
time_zone = "Europe/Paris"
"#;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn example_parses_and_is_valid() {
        let config = Config::from_toml_str(EXAMPLE_TOML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.validate().ok(), Some(()));
        assert_eq!(Config::example(), config);
    }

    #[test]
    fn example_has_the_two_documented_sites() {
        let config = Config::example();
        let names: Vec<&str> = config.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ch-vierzon", "ch-aubusson"]);

        let vierzon = &config.sites[0];
        assert_eq!(
            vierzon.ae_titles,
            ["CHV_CT", "CHV_MR", "STORESCU", "ECHOSCU", "TELERAD_SCU"]
        );
        // Its catch-all AE titles: this machine only.
        assert!(vierzon.allows_address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(vierzon.allows_address(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
        assert!(!vierzon.allows_address(IpAddr::V4(Ipv4Addr::new(10, 22, 1, 2))));
        assert_eq!(vierzon.time_zone_name, "Europe/Paris");
        assert_eq!(vierzon.quiet_period(&config.studies).as_secs(), 20);

        let aubusson = &config.sites[1];
        assert_eq!(aubusson.ae_titles, ["CHA_CT", "CHA_PACS"]);
        assert!(aubusson.allows_address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(aubusson.allows_address(IpAddr::V4(Ipv4Addr::new(10, 23, 1, 2))));
        assert!(!aubusson.allows_address(IpAddr::V4(Ipv4Addr::new(10, 24, 1, 2))));
        assert_eq!(aubusson.quiet_period(&config.studies).as_secs(), 30);
    }

    #[test]
    fn example_states_every_default() {
        let example = Config::example();
        let defaults = config(ONE_SITE);
        assert_eq!(example.dicom, defaults.dicom);
        // The one difference: a trial is served over HTTPS.
        assert_eq!(
            example.http,
            HttpConfig {
                self_signed_tls: true,
                ..defaults.http
            }
        );
        assert_eq!(example.storage, defaults.storage);
        assert_eq!(example.studies, defaults.studies);
        assert_eq!(example.audit, defaults.audit);
    }

    #[test]
    fn empty_file_has_only_the_no_site_problem() {
        let error = Config::from_toml_str("").err();
        let problems = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default();
        assert!(matches!(error, Some(ConfigError::Invalid(_))), "{error:?}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "sites");
        assert!(
            problems[0].message.contains("no scanner could send"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = config(ONE_SITE);
        assert_eq!(config.dicom.ae_title, "TELERAD");
        assert_eq!(config.dicom.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(config.dicom.port, 11112);
        assert_eq!(config.dicom.max_associations, 32);
        assert_eq!(config.dicom.max_pdu_length, 131_072);
        assert_eq!(config.dicom.artim_timeout_secs, 30);
        assert_eq!(config.dicom.idle_timeout_secs, 300);
        assert_eq!(config.dicom.shutdown_grace_secs, 10);
        assert_eq!(config.dicom.accepted_sop_classes, None);
        assert_eq!(config.http.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.http.port, 8080);
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert_eq!(config.storage.database_url, None);
        assert_eq!(config.studies.default_quiet_period_secs, 20);
        assert_eq!(config.database_url(), "sqlite://data/telerad.db?mode=rwc");

        let site = &config.sites[0];
        assert!(site.allowed_networks.is_empty());
        assert_eq!(site.quiet_period_secs, None);
    }

    #[test]
    fn values_given_replace_defaults() {
        let config = config(&format!(
            r#"
[dicom]
ae_title = "ROUTER"
bind = "::"
port = 104
max_pdu_length = 16384
accepted_sop_classes = ["1.2.840.10008.5.1.4.1.1.2"]

[storage]
database_url = "postgres://telerad@db/telerad"
{ONE_SITE}"#
        ));
        assert_eq!(config.dicom.ae_title, "ROUTER");
        assert!(config.dicom.bind.is_unspecified() && config.dicom.bind.is_ipv6());
        assert_eq!(config.dicom.port, 104);
        assert_eq!(config.dicom.max_pdu_length, 16384);
        assert_eq!(
            config.dicom.accepted_sop_classes.as_deref(),
            Some(&["1.2.840.10008.5.1.4.1.1.2".to_owned()][..])
        );
        assert_eq!(config.dicom.max_associations, 32);
        assert_eq!(config.database_url(), "postgres://telerad@db/telerad");
    }

    #[test]
    fn site_for_calling_ae_trims_spaces() {
        let config = Config::example();
        let name = |ae: &str| {
            config
                .site_for_calling_ae(ae)
                .map(|site| site.name.as_str())
        };
        assert_eq!(name("CHV_MR"), Some("ch-vierzon"));
        assert_eq!(name("  CHV_MR      "), Some("ch-vierzon"));
        assert_eq!(name("CHA_PACS        "), Some("ch-aubusson"));
        assert_eq!(name("STORESCU"), Some("ch-vierzon"));
        assert_eq!(name("chv_mr"), None);
        assert_eq!(name("UNKNOWN"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn site_for_calling_ae_trims_configured_titles_too() {
        let config =
            config("[[sites]]\nname = \"a\"\nae_titles = [\"  CT1  \"]\ntime_zone = \"UTC\"\n");
        assert_eq!(
            config.site_for_calling_ae("CT1").map(|s| s.name.as_str()),
            Some("a")
        );
    }

    #[test]
    fn validate_catches_overrides_applied_in_code() {
        let mut config = Config::example();
        config.dicom.port = 0;
        config.sites[1].ae_titles.push("CHV_CT".to_owned());
        let error = config.validate().err();
        let paths: Vec<&str> = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default()
            .iter()
            .map(|p| p.path.as_str())
            .collect();
        assert_eq!(paths, ["dicom.port", "sites[1].ae_titles[2]"]);
    }

    #[test]
    fn serialized_config_reads_back_the_same() {
        let example = Config::example();
        let text = toml::to_string(&example).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config(&text), example);
    }

    #[test]
    fn a_typo_does_not_hide_the_other_problems_and_each_has_its_line() {
        let text = "\
[dicom]
ae_titel = \"ROUTER\"
port = 0

[[sites]]
name = \"ch-a\"
ae_titles = [\"CT\"]
time_zone = \"Europe/Pariss\"
";
        let error = Config::from_toml_str(text).err();
        assert!(matches!(error, Some(ConfigError::Invalid(_))), "{error:?}");
        let problems = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default();
        let found: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
        assert_eq!(
            found,
            [
                ("dicom.ae_titel", Some(2)),
                ("dicom.port", Some(3)),
                ("sites[0].time_zone", Some(8)),
            ],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("unknown field `ae_titel`"));
        assert!(problems[0].message.contains("`ae_title`"));
    }

    #[test]
    fn several_typos_are_all_reported() {
        let text = format!("[http]\nprot = 80\n{ONE_SITE}colour = \"blue\"\n");
        let error = Config::from_toml_str(&text).err();
        let paths: Vec<&str> = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default()
            .iter()
            .map(|p| p.path.as_str())
            .collect();
        assert_eq!(paths, ["http.prot", "sites[0].colour"], "{error:?}");
    }

    #[test]
    fn a_problem_with_a_defaulted_key_has_the_line_of_its_section() {
        // http.port is left to its default, 8080, which dicom.port
        // repeats: the problem points at [http].
        let text = format!(
            "[dicom]\nport = 8080\nbind = \"127.0.0.1\"\n\n[http]\nbind = \"127.0.0.1\"\n{ONE_SITE}"
        );
        let error = Config::from_toml_str(&text).err();
        let problems = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default();
        let found: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
        assert_eq!(found, [("http.port", Some(5))], "{problems:#?}");
    }

    #[test]
    fn a_missing_key_after_a_typo_lists_both() {
        let text = "[[sites]]\nname = \"ch-a\"\nae_titles = [\"CT\"]\ntime_zon = \"UTC\"\n";
        let error = Config::from_toml_str(text).err();
        assert!(matches!(error, Some(ConfigError::Invalid(_))), "{error:?}");
        let problems = error
            .as_ref()
            .map(ConfigError::problems)
            .unwrap_or_default();
        let found: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.path.as_str(), p.line)).collect();
        // The site is left out, but "no site is configured" would only
        // repeat the missing key.
        assert_eq!(
            found,
            [("sites[0].time_zon", Some(4)), ("sites[0]", Some(1))],
            "{problems:#?}"
        );
    }

    /// The problems of `text` as (path, line), with their messages.
    fn problems_at(text: &str) -> (Vec<(String, Option<usize>)>, Vec<Problem>) {
        let problems = match Config::from_toml_str(text) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("expected problems, got {other:?}"),
        };
        let found = problems.iter().map(|p| (p.path.clone(), p.line)).collect();
        (found, problems)
    }

    fn at(path: &str, line: usize) -> (String, Option<usize>) {
        (path.to_owned(), Some(line))
    }

    #[test]
    fn wrong_types_and_a_missing_key_hide_no_other_problem() {
        let text = "\
[dicom]
port = \"eleven\"

[http]
prot = 8081

[[sites]]
name = \"ch-a\"
ae_titles = [\"CT\"]
time_zone = \"Europe/Paris\"

[[sites]]
name = \"ch-b\"
ae_titles = [\"MR\"]

[[sites]]
name = \"ch-c\"
ae_titles = [\"CT\"]
time_zone = \"Europe/Paris\"

[[radiologists]]
id = \"dr-a\"
name = \"Dr A\"
subspecialties = [\"neuro\"]
sites = [\"ch-a\", \"ch-b\"]
max_open_studies = 4

[[radiologists]]
id = \"dr-b\"
name = \"Dr B\"
subspecialties = \"chest\"
sites = [\"ch-a\"]
max_open_studies = 4

[escalation]
chain = [\"dr-b\", \"dr-a\"]
";
        let (found, problems) = problems_at(text);
        // Not reported: ch-b and dr-b as unknown (they are there, only
        // unreadable), http.port as dicom's (dicom's port is unknown).
        assert_eq!(
            found,
            [
                at("dicom.port", 2),
                at("http.prot", 5),
                at("sites[1]", 12),
                at("radiologists[1].subspecialties", 31),
                at("sites[2].ae_titles[0]", 18),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[0]
                .message
                .contains("invalid type: string \"eleven\"")
        );
        assert!(problems[1].message.contains("unknown field `prot`"));
        assert!(problems[2].message.contains("missing field `time_zone`"));
        assert!(problems[3].message.contains("expected a sequence"));
        assert!(
            problems[4]
                .message
                .contains("already belongs to site \"ch-a\" (sites[0].ae_titles[0])"),
            "{}",
            problems[4]
        );
    }

    #[test]
    fn a_section_left_out_does_not_clash_through_its_defaults() {
        // dicom.port defaults to 11112 when [dicom] cannot be read: that is
        // not the user's choice to set against http.port.
        let text = format!("[dicom]\nport = \"x\"\n[http]\nport = 11112\n{ONE_SITE}");
        let (found, problems) = problems_at(&text);
        assert_eq!(found, [at("dicom.port", 2)], "{problems:#?}");
    }

    #[test]
    fn sites_that_cannot_be_read_are_not_also_missing() {
        let (found, problems) = problems_at("[sites]\nname = \"ch-a\"\n");
        assert_eq!(found, [at("sites", 1)], "{problems:#?}");
        let (found, problems) = problems_at("[[sites]]\nname = 5\n");
        assert_eq!(found, [at("sites[0].name", 2)], "{problems:#?}");
    }

    #[test]
    fn a_site_without_a_readable_name_may_be_any_site_referred_to() {
        let text = "[[sites]]\nae_titles = [\"CT\"]\ntime_zone = \"UTC\"\n\
                    [[rules]]\nname = \"r\"\nsite = \"ch-q\"\nsubspecialty = \"neuro\"\n\
                    priority = \"stat\"\n";
        let (found, problems) = problems_at(text);
        assert_eq!(found, [at("sites[0]", 1)], "{problems:#?}");
    }

    #[test]
    fn load_reads_a_file() {
        let path =
            std::env::temp_dir().join(format!("telerad-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, EXAMPLE_TOML).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Config::load(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(loaded.ok(), Some(Config::example()));
    }

    #[test]
    fn load_of_a_missing_file_is_an_io_error_naming_it() {
        let path = Path::new("/nonexistent/telerad.toml");
        match Config::load(path) {
            Err(ConfigError::Io {
                path: reported,
                error,
            }) => {
                assert_eq!(reported, path);
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
}
