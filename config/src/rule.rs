//! `[[rules]]`: how a complete study is classified, as the subspecialty
//! that should read it and its priority.
//!
//! Rules are tried in order and the first that matches wins. Every matcher
//! is optional (left out, it matches anything) and every matcher given
//! must match. When no rule matches, the study is `general` and `routine`:
//! the router adds that default rule itself, so `[[rules]]` may be empty.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Config;
use crate::priority::Priority;
use crate::problem::Problem;
use crate::radiologist::{is_subspecialty, unknown_site, unknown_subspecialty};
use crate::unread::{self, Unread};

/// The name the router gives its own last rule (general, routine); a
/// configured rule may not take it, so that "default" in a log always
/// means that no configured rule matched.
pub const DEFAULT_RULE_NAME: &str = "default";

/// One routing rule: matchers, then the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in logs and on the worklist as the reason for a routing.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) searched for in the study
    /// description, every series description and the requested procedure
    /// description; it matches if found in any of them. Case matters unless
    /// the pattern starts with `(?i)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the request form is flagged as a suspected stroke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stroke: Option<bool>,
    /// The sending site's name. One site per rule: a rule for two sites is
    /// written twice, which keeps each rule readable on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// A modality code ("CT", "MR") that must be among the study's
    /// modalities; case does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    /// A Body Part Examined value ("HEAD", "CHEST") that must be among the
    /// study's; case does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    /// The urgency written on the request form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Priority>,
    /// Result: the subspecialty that should read the study.
    pub subspecialty: String,
    /// Result: how soon it must be read.
    pub priority: Priority,
}

impl RuleConfig {
    /// Whether the rule has no matcher, and so matches every study.
    pub fn matches_everything(&self) -> bool {
        self.description.is_none()
            && self.stroke.is_none()
            && self.site.is_none()
            && self.modality.is_none()
            && self.body_part.is_none()
            && self.urgency.is_none()
    }
}

/// What is wrong with `pattern` as a rule's description regex, on one
/// line, or `None` if it compiles.
pub fn description_regex_error(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("an empty pattern matches every study: remove the key instead".to_owned());
    }
    let error = regex::Regex::new(pattern).err()?;
    // The regex crate draws the position under a copy of the pattern, over
    // several lines; a problem list wants one line, so keep its verdict.
    let text = error.to_string();
    let reason = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.lines().collect::<Vec<_>>().join(" "), str::to_owned);
    Some(format!(
        "{pattern:?} is not a valid regular expression: {reason}"
    ))
}

