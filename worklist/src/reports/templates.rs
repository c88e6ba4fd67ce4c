//! Report templates, in the manner of IHE MRRT and RSNA RadReport:
//! sections of typed fields (text, choice, number, date, time), each with
//! a rule applied at signing: `required` (cannot be signed empty), `warn`
//! (signed, but the answer says what was left empty) or `optional`.
//! A report's content names its template, fills its fields, and may add
//! free text.
//!
//! The templates ship inside the binary (`worklist/report-templates/*.json`), so
//! that every node offers the same ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use telerad_lang::{Said, said};

/// Longest text of one field, and of the free text, in characters: a
/// report is read by a person, and the body limit applies anyway.
pub const MAX_FIELD_CHARS: usize = 10_000;
pub const MAX_TEXT_CHARS: usize = 50_000;

const SOURCES: &[&str] = &[
    include_str!("../../report-templates/ct-head-stroke.json"),
    include_str!("../../report-templates/ct-head-trauma.json"),
    include_str!("../../report-templates/ct-pulmonary-angiography.json"),
    include_str!("../../report-templates/ct-abdomen-pelvis.json"),
    include_str!("../../report-templates/mr-brain.json"),
    include_str!("../../report-templates/free-text.json"),
];

/// A report template: sections of typed fields.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub title: String,
    /// The modality it is written for; empty for any.
    pub modality: String,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub fields: Vec<Field>,
}

/// One field of a template. Its value in a report's `fields`: text for
/// `text`, one of `options` for `choice`, a number from `min` to `max` for
/// `number`, `YYYY-MM-DD` for `date`, `HH:MM` for `time`; null or absent
/// when empty.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub id: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// The values of a `choice` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Choice,
    Number,
    Date,
    Time,
}

/// What signing does with an empty field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Required,
    Warn,
    Optional,
}

/// A report's content: its template's fields and free text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// The `id` of a template of `GET /api/report-templates`.
    pub template: String,
    /// The template's fields by `id`, each value of its field's type.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub text: String,
    /// The communication statements of the study's critical results,
    /// written by telerad when the report is issued (what an author sends
    /// here is replaced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communications: Vec<String>,
}

/// Why content does not fit its template; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContentError(pub Said);

/// Every template, in the order they are offered.
pub fn all() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        SOURCES
            .iter()
            // The sources are this crate's own files, checked by a test.
            .filter_map(|source| serde_json::from_str(source).ok())
            .collect()
    })
}

pub fn find(id: &str) -> Option<&'static Template> {
    all().iter().find(|t| t.id == id)
}

/// A template's words in French: its title, section titles, field labels
/// and the options as shown. What a report stores (ids, option values)
/// stays the template's own, so a report reads the same in any language.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    pub template: String,
    pub title: String,
    pub sections: BTreeMap<String, String>,
    pub fields: BTreeMap<String, FieldWords>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldWords {
    pub label: String,
    /// The options as shown, in the template's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

const FRENCH: &[&str] = &[
    include_str!("../../report-templates/fr/ct-head-stroke.json"),
    include_str!("../../report-templates/fr/ct-head-trauma.json"),
    include_str!("../../report-templates/fr/ct-pulmonary-angiography.json"),
    include_str!("../../report-templates/fr/ct-abdomen-pelvis.json"),
    include_str!("../../report-templates/fr/mr-brain.json"),
    include_str!("../../report-templates/fr/free-text.json"),
];

/// Every template's French words (checked whole by a test).
pub fn french() -> &'static [Translation] {
    static FRENCH_WORDS: OnceLock<Vec<Translation>> = OnceLock::new();
    FRENCH_WORDS.get_or_init(|| {
        FRENCH
            .iter()
            .filter_map(|source| serde_json::from_str(source).ok())
            .collect()
    })
}

impl Template {
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.sections.iter().flat_map(|s| s.fields.iter())
    }

    fn field(&self, id: &str) -> Option<&Field> {
        self.fields().find(|f| f.id == id)
    }

    /// The fields under `rule` that `content` leaves empty.
    pub fn unfilled(&self, content: &Content, rule: Rule) -> Vec<&str> {
        self.fields()
            .filter(|f| f.rule == rule && !filled(content.fields.get(&f.id)))
            .map(|f| f.id.as_str())
            .collect()
    }
}

