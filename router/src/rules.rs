//! The rules engine: what a complete study needs, as the subspecialty that
//! should read it and its priority.
//!
//! Rules are tried in the order of `[[rules]]`; the first whose matchers
//! all match classifies the study. Whatever no rule matches is `general`
//! and `routine`, by a last rule named `default` that the engine appends.

use regex::Regex;
use serde::Serialize;
use telerad_config::{Config, DEFAULT_RULE_NAME, RuleConfig};

pub use telerad_config::Priority;

// The OpenAPI schema of `Priority`, whose crate does not know utoipa: the
// words on the wire. A field of type `Priority` in an answer says
// `#[schema(value_type = telerad_router::rules::PrioritySchema)]`.
/// Reading priority: how soon a study must be read.
#[derive(utoipa::ToSchema)]
#[schema(as = Priority)]
#[serde(rename_all = "lowercase")]
pub enum PrioritySchema {
    /// Read now: a stroke, a trauma patient on the table.
    Stat,
    /// Read within the hour.
    Urgent,
    /// Read within the night.
    Routine,
}

/// What is known of a study when it is complete: from its images (site,
/// modalities, body parts, descriptions) and, when there is one, from its
/// request form (urgency, stroke flag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudyFacts {
    pub site: String,
    /// Modality codes of its series ("CT", "MR"…).
    pub modalities: Vec<String>,
    /// Body Part Examined values of its series.
    pub body_parts: Vec<String>,
    pub study_description: String,
    pub series_descriptions: Vec<String>,
    /// The urgency written on the request form, if known.
    pub urgency: Option<Priority>,
    /// Whether the request form is flagged as a suspected stroke.
    pub stroke: bool,
    /// The examination the request form asks for (empty without a form).
    pub requested_examination: String,
}

/// The result of [`Rules::classify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub subspecialty: String,
    pub priority: Priority,
    /// The name of the rule that matched, `"default"` if none did.
    pub rule: String,
}

/// A rule's description pattern did not compile. [`Config`] validation
/// reports this first, so it is met only with a configuration built or
/// changed in code and not validated again.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules[{index}] ({name}): description {pattern:?} is not a valid regular expression")]
    Regex {
        index: usize,
        name: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

/// The ordered rules, the default one last.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    description: Option<Regex>,
    stroke: Option<bool>,
    site: Option<String>,
    modality: Option<String>,
    body_part: Option<String>,
    urgency: Option<Priority>,
    subspecialty: String,
    priority: Priority,
}

impl Rules {
    /// The rules of `config`, followed by the default rule.
    ///
    /// # Errors
    ///
    /// [`RulesError::Regex`] for the first description that does not
    /// compile.
    pub fn from_config(config: &Config) -> Result<Rules, RulesError> {
        let mut rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| Rule::from_config(index, rule))
            .collect::<Result<Vec<_>, _>>()?;
        rules.push(Rule::default_rule());
        Ok(Rules { rules })
    }

    /// The classification given by the first rule that matches `facts`.
    pub fn classify(&self, facts: &StudyFacts) -> Classification {
        // The default rule matches everything, so `find` always succeeds;
        // the fallback only avoids an unwrap.
        self.rules
            .iter()
            .find(|rule| rule.matches(facts))
            .map_or_else(
                || Rule::default_rule().classification(),
                Rule::classification,
            )
    }
}