/// The problems of `[[rules]]`.
pub(crate) fn problems(config: &Config, unread: &Unread) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem::new(path, message));
    let mut names: HashMap<&str, usize> = HashMap::new();
    // A rule that could not be read still follows the ones before it.
    let last = unread
        .len_in_file(unread::RULES, config.rules.len())
        .saturating_sub(1);
    for (read, rule) in config.rules.iter().enumerate() {
        let i = unread.index(unread::RULES, read);
        let path = format!("rules[{i}]");
        if rule.name.trim().is_empty() {
            report(
                format!("{path}.name"),
                "must not be empty: the name is shown as the reason for a routing".to_owned(),
            );
        } else if rule.name == DEFAULT_RULE_NAME {
            report(
                format!("{path}.name"),
                "\"default\" is the name of the built-in last rule (general, routine): \
                 choose another name"
                    .to_owned(),
            );
        } else if let Some(first) = names.get(rule.name.as_str()) {
            report(
                format!("{path}.name"),
                format!(
                    "rule name {:?} is already used by rules[{first}]: names must be unique",
                    rule.name
                ),
            );
        } else {
            names.insert(&rule.name, i);
        }
        if let Some(message) = rule
            .description
            .as_deref()
            .and_then(description_regex_error)
        {
            report(format!("{path}.description"), message);
        }
        if let Some(site) = &rule.site
            && let Some(message) = unknown_site(config, unread, site)
        {
            report(format!("{path}.site"), message);
        }
        for (key, value) in [("modality", &rule.modality), ("body_part", &rule.body_part)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                report(
                    format!("{path}.{key}"),
                    "is empty, which no study matches: give a value or remove the key".to_owned(),
                );
            }
        }
        if !is_subspecialty(&rule.subspecialty) {
            report(
                format!("{path}.subspecialty"),
                unknown_subspecialty(&rule.subspecialty),
            );
        }
        if rule.matches_everything() && i < last {
            report(
                path,
                format!(
                    "has no matcher, so it matches every study and the rules after it \
                     (rules[{}] to rules[{last}]) can never match: give it a matcher or \
                     move it last",
                    i + 1
                ),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radiologist::check::{assert_one, parse_problem, paths, problems};

    fn rule(name: &str, body: &str) -> String {
        format!(
            "[[rules]]\nname = \"{name}\"\n{body}\nsubspecialty = \"neuro\"\npriority = \"stat\"\n"
        )
    }

    #[test]
    fn rules_after_a_broken_one_keep_their_place() {
        let text = format!(
            "{}{}{}{}",
            rule("a", "stroke = \"yes\""),
            rule("b", ""),
            rule("b", "modality = \"CT\""),
            rule("c", "modality = \"\""),
        );
        let problems = problems(&text);
        assert_eq!(
            paths(&problems),
            [
                "rules[0].stroke",
                "rules[1]",
                "rules[2].name",
                "rules[3].modality"
            ],
            "{problems:#?}"
        );
        assert!(
            problems[1].message.contains("(rules[2] to rules[3])"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].message.contains("already used by rules[1]"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn valid_rules_have_no_problem() {
        let text = format!(
            "{}{}{}",
            rule("stroke", "description = \"(?i)AVC|stroke\""),
            rule(
                "flag",
                "stroke = true\nsite = \"ch-a\"\nmodality = \"CT\"\nbody_part = \"HEAD\"\nurgency = \"urgent\""
            ),
            rule("everything-else", "")
        );
        assert_eq!(problems(&text), vec![]);
    }

    #[test]
    fn bad_regex_is_reported_with_the_regex_error() {
        assert_one(
            &rule("stroke", "description = \"(?i)AVC|stroke(\""),
            "rules[0].description",
            "is not a valid regular expression: unclosed group",
        );
        assert_one(
            &rule("stroke", "description = \"\""),
            "rules[0].description",
            "an empty pattern matches every study",
        );
    }

    #[test]
    fn references_and_values_are_checked() {
        assert_one(
            &rule("r", "site = \"ch-z\""),
            "rules[0].site",
            "no site is named \"ch-z\"",
        );
        assert_one(
            &rule("r", "modality = \"\""),
            "rules[0].modality",
            "is empty",
        );
        assert_one(
            &rule("r", "body_part = \" \""),
            "rules[0].body_part",
            "is empty",
        );
        assert_one(
            "[[rules]]\nname = \"r\"\nstroke = true\nsubspecialty = \"heart\"\npriority = \"stat\"\n",
            "rules[0].subspecialty",
            "\"heart\" is not a known subspecialty",
        );
    }

    #[test]
    fn names_are_unique_and_not_default() {
        let text = format!(
            "{}{}",
            rule("a", "stroke = true"),
            rule("a", "stroke = false")
        );
        assert_one(
            &text,
            "rules[1].name",
            "rule name \"a\" is already used by rules[0]",
        );
        assert_one(
            &rule("default", "stroke = true"),
            "rules[0].name",
            "built-in last rule",
        );
        assert_one(
            &rule("", "stroke = true"),
            "rules[0].name",
            "must not be empty",
        );
    }

    #[test]
    fn rule_without_matcher_must_be_last() {
        let text = format!(
            "{}{}{}",
            rule("all", ""),
            rule("b", "stroke = true"),
            rule("c", "stroke = false")
        );
        let problems = problems(&text);
        assert_eq!(paths(&problems), ["rules[0]"]);
        assert!(
            problems[0]
                .message
                .contains("(rules[1] to rules[2]) can never match")
        );
    }

    #[test]
    fn bad_priority_and_unknown_keys_are_parse_errors_at_their_path() {
        let problem = parse_problem(
            "[[rules]]\nname = \"r\"\nsubspecialty = \"neuro\"\npriority = \"asap\"\n",
        );
        assert_eq!(problem.path, "rules[0].priority");
        assert!(
            problem.message.contains("`stat`, `urgent`, `routine`"),
            "{problem}"
        );
        let problem = parse_problem(&rule("r", "urgency = \"STAT\""));
        assert_eq!(problem.path, "rules[0].urgency");
        let problem = parse_problem(&rule("r", "modalities = [\"CT\"]"));
        assert_eq!(problem.path, "rules[0].modalities");
    }

    #[test]
    fn regex_error_is_one_line_with_the_reason() {
        assert_eq!(description_regex_error("(?i)AVC|stroke"), None);
        let message = description_regex_error("(?i)AVC|stroke(").unwrap_or_default();
        assert_eq!(
            message,
            "\"(?i)AVC|stroke(\" is not a valid regular expression: unclosed group"
        );
        assert!(description_regex_error("").is_some());
    }
}