fn filled(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Checks `content` against its template: every field known and of its
/// type; empty fields are allowed until signing.
pub fn check(content: &Content) -> Result<&'static Template, ContentError> {
    let template = find(&content.template).ok_or_else(|| {
        let (id, known) = (
            &content.template,
            all()
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        ContentError(said!(
            "template: unknown template {id:?} (known: {known})",
            "modèle : modèle inconnu {id:?} (connus : {known})"
        ))
    })?;
    if content.text.chars().count() > MAX_TEXT_CHARS {
        return Err(ContentError(said!(
            "text: at most {MAX_TEXT_CHARS} characters",
            "texte : au plus {MAX_TEXT_CHARS} caractères"
        )));
    }
    for (id, value) in &content.fields {
        let field = template.field(id).ok_or_else(|| {
            let template = &template.id;
            ContentError(said!(
                "fields.{id}: template {template} has no such field",
                "fields.{id} : le modèle {template} n'a pas ce champ"
            ))
        })?;
        check_value(field, value).map_err(|why| {
            ContentError(why.prefixed(&format!("fields.{id}: "), &format!("fields.{id} : ")))
        })?;
    }
    Ok(template)
}

fn check_value(field: &Field, value: &Value) -> Result<(), Said> {
    if value.is_null() {
        return Ok(());
    }
    match field.kind {
        FieldKind::Text => match value.as_str() {
            Some(s) if s.chars().count() <= MAX_FIELD_CHARS => Ok(()),
            Some(_) => Err(said!(
                "at most {MAX_FIELD_CHARS} characters",
                "au plus {MAX_FIELD_CHARS} caractères"
            )),
            None => Err(said!("must be text", "doit être du texte")),
        },
        FieldKind::Choice => match value.as_str() {
            Some(s) if field.options.iter().any(|o| o == s) => Ok(()),
            _ => {
                let options = field.options.join(", ");
                Err(said!(
                    "must be one of: {options}",
                    "doit être l'un de : {options}"
                ))
            }
        },
        FieldKind::Number => {
            let n = value
                .as_f64()
                .ok_or_else(|| said!("must be a number", "doit être un nombre"))?;
            let below = field.min.is_some_and(|min| n < min);
            let above = field.max.is_some_and(|max| n > max);
            if below || above {
                let min = field.min.map_or("-∞".into(), |m| m.to_string());
                let max = field.max.map_or("∞".into(), |m| m.to_string());
                Err(said!(
                    "must be from {min} to {max}",
                    "doit être entre {min} et {max}"
                ))
            } else {
                Ok(())
            }
        }
        FieldKind::Date => value
            .as_str()
            .and_then(|s| s.parse::<jiff::civil::Date>().ok())
            .map(|_| ())
            .ok_or_else(|| {
                said!(
                    "must be a date, YYYY-MM-DD",
                    "doit être une date AAAA-MM-JJ"
                )
            }),
        FieldKind::Time => value
            .as_str()
            .filter(|s| s.len() == 5)
            .and_then(|s| s.parse::<jiff::civil::Time>().ok())
            .map(|_| ())
            .ok_or_else(|| said!("must be a time, HH:MM", "doit être une heure HH:MM")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_all_its_words_in_french() {
        assert_eq!(french().len(), FRENCH.len(), "a translation does not parse");
        for template in all() {
            let words = french()
                .iter()
                .find(|w| w.template == template.id)
                .unwrap_or_else(|| panic!("{}: no French", template.id));
            assert!(!words.title.is_empty());
            for section in &template.sections {
                assert!(
                    words.sections.contains_key(&section.id),
                    "{}: section {}",
                    template.id,
                    section.id
                );
            }
            assert_eq!(
                words.fields.len(),
                template.fields().count(),
                "{}",
                template.id
            );
            for field in template.fields() {
                let field_words = words
                    .fields
                    .get(&field.id)
                    .unwrap_or_else(|| panic!("{}: field {}", template.id, field.id));
                assert_eq!(
                    field_words.options.len(),
                    field.options.len(),
                    "{}: options of {}",
                    template.id,
                    field.id
                );
            }
        }
    }
    use serde_json::json;
    use std::collections::HashSet;

    #[test]
    fn every_shipped_template_reads_and_is_well_formed() {
        assert_eq!(all().len(), SOURCES.len(), "a template file does not parse");
        let mut ids = HashSet::new();
        for template in all() {
            assert!(ids.insert(&template.id), "{} twice", template.id);
            let mut fields = HashSet::new();
            for field in template.fields() {
                assert!(
                    fields.insert(&field.id),
                    "{}: {} twice",
                    template.id,
                    field.id
                );
                assert_eq!(
                    field.kind == FieldKind::Choice,
                    !field.options.is_empty(),
                    "{}: {} options",
                    template.id,
                    field.id
                );
            }
            assert!(
                template.fields().any(|f| f.rule == Rule::Required),
                "{}: nothing required",
                template.id
            );
        }
        for needed in [
            "ct-head-stroke",
            "ct-head-trauma",
            "ct-pulmonary-angiography",
            "ct-abdomen-pelvis",
            "mr-brain",
        ] {
            assert!(find(needed).is_some(), "{needed} missing");
        }
    }

    fn content(fields: Value) -> Content {
        serde_json::from_value(json!({"template": "ct-head-stroke", "fields": fields}))
            .expect("content")
    }

    #[test]
    fn values_are_checked_by_type_and_errors_name_the_field() {
        let ok = content(json!({
            "haemorrhage": "absent", "aspects": 9, "territory": "left MCA", "occlusion": null
        }));
        assert!(check(&ok).is_ok());
        for (fields, expected) in [
            (
                json!({"haemorrhage": "maybe"}),
                "fields.haemorrhage: must be one of",
            ),
            (
                json!({"aspects": 11}),
                "fields.aspects: must be from 0 to 10",
            ),
            (json!({"aspects": "9"}), "fields.aspects: must be a number"),
            (
                json!({"colour": "red"}),
                "fields.colour: template ct-head-stroke has no such field",
            ),
            (json!({"territory": 3}), "fields.territory: must be text"),
        ] {
            let error = check(&content(fields)).expect_err("refused");
            assert!(error.0.en().starts_with(expected), "{error}");
        }
        let unknown = Content {
            template: "ct-knee".into(),
            fields: BTreeMap::new(),
            text: String::new(),
            communications: Vec::new(),
        };
        assert!(
            check(&unknown)
                .expect_err("refused")
                .0
                .en()
                .starts_with("template: unknown")
        );
    }

    #[test]
    fn signing_rules_list_what_is_empty() {
        let template = find("ct-head-stroke").expect("template");
        let partial = content(json!({"haemorrhage": "absent", "conclusion": "  "}));
        assert_eq!(
            template.unfilled(&partial, Rule::Required),
            ["acquisitions", "early_ischaemia", "conclusion"]
        );
        assert_eq!(
            template.unfilled(&partial, Rule::Warn),
            ["aspects", "occlusion"]
        );
    }
}
