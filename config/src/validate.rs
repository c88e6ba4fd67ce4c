//! The rules a configuration must follow beyond having the right form.
//!
//! Every rule is checked and every problem kept, in the order the keys
//! appear in the example file, so that one reading of the list is enough
//! to fix the file.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::Config;
use crate::dicom::{ae_title_error, uid_error};
use crate::problem::Problem;
use crate::site::trim_ae_title;
use crate::storage::{database_url_error, node_id_error};
use crate::unread::{self, Unread};

const MAX_ASSOCIATIONS: RangeInclusive<usize> = 1..=1024;
/// Below 4 KiB a data set would be cut into absurdly many PDUs; above
/// 16 MiB one PDU would hold too much memory per association.
const MAX_PDU_LENGTH: RangeInclusive<u32> = 4096..=16_777_216;
const ARTIM_TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;
const IDLE_TIMEOUT_SECS: RangeInclusive<u64> = 1..=86_400;
const SHUTDOWN_GRACE_SECS: RangeInclusive<u64> = 0..=600;
/// 1 KiB keeps a typo from refusing every image while leaving tests room
/// for a small limit; 1 TiB is past any instance a modality produces.
const MAX_INSTANCE_BYTES: RangeInclusive<u64> = 1024..=(1 << 40);
const QUIET_PERIOD_SECS: RangeInclusive<u64> = 1..=86_400;
/// The urgencies of a request form (CLINICAL.md), for per-urgency quiet
/// periods.
const URGENCIES: [&str; 5] = ["stroke", "trauma", "stat", "urgent", "routine"];
/// A release grace longer than a few minutes is a quiet period by another name.
const RELEASE_GRACE_SECS: RangeInclusive<u64> = 0..=300;

/// All problems of `config`. `conversion` holds, per site, the problems
/// found while converting its networks and time zone from text; they are
/// merged in at their place in the site. `unread` is what of the file
/// could not be read, already reported.
pub(crate) fn problems(
    config: &Config,
    conversion: &[Vec<Problem>],
    unread: &Unread,
) -> Vec<Problem> {
    let mut check = Check::default();
    check.dicom(config);
    check.dicom_tls(config);
    check.http(config, unread);
    check.audit(config);
    check.storage(config);
    check.studies(config);
    check.sites(config, conversion, unread);
    // Routing sections check themselves, each in its own module.
    check
        .problems
        .extend(crate::radiologist::problems(config, unread));
    check.problems.extend(crate::rota::problems(config, unread));
    check.problems.extend(crate::rule::problems(config, unread));
    check.problems.extend(crate::sla::problems(config));
    check.problems.extend(crate::critical::problems(config));
    check
        .problems
        .extend(crate::escalation::problems(config, unread));
    check.problems.extend(crate::forwarding::problems(config));
    check
        .problems
        .extend(crate::notifications::problems(config));
    check.problems
}

