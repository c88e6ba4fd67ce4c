//! `[[sites]]`: the hospitals that send studies, recognised by the calling
//! AE titles of their scanners and PACS.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::problem::Problem;
use crate::studies::StudiesConfig;

/// A sending hospital.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// Short identifier used in logs, the database and URLs.
    pub name: String,
    /// Calling AE titles this site's modalities and PACS use.
    pub ae_titles: Vec<String>,
    /// Source networks associations from this site may come from; empty
    /// means any address.
    pub allowed_networks: Vec<IpNet>,
    /// The site's local time, for dates shown to radiologists and rotas.
    #[serde(skip)]
    pub time_zone: TimeZone,
    /// The IANA name `time_zone` was loaded from, for display; `TimeZone`
    /// itself does not always keep it.
    #[serde(rename = "time_zone")]
    pub time_zone_name: String,
    /// Overrides `[studies] default_quiet_period_secs` for this site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_period_secs: Option<u64>,
    /// Shorter quiet periods for a study whose request form, filed before
    /// its images, asks for one of these urgencies (`stroke`, `trauma`,
    /// `stat`, `urgent`, `routine`), in seconds. A longer one than the
    /// site's is not used.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub quiet_period_secs_by_urgency: std::collections::BTreeMap<String, u64>,
    /// When set, a study is also complete this many seconds after the
    /// association that brought it is released, once no other association
    /// of the site is open (a scanner that sends each study in one
    /// association). Later images reopen it as usual.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_on_release_secs: Option<u64>,
    /// When not empty, this site's associations must come over DICOM TLS
    /// with a client certificate valid for one of these names (DNS names
    /// of its Subject Alternative Names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_client_names: Vec<String>,
    /// The emergency department's address for critical results and their
    /// escalation (no patient data goes by e-mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The hospital's endpoint for issued reports and critical results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::Webhook>,
    /// Requesters of storage commitment whose reports go to an address of
    /// theirs, on an association telerad opens, rather than on the one
    /// that asked (which a modality may release at once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commitment_requesters: Vec<CommitmentRequester>,
}

/// Where a storage commitment requester of a site takes its reports (DICOM
/// PS3.4 J.3.3.1.2: an association that telerad requests, as the SCP of
/// the Storage Commitment Push Model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentRequester {
    /// One of the site's AE titles.
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

impl Site {
    /// Whether an association from `addr` may claim to be this site.
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        if self.allowed_networks.is_empty() {
            return true;
        }
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; the
        // networks are written as IPv4.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            IpAddr::V4(_) => addr,
        };
        self.allowed_networks
            .iter()
            .any(|network| network.contains(&addr))
    }

    /// How long a study from this site must stay without new instances
    /// before it is taken as complete.
    pub fn quiet_period(&self, studies: &StudiesConfig) -> Duration {
        Duration::from_secs(
            self.quiet_period_secs
                .unwrap_or(studies.default_quiet_period_secs),
        )
    }

    /// The quiet periods of urgent requests that are shorter than the
    /// site's own: (urgency, period).
    pub fn urgent_quiet_periods(&self, studies: &StudiesConfig) -> Vec<(&str, Duration)> {
        let own = self.quiet_period(studies);
        self.quiet_period_secs_by_urgency
            .iter()
            .map(|(urgency, secs)| (urgency.as_str(), Duration::from_secs(*secs)))
            .filter(|(_, period)| *period < own)
            .collect()
    }

    /// The grace after a release that completes this site's studies, when
    /// the site asks for it.
    pub fn release_grace(&self) -> Option<Duration> {
        self.complete_on_release_secs.map(Duration::from_secs)
    }

    /// Where the reports of `calling_ae_title`'s storage commitment
    /// requests go, when not on its own association.
    pub fn commitment_requester(&self, calling_ae_title: &str) -> Option<&CommitmentRequester> {
        let wanted = trim_ae_title(calling_ae_title);
        self.commitment_requesters
            .iter()
            .find(|r| trim_ae_title(&r.ae_title) == wanted)
    }

    /// Whether `calling_ae_title` is one of this site's AE titles. DICOM
    /// pads AE titles with spaces and some senders with NULs, neither of
    /// which is significant.
    pub(crate) fn has_ae_title(&self, calling_ae_title: &str) -> bool {
        let wanted = trim_ae_title(calling_ae_title);
        !wanted.is_empty()
            && self
                .ae_titles
                .iter()
                .any(|title| trim_ae_title(title) == wanted)
    }
}

pub(crate) fn trim_ae_title(title: &str) -> &str {
    title.trim_matches(|c| c == ' ' || c == '\0')
}