impl Rule {
    fn from_config(index: usize, rule: &RuleConfig) -> Result<Rule, RulesError> {
        let description = rule
            .description
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| RulesError::Regex {
                    index,
                    name: rule.name.clone(),
                    pattern: pattern.to_owned(),
                    source,
                })
            })
            .transpose()?;
        Ok(Rule {
            name: rule.name.clone(),
            description,
            stroke: rule.stroke,
            site: rule.site.clone(),
            modality: rule.modality.as_deref().map(|m| m.trim().to_owned()),
            body_part: rule.body_part.as_deref().map(|b| b.trim().to_owned()),
            urgency: rule.urgency,
            subspecialty: rule.subspecialty.clone(),
            priority: rule.priority,
        })
    }

    fn default_rule() -> Rule {
        Rule {
            name: DEFAULT_RULE_NAME.to_owned(),
            description: None,
            stroke: None,
            site: None,
            modality: None,
            body_part: None,
            urgency: None,
            subspecialty: "general".to_owned(),
            priority: Priority::Routine,
        }
    }

    fn matches(&self, facts: &StudyFacts) -> bool {
        // DICOM pads values with spaces, and some scanners write codes in
        // lowercase: codes are compared trimmed and without case.
        let contains = |values: &[String], wanted: &str| {
            values
                .iter()
                .any(|value| value.trim().eq_ignore_ascii_case(wanted))
        };
        self.site.as_ref().is_none_or(|site| *site == facts.site)
            && self.stroke.is_none_or(|stroke| stroke == facts.stroke)
            && self
                .urgency
                .is_none_or(|urgency| facts.urgency == Some(urgency))
            && self
                .modality
                .as_deref()
                .is_none_or(|modality| contains(&facts.modalities, modality))
            && self
                .body_part
                .as_deref()
                .is_none_or(|body_part| contains(&facts.body_parts, body_part))
            && self.description.as_ref().is_none_or(|pattern| {
                pattern.is_match(&facts.study_description)
                    || pattern.is_match(&facts.requested_examination)
                    || facts
                        .series_descriptions
                        .iter()
                        .any(|description| pattern.is_match(description))
            })
    }

    fn classification(&self) -> Classification {
        Classification {
            subspecialty: self.subspecialty.clone(),
            priority: self.priority,
            rule: self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> StudyFacts {
        StudyFacts {
            site: "ch-vierzon".to_owned(),
            modalities: vec!["CT".to_owned()],
            body_parts: vec!["ABDOMEN".to_owned()],
            study_description: "TDM ABDO-PELVIEN".to_owned(),
            series_descriptions: vec!["Abdomen 1.0 B30f".to_owned()],
            urgency: None,
            stroke: false,
            requested_examination: String::new(),
        }
    }

    fn rules(toml: &str) -> Rules {
        let text = format!(
            "[[sites]]\nname = \"ch-vierzon\"\nae_titles = [\"V\"]\ntime_zone = \"Europe/Paris\"\n\
             [[sites]]\nname = \"ch-aubusson\"\nae_titles = [\"A\"]\ntime_zone = \"Europe/Paris\"\n\
             {toml}"
        );
        let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
        Rules::from_config(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn result(classification: &Classification) -> (&str, Priority, &str) {
        (
            classification.rule.as_str(),
            classification.priority,
            classification.subspecialty.as_str(),
        )
    }

    #[test]
    fn no_rules_means_the_default_rule() {
        let rules = rules("");
        assert_eq!(
            rules.classify(&facts()),
            Classification {
                subspecialty: "general".to_owned(),
                priority: Priority::Routine,
                rule: "default".to_owned(),
            }
        );
        assert_eq!(rules.classify(&StudyFacts::default()).rule, "default");
    }

    #[test]
    fn first_match_wins() {
        let rules = rules(
            "[[rules]]\nname = \"ct\"\nmodality = \"CT\"\nsubspecialty = \"body\"\npriority = \"urgent\"\n\
             [[rules]]\nname = \"ct-again\"\nmodality = \"CT\"\nsubspecialty = \"chest\"\npriority = \"stat\"\n\
             [[rules]]\nname = \"all\"\nsubspecialty = \"msk\"\npriority = \"routine\"\n",
        );
        assert_eq!(
            result(&rules.classify(&facts())),
            ("ct", Priority::Urgent, "body")
        );
        let mr = StudyFacts {
            modalities: vec!["MR".to_owned()],
            ..facts()
        };
        assert_eq!(
            result(&rules.classify(&mr)),
            ("all", Priority::Routine, "msk")
        );
    }

    /// Each matcher alone: (rule body, facts that match, facts that do not).
    #[test]
    fn each_matcher_matches_only_its_value() {
        let with = |change: &dyn Fn(&mut StudyFacts)| {
            let mut f = facts();
            change(&mut f);
            f
        };
        let cases: Vec<(&str, StudyFacts, StudyFacts)> = vec![
            (
                "site = \"ch-aubusson\"",
                with(&|f| f.site = "ch-aubusson".to_owned()),
                facts(),
            ),
            (
                "modality = \"MR\"",
                with(&|f| f.modalities = vec!["SR".to_owned(), "mr ".to_owned()]),
                facts(),
            ),
            (
                "body_part = \"head\"",
                with(&|f| f.body_parts = vec!["NECK".to_owned(), "HEAD".to_owned()]),
                with(&|f| f.body_parts = vec!["HEADNECK".to_owned()]),
            ),
            (
                "urgency = \"urgent\"",
                with(&|f| f.urgency = Some(Priority::Urgent)),
                with(&|f| f.urgency = Some(Priority::Stat)),
            ),
            (
                "urgency = \"routine\"",
                with(&|f| f.urgency = Some(Priority::Routine)),
                // No request form: an urgency matcher does not match.
                facts(),
            ),
            ("stroke = true", with(&|f| f.stroke = true), facts()),
            ("stroke = false", facts(), with(&|f| f.stroke = true)),
            (
                "description = \"PELVIEN\"",
                facts(),
                with(&|f| f.study_description = "TDM THORAX".to_owned()),
            ),
            (
                "description = \"B30f\"",
                // Found in a series description only.
                facts(),
                with(&|f| f.series_descriptions.clear()),
            ),
        ];
        for (body, yes, no) in cases {
            let rules = rules(&format!(
                "[[rules]]\nname = \"r\"\n{body}\nsubspecialty = \"neuro\"\npriority = \"stat\"\n"
            ));
            assert_eq!(
                rules.classify(&yes).rule,
                "r",
                "{body} should match {yes:?}"
            );
            assert_eq!(
                rules.classify(&no).rule,
                "default",
                "{body} should not match {no:?}"
            );
        }
    }

    #[test]
    fn every_matcher_given_must_match() {
        let rules = rules(
            "[[rules]]\nname = \"chest-ct\"\nmodality = \"CT\"\nbody_part = \"CHEST\"\n\
             subspecialty = \"chest\"\npriority = \"urgent\"\n",
        );
        let chest_mr = StudyFacts {
            modalities: vec!["MR".to_owned()],
            body_parts: vec!["CHEST".to_owned()],
            ..facts()
        };
        let chest_ct = StudyFacts {
            body_parts: vec!["CHEST".to_owned()],
            ..facts()
        };
        assert_eq!(rules.classify(&facts()).rule, "default");
        assert_eq!(rules.classify(&chest_mr).rule, "default");
        assert_eq!(
            result(&rules.classify(&chest_ct)),
            ("chest-ct", Priority::Urgent, "chest")
        );
    }

    #[test]
    fn regex_case_is_as_the_pattern_says() {
        let rules = rules(
            "[[rules]]\nname = \"exact\"\ndescription = \"Stroke\"\nsubspecialty = \"neuro\"\npriority = \"urgent\"\n\
             [[rules]]\nname = \"any-case\"\ndescription = \"(?i)avc\"\nsubspecialty = \"neuro\"\npriority = \"stat\"\n",
        );
        let described = |text: &str| StudyFacts {
            study_description: text.to_owned(),
            series_descriptions: vec![],
            ..facts()
        };
        assert_eq!(rules.classify(&described("Stroke protocol")).rule, "exact");
        assert_eq!(
            rules.classify(&described("STROKE PROTOCOL")).rule,
            "default"
        );
        assert_eq!(
            rules.classify(&described("SCANNER CEREBRAL AVC")).rule,
            "any-case"
        );
        assert_eq!(
            rules.classify(&described("suspicion d'avc")).rule,
            "any-case"
        );
    }

    #[test]
    fn the_example_rules() {
        let rules = Rules::from_config(&Config::example()).unwrap_or_else(|e| panic!("{e}"));
        let head_ct = |description: &str| StudyFacts {
            modalities: vec!["CT".to_owned()],
            body_parts: vec!["HEAD".to_owned()],
            study_description: description.to_owned(),
            series_descriptions: vec!["Head 5.0 H30s".to_owned()],
            ..facts()
        };
        let stroke = ("stroke-description", Priority::Stat, "neuro");
        assert_eq!(
            result(&rules.classify(&head_ct("TDM CEREBRALE AVC"))),
            stroke
        );
        assert_eq!(result(&rules.classify(&head_ct("Code Stroke"))), stroke);
        assert_eq!(
            result(&rules.classify(&head_ct("Pre-thrombolysis CT"))),
            stroke
        );
        let mut in_series = head_ct("TDM CEREBRALE");
        in_series
            .series_descriptions
            .push("perfusion avc".to_owned());
        assert_eq!(result(&rules.classify(&in_series)), stroke);
        // The examination the request form asks for is a description too.
        let requested = StudyFacts {
            requested_examination: "TDM cérébrale AVC".to_owned(),
            ..head_ct("TDM CEREBRALE")
        };
        assert_eq!(result(&rules.classify(&requested)), stroke);
        // The request form's flag, with nothing in the descriptions.
        let flagged = StudyFacts {
            stroke: true,
            ..head_ct("TDM CEREBRALE")
        };
        assert_eq!(
            result(&rules.classify(&flagged)),
            ("stroke-request", Priority::Stat, "neuro")
        );
        let chest = StudyFacts {
            body_parts: vec!["CHEST".to_owned()],
            study_description: "TDM THORAX".to_owned(),
            ..facts()
        };
        assert_eq!(
            result(&rules.classify(&chest)),
            ("chest-ct", Priority::Urgent, "chest")
        );
        let stat_abdomen = StudyFacts {
            urgency: Some(Priority::Stat),
            ..facts()
        };
        assert_eq!(
            result(&rules.classify(&stat_abdomen)),
            ("stat-request", Priority::Stat, "general")
        );
        assert_eq!(
            result(&rules.classify(&head_ct("TDM CEREBRALE"))),
            ("default", Priority::Routine, "general")
        );
    }

    #[test]
    fn unvalidated_bad_regex_is_an_error_naming_the_rule() {
        let mut config = Config::example();
        config.rules[0].description = Some("(?i)AVC|stroke(".to_owned());
        let error = Rules::from_config(&config).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "rules[0] (stroke-description): description \"(?i)AVC|stroke(\" is not a \
                 valid regular expression"
            )
        );
    }
}