#[derive(Default)]
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn range<T: PartialOrd + Display>(
        &mut self,
        path: &str,
        value: T,
        range: RangeInclusive<T>,
        unit: &str,
    ) {
        if !range.contains(&value) {
            self.report(
                path,
                format!(
                    "must be between {} and {} {unit}, not {value}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }

    fn port(&mut self, path: &str, port: u16) {
        if port == 0 {
            self.report(
                path,
                "must not be 0: give the TCP port to listen on (1 to 65535)",
            );
        }
    }

    fn dicom(&mut self, config: &Config) {
        let dicom = &config.dicom;
        if let Some(message) = ae_title_error(&dicom.ae_title) {
            self.report("dicom.ae_title", message);
        }
        self.port("dicom.port", dicom.port);
        self.range(
            "dicom.max_associations",
            dicom.max_associations,
            MAX_ASSOCIATIONS,
            "associations",
        );
        self.range(
            "dicom.max_pdu_length",
            dicom.max_pdu_length,
            MAX_PDU_LENGTH,
            "bytes",
        );
        self.range(
            "dicom.artim_timeout_secs",
            dicom.artim_timeout_secs,
            ARTIM_TIMEOUT_SECS,
            "seconds",
        );
        self.range(
            "dicom.idle_timeout_secs",
            dicom.idle_timeout_secs,
            IDLE_TIMEOUT_SECS,
            "seconds",
        );
        self.range(
            "dicom.shutdown_grace_secs",
            dicom.shutdown_grace_secs,
            SHUTDOWN_GRACE_SECS,
            "seconds",
        );
        self.range(
            "dicom.max_instance_bytes",
            dicom.max_instance_bytes,
            MAX_INSTANCE_BYTES,
            "bytes",
        );
        if let Some(classes) = &dicom.accepted_sop_classes {
            if classes.is_empty() {
                self.report(
                    "dicom.accepted_sop_classes",
                    "an empty list would refuse every image: list SOP Class UIDs, \
                     or remove the key to accept the built-in list",
                );
            }
            for (i, uid) in classes.iter().enumerate() {
                if let Some(message) = uid_error(uid) {
                    self.report(format!("dicom.accepted_sop_classes[{i}]"), message);
                }
            }
        }
    }

    fn audit(&mut self, config: &Config) {
        let months = config.audit.retention_months;
        if months < crate::MIN_RETENTION_MONTHS {
            self.report(
                "audit.retention_months",
                format!(
                    "{months} months is too short: the audit trail of accesses to patient \
                     data is kept at least {} months",
                    crate::MIN_RETENTION_MONTHS
                ),
            );
        } else if months > 1200 {
            self.report("audit.retention_months", "at most 1200 months (100 years)");
        }
    }

    fn dicom_tls(&mut self, config: &Config) {
        let dicom = &config.dicom;
        let files = dicom.tls_cert.is_some() && dicom.tls_key.is_some();
        match dicom.tls_port {
            Some(port) => {
                self.port("dicom.tls_port", port);
                if !files {
                    self.report(
                        "dicom.tls_port",
                        "DICOM TLS needs tls_cert and tls_key (PEM) in [dicom]",
                    );
                }
                if port != 0 && port == dicom.port {
                    self.report(
                        "dicom.tls_port",
                        format!("{port} is also dicom.port: TLS needs a port of its own"),
                    );
                }
            }
            None if dicom.tls_cert.is_some()
                || dicom.tls_key.is_some()
                || dicom.tls_client_ca.is_some() =>
            {
                self.report(
                    "dicom.tls_port",
                    "a TLS certificate or CA is set but no tls_port to serve it on (2762 is DICOM's)",
                );
            }
            None => {}
        }
    }

    fn http(&mut self, config: &Config, unread: &Unread) {
        self.port("http.port", config.http.port);
        match (&config.http.tls_cert, &config.http.tls_key) {
            (Some(_), None) => self.report(
                "http.tls_key",
                "tls_cert is set without its private key: set tls_key too",
            ),
            (None, Some(_)) => self.report(
                "http.tls_cert",
                "tls_key is set without its certificate: set tls_cert too",
            ),
            (Some(_), Some(_)) if config.http.self_signed_tls => self.report(
                "http.self_signed_tls",
                "a certificate is given (tls_cert): remove self_signed_tls",
            ),
            _ => {}
        }
        for (i, origin) in config.http.cors_allowed_origins.iter().enumerate() {
            if let Some(problem) = crate::http::origin_problem(origin) {
                self.report(format!("http.cors_allowed_origins[{i}]"), problem);
            }
        }
        let (dicom, http) = (&config.dicom, &config.http);
        // A section left out holds its defaults, not what the file says.
        let both_read = !unread.is_left_out("dicom") && !unread.is_left_out("http");
        if both_read
            && http.port != 0
            && http.port == dicom.port
            && binds_overlap(http.bind, dicom.bind)
        {
            self.report(
                "http.port",
                format!(
                    "{} is also dicom.port on an overlapping address: the HTTP and \
                     DICOM listeners need different ports",
                    http.port
                ),
            );
        }
    }

    fn storage(&mut self, config: &Config) {
        let storage = &config.storage;
        if storage.data_dir.as_os_str().is_empty() {
            self.report(
                "storage.data_dir",
                "must not be empty: give the directory for received files, such as \"data\"",
            );
        }
        if let Some(url) = &storage.database_url
            && let Some(message) = database_url_error(url)
        {
            self.report("storage.database_url", message);
        }
        if let Some(message) = storage.node_id.as_deref().and_then(node_id_error) {
            self.report("storage.node_id", message);
        }
    }

    fn studies(&mut self, config: &Config) {
        self.range(
            "studies.default_quiet_period_secs",
            config.studies.default_quiet_period_secs,
            QUIET_PERIOD_SECS,
            "seconds",
        );
    }

    fn sites(&mut self, config: &Config, conversion: &[Vec<Problem>], unread: &Unread) {
        // Sites that could not be read are reported already.
        if config.sites.is_empty() && !unread.is_partly_left_out(unread::SITES) {
            self.report(
                "sites",
                "no site is configured, so no scanner could send: add at least one \
                 [[sites]] table with its name, ae_titles and time_zone",
            );
            return;
        }
        // Where each name and each (trimmed) AE title was first seen, to
        // point the second use back at the first.
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut titles: HashMap<&str, (usize, usize, &str)> = HashMap::new();
        for (read, site) in config.sites.iter().enumerate() {
            let i = unread.index(unread::SITES, read);
            let path = format!("sites[{i}]");
            for (n, name) in site.tls_client_names.iter().enumerate() {
                let valid = !name.is_empty()
                    && name.len() <= 253
                    && name.split('.').all(|label| {
                        !label.is_empty()
                            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !valid {
                    self.report(
                        format!("{path}.tls_client_names[{n}]"),
                        format!(
                            "{name:?} is not a DNS name such as \"ct1.ch-vierzon.example\": \
                             the client certificate must carry it as a Subject Alternative Name"
                        ),
                    );
                }
            }
            if site.name.is_empty() {
                self.report(
                    format!("{path}.name"),
                    "must not be empty: give a short name such as \"ch-vierzon\"",
                );
            } else if let Some(c) = site.name.chars().find(|c| !is_site_name_char(*c)) {
                self.report(
                    format!("{path}.name"),
                    format!(
                        "{:?} is not a valid site name: it contains {c:?}, but only \
                         lowercase letters a-z, digits, '-' and '_' are allowed",
                        site.name
                    ),
                );
            } else if let Some(first) = names.get(site.name.as_str()) {
                self.report(
                    format!("{path}.name"),
                    format!(
                        "site name {:?} is already used by sites[{first}]: \
                         names must be unique",
                        site.name
                    ),
                );
            } else {
                names.insert(&site.name, i);
            }

            if site.ae_titles.is_empty() {
                self.report(
                    format!("{path}.ae_titles"),
                    "must list at least one calling AE title: associations are \
                     matched to a site by the AE title the sender calls from",
                );
            }
            for (t, title) in site.ae_titles.iter().enumerate() {
                let title_path = format!("{path}.ae_titles[{t}]");
                if let Some(message) = ae_title_error(title) {
                    self.report(title_path, message);
                    continue;
                }
                let key = trim_ae_title(title);
                match titles.get(key) {
                    Some(&(first_site, first_title, _)) if first_site == i => self.report(
                        title_path,
                        format!(
                            "AE title {key:?} is already listed as \
                             {path}.ae_titles[{first_title}]"
                        ),
                    ),
                    Some(&(first_site, first_title, first_name)) => self.report(
                        title_path,
                        format!(
                            "AE title {key:?} already belongs to site {first_name:?} \
                             (sites[{first_site}].ae_titles[{first_title}]): a calling \
                             AE title must identify a single site"
                        ),
                    ),
                    None => {
                        titles.insert(key, (i, t, &site.name));
                    }
                }
            }

            if let Some(converted) = conversion.get(read) {
                self.problems.extend(converted.iter().cloned());
            }

            if let Some(secs) = site.quiet_period_secs {
                self.range(
                    &format!("{path}.quiet_period_secs"),
                    secs,
                    QUIET_PERIOD_SECS,
                    "seconds",
                );
            }
            for (urgency, secs) in &site.quiet_period_secs_by_urgency {
                let key = format!("{path}.quiet_period_secs_by_urgency.{urgency}");
                if URGENCIES.contains(&urgency.as_str()) {
                    self.range(&key, *secs, QUIET_PERIOD_SECS, "seconds");
                } else {
                    self.report(
                        key,
                        format!(
                            "{urgency:?} is not a request urgency: expected one of {}",
                            URGENCIES.join(", ")
                        ),
                    );
                }
            }
            if let Some(secs) = site.complete_on_release_secs {
                self.range(
                    &format!("{path}.complete_on_release_secs"),
                    secs,
                    RELEASE_GRACE_SECS,
                    "seconds",
                );
            }
        }
    }
}

fn is_site_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// Whether two listeners on these addresses could collide: the same
/// address, or one of them on all addresses (which, on a dual-stack host,
/// includes the other family).
fn binds_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError, Problem};

    const SITE_A: &str = r#"
[[sites]]
name = "ch-a"
ae_titles = ["A_CT", "A_MR"]
time_zone = "Europe/Paris"
"#;

    /// The validation problems of `text`, which must parse.
    fn problems(text: &str) -> Vec<Problem> {
        match Config::from_toml_str(text) {
            Err(ConfigError::Invalid(problems)) => problems,
            Err(other) => panic!("expected validation problems, got {other}"),
            Ok(_) => Vec::new(),
        }
    }

    fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    /// Asserts that `text` has exactly one problem, at `path`, whose message
    /// contains `expected`.
    fn assert_one(text: &str, path: &str, expected: &str) {
        let problems = problems(text);
        assert_eq!(paths(&problems), [path], "{problems:#?}");
        assert!(
            problems[0].message.contains(expected),
            "expected {expected:?} in {}",
            problems[0]
        );
    }

    fn with_site_a(section: &str) -> String {
        format!("{section}\n{SITE_A}")
    }

    #[test]
    fn valid_minimal_config_has_no_problem() {
        assert_eq!(problems(SITE_A), vec![]);
    }

    #[test]
    fn urgent_quiet_periods_name_an_urgency_and_a_valid_period() {
        let site = |table: &str| {
            format!(
                "[[sites]]\nname = \"site-a\"\nae_titles = [\"CT\"]\n\
                 time_zone = \"Europe/Paris\"\nquiet_period_secs_by_urgency = {table}\n"
            )
        };
        assert_eq!(problems(&site("{ stroke = 5, trauma = 10 }")), vec![]);
        assert_one(
            &site("{ strok = 5 }"),
            "sites[0].quiet_period_secs_by_urgency.strok",
            "is not a request urgency: expected one of stroke, trauma",
        );
        assert_one(
            &site("{ stroke = 0 }"),
            "sites[0].quiet_period_secs_by_urgency.stroke",
            "not 0",
        );
    }

    #[test]
    fn tls_client_names_are_dns_names() {
        let site = |names: &str| {
            format!(
                "[[sites]]\nname = \"site-a\"\nae_titles = [\"CT\"]\n\
                 time_zone = \"Europe/Paris\"\ntls_client_names = {names}\n"
            )
        };
        assert_eq!(problems(&site(r#"["ct1.ch-vierzon.example"]"#)), vec![]);
        assert_one(
            &site(r#"["ct1.ch-vierzon.example", "CT 1"]"#),
            "sites[0].tls_client_names[1]",
            "is not a DNS name",
        );
    }

    #[test]
    fn called_ae_title_lengths_are_checked() {
        assert_one(
            &with_site_a("[dicom]\nae_title = \"\""),
            "dicom.ae_title",
            "\"\" is not a DICOM AE title: it is empty",
        );
        assert_one(
            &with_site_a("[dicom]\nae_title = \"TELERAD_ROUTER_01\""),
            "dicom.ae_title",
            "\"TELERAD_ROUTER_01\" is not a DICOM AE title: at most 16 characters, this one has 17",
        );
        assert_one(
            &with_site_a("[dicom]\nae_title = \"   \""),
            "dicom.ae_title",
            "only spaces",
        );
        assert_eq!(
            problems(&with_site_a("[dicom]\nae_title = \"TELERAD_ROUTER_1\"")),
            vec![]
        );
    }

    #[test]
    fn calling_ae_title_characters_are_checked() {
        let text = r#"
[[sites]]
name = "ch-a"
ae_titles = ["A_CT", "A\\MR", "A_PACS", "SCANNER_ÉTAGE_2"]
time_zone = "UTC"
"#;
        let problems = problems(text);
        assert_eq!(
            paths(&problems),
            ["sites[0].ae_titles[1]", "sites[0].ae_titles[3]"]
        );
        assert!(problems[0].message.contains("backslash"), "{}", problems[0]);
        assert!(
            problems[1].message.contains("printable ASCII"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn site_needs_an_ae_title() {
        assert_one(
            "[[sites]]\nname = \"a\"\nae_titles = []\ntime_zone = \"UTC\"\n",
            "sites[0].ae_titles",
            "at least one calling AE title",
        );
    }

    #[test]
    fn ae_title_in_two_sites_is_reported_at_the_second_with_the_first() {
        let text = format!(
            "{SITE_A}\n[[sites]]\nname = \"ch-b\"\nae_titles = [\"B_CT\", \"A_MR   \"]\n\
             time_zone = \"UTC\"\n"
        );
        assert_one(
            &text,
            "sites[1].ae_titles[1]",
            "AE title \"A_MR\" already belongs to site \"ch-a\" (sites[0].ae_titles[1])",
        );
    }

    #[test]
    fn ae_title_twice_in_one_site_is_reported() {
        assert_one(
            "[[sites]]\nname = \"a\"\nae_titles = [\"CT\", \" CT\"]\ntime_zone = \"UTC\"\n",
            "sites[0].ae_titles[1]",
            "already listed as sites[0].ae_titles[0]",
        );
    }

    #[test]
    fn ae_titles_differing_in_case_are_different_titles() {
        let text = format!(
            "{SITE_A}\n[[sites]]\nname = \"ch-b\"\nae_titles = [\"a_ct\"]\ntime_zone = \"UTC\"\n"
        );
        assert_eq!(problems(&text), vec![]);
    }

    #[test]
    fn duplicate_site_names_are_reported() {
        let text = format!(
            "{SITE_A}\n[[sites]]\nname = \"ch-a\"\nae_titles = [\"B_CT\"]\ntime_zone = \"UTC\"\n"
        );
        assert_one(
            &text,
            "sites[1].name",
            "site name \"ch-a\" is already used by sites[0]",
        );
    }

    #[test]
    fn site_names_are_checked() {
        let site = |name: &str| {
            format!("[[sites]]\nname = \"{name}\"\nae_titles = [\"CT\"]\ntime_zone = \"UTC\"\n")
        };
        assert_one(&site(""), "sites[0].name", "must not be empty");
        assert_one(
            &site("CH Vierzon"),
            "sites[0].name",
            "\"CH Vierzon\" is not a valid site name: it contains 'C'",
        );
        assert_one(&site("ch.vierzon"), "sites[0].name", "contains '.'");
        assert_eq!(problems(&site("ch-vierzon_2")), vec![]);
    }

    #[test]
    fn bad_cidr_is_reported_at_its_index() {
        let text = "[[sites]]\nname = \"a\"\nae_titles = [\"CT\"]\n\
                    allowed_networks = [\"10.0.0.0/8\", \"10.23.0.0/40\"]\ntime_zone = \"UTC\"\n";
        assert_one(
            text,
            "sites[0].allowed_networks[1]",
            "\"10.23.0.0/40\" is not a network",
        );
    }

    #[test]
    fn bad_time_zone_is_reported() {
        let text = format!(
            "{SITE_A}\n[[sites]]\nname = \"ch-b\"\nae_titles = [\"B_CT\"]\n\
             time_zone = \"Europe/Pariss\"\n"
        );
        let problems = problems(&text);
        assert_eq!(paths(&problems), ["sites[1].time_zone"]);
        assert!(
            problems[0]
                .to_string()
                .starts_with("sites[1].time_zone: unknown time zone \"Europe/Pariss\""),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn bad_sop_class_uid_is_reported_at_its_index() {
        let text = with_site_a(
            "[dicom]\naccepted_sop_classes = [\"1.2.840.10008.5.1.4.1.1.2\", \
             \"1.2.840.10008.5.1.4.1.1.02\", \"CT Image Storage\"]",
        );
        let problems = problems(&text);
        assert_eq!(
            paths(&problems),
            [
                "dicom.accepted_sop_classes[1]",
                "dicom.accepted_sop_classes[2]"
            ]
        );
        assert!(
            problems[0].message.contains("leading zero"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn empty_sop_class_list_is_reported() {
        assert_one(
            &with_site_a("[dicom]\naccepted_sop_classes = []"),
            "dicom.accepted_sop_classes",
            "remove the key",
        );
    }

    #[test]
    fn numbers_out_of_range_are_reported_with_the_range() {
        let cases = [
            ("[dicom]\nport = 0", "dicom.port", "must not be 0"),
            ("[http]\nport = 0", "http.port", "must not be 0"),
            (
                "[http]\ntls_cert = \"c.pem\"",
                "http.tls_key",
                "without its private key",
            ),
            (
                "[http]\ntls_key = \"k.pem\"",
                "http.tls_cert",
                "without its certificate",
            ),
            (
                "[http]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nself_signed_tls = true",
                "http.self_signed_tls",
                "remove self_signed_tls",
            ),
            (
                "[http]\ncors_allowed_origins = [\"https://viewer.example.org\", \"*\"]",
                "http.cors_allowed_origins[1]",
                "expected scheme://host[:port]",
            ),
            (
                "[dicom]\nmax_associations = 0",
                "dicom.max_associations",
                "must be between 1 and 1024 associations, not 0",
            ),
            (
                "[dicom]\nmax_associations = 1025",
                "dicom.max_associations",
                "not 1025",
            ),
            (
                "[dicom]\nmax_pdu_length = 4095",
                "dicom.max_pdu_length",
                "must be between 4096 and 16777216 bytes, not 4095",
            ),
            (
                "[dicom]\nmax_pdu_length = 16777217",
                "dicom.max_pdu_length",
                "not 16777217",
            ),
            (
                "[dicom]\nmax_instance_bytes = 1023",
                "dicom.max_instance_bytes",
                "must be between 1024 and 1099511627776 bytes, not 1023",
            ),
            (
                "[dicom]\nmax_instance_bytes = 1099511627777",
                "dicom.max_instance_bytes",
                "not 1099511627777",
            ),
            (
                "[dicom]\nartim_timeout_secs = 0",
                "dicom.artim_timeout_secs",
                "must be between 1 and 3600 seconds, not 0",
            ),
            (
                "[dicom]\nartim_timeout_secs = 3601",
                "dicom.artim_timeout_secs",
                "not 3601",
            ),
            (
                "[dicom]\nidle_timeout_secs = 0",
                "dicom.idle_timeout_secs",
                "between 1 and 86400 seconds",
            ),
            (
                "[dicom]\nidle_timeout_secs = 86401",
                "dicom.idle_timeout_secs",
                "not 86401",
            ),
            (
                "[dicom]\nshutdown_grace_secs = 601",
                "dicom.shutdown_grace_secs",
                "must be between 0 and 600 seconds, not 601",
            ),
            (
                "[studies]\ndefault_quiet_period_secs = 0",
                "studies.default_quiet_period_secs",
                "between 1 and 86400 seconds",
            ),
            (
                "[studies]\ndefault_quiet_period_secs = 86401",
                "studies.default_quiet_period_secs",
                "not 86401",
            ),
        ];
        for (section, path, expected) in cases {
            assert_one(&with_site_a(section), path, expected);
        }
        assert_one(
            "[[sites]]\nname = \"a\"\nae_titles = [\"CT\"]\ntime_zone = \"UTC\"\n\
             quiet_period_secs = 0\n",
            "sites[0].quiet_period_secs",
            "between 1 and 86400 seconds, not 0",
        );
    }

    #[test]
    fn range_bounds_are_accepted() {
        let low = "[dicom]\nport = 1\nmax_associations = 1\nmax_pdu_length = 4096\n\
                   artim_timeout_secs = 1\nidle_timeout_secs = 1\nshutdown_grace_secs = 0\n\
                   max_instance_bytes = 1024\n\
                   [http]\nport = 65535\n[studies]\ndefault_quiet_period_secs = 1";
        assert_eq!(problems(&with_site_a(low)), vec![]);
        let high = "[dicom]\nport = 65535\nmax_associations = 1024\n\
                    max_pdu_length = 16777216\nartim_timeout_secs = 3600\n\
                    idle_timeout_secs = 86400\nshutdown_grace_secs = 600\n\
                    max_instance_bytes = 1099511627776\n\
                    [http]\nport = 1\n[studies]\ndefault_quiet_period_secs = 86400";
        assert_eq!(problems(&with_site_a(high)), vec![]);
    }

    #[test]
    fn bad_database_url_scheme_is_reported() {
        assert_one(
            &with_site_a("[storage]\ndatabase_url = \"mysql://root:hunter2@db/telerad\""),
            "storage.database_url",
            "scheme \"mysql\" is not supported",
        );
    }

    #[test]
    fn a_node_id_that_cannot_name_a_folder_is_reported() {
        assert_one(
            &with_site_a("[storage]\nnode_id = \"../other\""),
            "storage.node_id",
            "1 to 64 letters, digits",
        );
    }

    #[test]
    fn empty_data_dir_is_reported() {
        assert_one(
            &with_site_a("[storage]\ndata_dir = \"\""),
            "storage.data_dir",
            "must not be empty",
        );
    }

    #[test]
    fn http_and_dicom_on_the_same_port_are_reported() {
        assert_one(
            &with_site_a("[http]\nbind = \"0.0.0.0\"\nport = 11112"),
            "http.port",
            "11112 is also dicom.port",
        );
        // Different addresses may share a port number.
        let apart = "[dicom]\nbind = \"10.0.0.1\"\nport = 8080\n\
                     [http]\nbind = \"127.0.0.1\"\nport = 8080";
        assert_eq!(problems(&with_site_a(apart)), vec![]);
    }

    #[test]
    fn all_problems_are_reported_at_once_in_file_order() {
        let text = r#"
[dicom]
ae_title = "THIS_TITLE_IS_TOO_LONG"
port = 0
max_pdu_length = 1000

[storage]
database_url = "oracle://x"

[studies]
default_quiet_period_secs = 0

[[sites]]
name = "CH A"
ae_titles = ["OK", "BAD\\ONE"]
allowed_networks = ["10.0.0.0/8", "nowhere"]
time_zone = "Mars/Olympus_Mons"
quiet_period_secs = 100000

[[sites]]
name = "ch-b"
ae_titles = ["OK"]
time_zone = "Europe/Paris"
"#;
        let problems = problems(text);
        assert_eq!(
            paths(&problems),
            [
                "dicom.ae_title",
                "dicom.port",
                "dicom.max_pdu_length",
                "storage.database_url",
                "studies.default_quiet_period_secs",
                "sites[0].name",
                "sites[0].ae_titles[1]",
                "sites[0].allowed_networks[1]",
                "sites[0].time_zone",
                "sites[0].quiet_period_secs",
                "sites[1].ae_titles[0]",
            ]
        );
        let error = Config::from_toml_str(text).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert_eq!(error.lines().count(), 1 + problems.len(), "{error}");
    }
}