/// A site as written in TOML, before its networks and time zone are parsed.
/// Those are read as strings so that every bad entry is reported with its
/// path, together with the other problems, instead of stopping at the first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteEntry {
    name: String,
    ae_titles: Vec<String>,
    #[serde(default)]
    allowed_networks: Vec<String>,
    time_zone: String,
    quiet_period_secs: Option<u64>,
    #[serde(default)]
    quiet_period_secs_by_urgency: std::collections::BTreeMap<String, u64>,
    complete_on_release_secs: Option<u64>,
    #[serde(default)]
    tls_client_names: Vec<String>,
    email: Option<String>,
    webhook: Option<crate::Webhook>,
    #[serde(default)]
    commitment_requesters: Vec<CommitmentRequester>,
}

impl SiteEntry {
    /// The site, and the problems met converting it. Where a value is bad
    /// the site holds a stand-in (UTC, the network left out); the problems
    /// make sure such a site is never used.
    pub(crate) fn into_site(self, index: usize) -> (Site, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut allowed_networks = Vec::with_capacity(self.allowed_networks.len());
        for (n, text) in self.allowed_networks.iter().enumerate() {
            match parse_network(text) {
                Some(network) => allowed_networks.push(network),
                None => problems.push(Problem::new(
                    format!("sites[{index}].allowed_networks[{n}]"),
                    format!(
                        "{text:?} is not a network: expected CIDR notation such as \
                         \"10.23.0.0/16\" or \"2001:db8::/32\", or a single address"
                    ),
                )),
            }
        }
        let (time_zone, time_zone_name) = match TimeZone::get(&self.time_zone) {
            // The database's spelling, in case the lookup forgave the case.
            Ok(tz) => {
                let name = tz.iana_name().unwrap_or(&self.time_zone).to_owned();
                (tz, name)
            }
            Err(_) => {
                problems.push(Problem::new(
                    format!("sites[{index}].time_zone"),
                    format!(
                        "unknown time zone {:?}: expected an IANA time zone name \
                         such as \"Europe/Paris\"",
                        self.time_zone
                    ),
                ));
                (TimeZone::UTC, self.time_zone)
            }
        };
        for (n, requester) in self.commitment_requesters.iter().enumerate() {
            let path = format!("sites[{index}].commitment_requesters[{n}]");
            if !self
                .ae_titles
                .iter()
                .any(|title| trim_ae_title(title) == trim_ae_title(&requester.ae_title))
            {
                problems.push(Problem::new(
                    format!("{path}.ae_title"),
                    format!(
                        "{:?} is not one of the site's ae_titles: a report goes only to a \
                         requester of this site",
                        requester.ae_title
                    ),
                ));
            }
            if requester.host.trim().is_empty() || requester.port == 0 {
                problems.push(Problem::new(
                    path,
                    "a host and a port (1-65535) where the requester listens".to_string(),
                ));
            }
        }
        let site = Site {
            name: self.name,
            ae_titles: self.ae_titles,
            allowed_networks,
            time_zone,
            time_zone_name,
            quiet_period_secs: self.quiet_period_secs,
            quiet_period_secs_by_urgency: self.quiet_period_secs_by_urgency,
            complete_on_release_secs: self.complete_on_release_secs,
            tls_client_names: self.tls_client_names,
            email: self.email,
            webhook: self.webhook,
            commitment_requesters: self.commitment_requesters,
        };
        (site, problems)
    }
}

/// A network in CIDR notation, or a single address taken as a network of
/// one: listing one PACS by its address is common enough not to insist on
/// "/32".
fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(networks: &[&str]) -> Site {
        Site {
            name: "ch-test".to_owned(),
            ae_titles: vec!["CT1".to_owned(), " MR1  ".to_owned()],
            allowed_networks: networks
                .iter()
                .map(|n| parse_network(n).unwrap_or_else(|| panic!("bad test network {n}")))
                .collect(),
            time_zone: TimeZone::UTC,
            time_zone_name: "UTC".to_owned(),
            quiet_period_secs: None,
            quiet_period_secs_by_urgency: Default::default(),
            complete_on_release_secs: None,
            tls_client_names: Vec::new(),
            email: None,
            webhook: None,
            commitment_requesters: Vec::new(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("bad test address {text}"))
    }

    #[test]
    fn empty_network_list_allows_any_address() {
        let site = site(&[]);
        assert!(site.allows_address(ip("203.0.113.9")));
        assert!(site.allows_address(ip("2001:db8::1")));
    }

    #[test]
    fn cidr_networks_allow_their_addresses_only() {
        let site = site(&["127.0.0.0/8", "10.23.0.0/16", "2001:db8:1::/48"]);
        assert!(site.allows_address(ip("127.0.0.1")));
        assert!(site.allows_address(ip("10.23.255.254")));
        assert!(!site.allows_address(ip("10.24.0.1")));
        assert!(!site.allows_address(ip("192.168.1.1")));
        assert!(site.allows_address(ip("2001:db8:1:2::5")));
        assert!(!site.allows_address(ip("2001:db8:2::5")));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_matched_as_ipv4() {
        let site = site(&["10.23.0.0/16"]);
        assert!(site.allows_address(ip("::ffff:10.23.4.5")));
        assert!(!site.allows_address(ip("::ffff:10.24.4.5")));
        // IPv4-compatible (deprecated ::a.b.c.d) addresses are not IPv4 peers.
        assert!(!site.allows_address(ip("::10.23.4.5")));
    }

    #[test]
    fn single_address_is_a_network_of_one() {
        let site = site(&["10.23.4.5", "2001:db8::7"]);
        assert!(site.allows_address(ip("10.23.4.5")));
        assert!(!site.allows_address(ip("10.23.4.6")));
        assert!(site.allows_address(ip("2001:db8::7")));
        assert!(!site.allows_address(ip("2001:db8::8")));
    }

    #[test]
    fn quiet_period_falls_back_to_the_studies_default() {
        let mut site = site(&[]);
        let studies = StudiesConfig {
            default_quiet_period_secs: 45,
        };
        assert_eq!(site.quiet_period(&studies), Duration::from_secs(45));
        site.quiet_period_secs = Some(7);
        assert_eq!(site.quiet_period(&studies), Duration::from_secs(7));
    }

    #[test]
    fn ae_title_match_ignores_padding() {
        let site = site(&[]);
        assert!(site.has_ae_title("CT1"));
        assert!(site.has_ae_title("CT1             "));
        assert!(site.has_ae_title("  MR1"));
        assert!(site.has_ae_title("MR1\0\0"));
        assert!(!site.has_ae_title("ct1"));
        assert!(!site.has_ae_title("CT"));
        assert!(!site.has_ae_title("   "));
    }

    fn entry(networks: &[&str], time_zone: &str) -> SiteEntry {
        SiteEntry {
            name: "ch-test".to_owned(),
            ae_titles: vec!["CT1".to_owned()],
            allowed_networks: networks.iter().map(|n| (*n).to_owned()).collect(),
            time_zone: time_zone.to_owned(),
            quiet_period_secs: Some(30),
            quiet_period_secs_by_urgency: Default::default(),
            complete_on_release_secs: Some(2),
            tls_client_names: Vec::new(),
            email: None,
            webhook: None,
            commitment_requesters: Vec::new(),
        }
    }

    #[test]
    fn commitment_requesters_are_the_sites_own_with_an_address() {
        let mut good = entry(&[], "Europe/Paris");
        good.commitment_requesters = vec![CommitmentRequester {
            ae_title: "CT1".into(),
            host: "10.1.2.3".into(),
            port: 104,
        }];
        let (site, problems) = good.into_site(0);
        assert_eq!(problems, vec![]);
        assert_eq!(
            site.commitment_requester("CT1   ").map(|r| r.port),
            Some(104)
        );
        assert!(site.commitment_requester("MR1").is_none());

        let mut bad = entry(&[], "Europe/Paris");
        bad.commitment_requesters = vec![
            CommitmentRequester {
                ae_title: "OTHER_PACS".into(),
                host: "10.1.2.3".into(),
                port: 104,
            },
            CommitmentRequester {
                ae_title: "CT1".into(),
                host: " ".into(),
                port: 0,
            },
        ];
        let (_, problems) = bad.into_site(2);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sites[2].commitment_requesters[0].ae_title",
                "sites[2].commitment_requesters[1]"
            ]
        );
    }

    #[test]
    fn entry_converts_networks_and_time_zone() {
        let (site, problems) = entry(&["10.23.0.0/16"], "Europe/Paris").into_site(0);
        assert_eq!(problems, vec![]);
        assert_eq!(site.time_zone_name, "Europe/Paris");
        assert_eq!(Some(site.time_zone), TimeZone::get("Europe/Paris").ok());
        assert_eq!(site.allowed_networks.len(), 1);
        assert_eq!(site.quiet_period_secs, Some(30));
        assert_eq!(site.complete_on_release_secs, Some(2));
    }

    #[test]
    fn time_zone_name_takes_the_database_spelling() {
        let (site, problems) = entry(&[], "europe/paris").into_site(0);
        assert_eq!(problems, vec![]);
        assert_eq!(site.time_zone_name, "Europe/Paris");
    }

    #[test]
    fn bad_networks_are_each_reported_with_their_index() {
        let (_, problems) = entry(
            &["10.23.0.0/16", "10.23.0.0/33", "any", "10.0.0.0/8"],
            "UTC",
        )
        .into_site(2);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sites[2].allowed_networks[1]",
                "sites[2].allowed_networks[2]"
            ]
        );
        assert!(
            problems[0]
                .message
                .starts_with("\"10.23.0.0/33\" is not a network")
        );
    }

    #[test]
    fn unknown_time_zone_is_reported() {
        let (site, problems) = entry(&[], "Europe/Pariss").into_site(1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "sites[1].time_zone");
        assert!(
            problems[0]
                .to_string()
                .starts_with("sites[1].time_zone: unknown time zone \"Europe/Pariss\""),
            "{}",
            problems[0]
        );
        assert_eq!(site.time_zone_name, "Europe/Pariss");
    }
}
