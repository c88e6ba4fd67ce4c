//! The printable report: `GET /api/studies/{uid}/report/print`, an HTML
//! page (A4, print it or save it as PDF from the browser) with the site,
//! the patient, the request, the findings of the issued text, the
//! critical-result statements, the status (a preliminary is marked so),
//! the signer and the hash of what was signed, then every addendum.
//! Whoever may read the report may print it; drafts are never printed.

use super::desk::{ReportView, VersionView};
use super::print_words::PrintWords;
use super::templates::{self, Content, Translation};
use askama::Template;
use jiff::tz::TimeZone;
use serde_json::Value;
use telerad_store::forms::StoredForm;
use telerad_store::index::StudySummary;
use telerad_store::reports::{Status, VersionKind};

pub const STYLESHEET: &str = include_str!("../../assets/print.css");

pub struct Request {
    pub urgency: String,
    pub requested_examination: String,
    pub requesting_physician: String,
    pub clinical_question: String,
}

pub struct SectionOut {
    pub title: String,
    /// (label, value with its unit)
    pub rows: Vec<(String, String)>,
}

pub struct AddendumOut {
    pub line: String,
    pub text: String,
    pub content_hash: String,
}

#[derive(Template)]
#[template(path = "report.html")]
pub struct Printable {
    /// The words around the content, in the page's language.
    pub words: &'static PrintWords,
    pub site: String,
    pub title: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub patient_name: String,
    pub patient_id: String,
    pub birth_date: String,
    pub sex: String,
    pub examination: String,
    pub accession: String,
    pub study_date: String,
    pub study_instance_uid: String,
    pub request: Option<Request>,
    pub sections: Vec<SectionOut>,
    pub text: String,
    pub communications: Vec<String>,
    pub issued_line: String,
    pub content_hash: String,
    pub addenda: Vec<AddendumOut>,
    pub printed_at: String,
    pub fhir: &'static str,
    pub hl7: &'static str,
}

/// "Doe^Jane" as people write it: "Doe Jane".
fn person_name(dicom: &str) -> String {
    dicom
        .split('^')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// "20260318" as the language writes dates; anything else as it is.
fn dicom_date(date: &str, words: &PrintWords) -> String {
    match jiff::civil::Date::strptime("%Y%m%d", date) {
        Ok(day) if date.len() == 8 => day.strftime(words.date_format).to_string(),
        _ => date.to_string(),
    }
}

fn local(ms: i64, zone: &TimeZone, words: &PrintWords) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime(words.time_format)
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The template's words in the printed language: its translation's where
/// there is one, else its own.
struct Wording<'a> {
    template: &'a templates::Template,
    translation: Option<&'a Translation>,
}

impl Wording<'_> {
    fn title(&self) -> String {
        self.translation
            .map_or(&self.template.title, |t| &t.title)
            .clone()
    }

    fn section(&self, section: &templates::Section) -> String {
        self.translation
            .and_then(|t| t.sections.get(&section.id))
            .unwrap_or(&section.title)
            .clone()
    }

    fn label(&self, field: &templates::Field) -> String {
        self.translation
            .and_then(|t| t.fields.get(&field.id))
            .map_or(&field.label, |w| &w.label)
            .clone()
    }

    /// A choice's value as shown: the option at the same place in the
    /// translation.
    fn value(&self, field: &templates::Field, value: &Value) -> Value {
        let shown = value.as_str().and_then(|chosen| {
            let at = field.options.iter().position(|o| o == chosen)?;
            self.translation?.fields.get(&field.id)?.options.get(at)
        });
        shown.map_or_else(|| value.clone(), |s| Value::String(s.clone()))
    }
}

fn value_text(value: &Value, unit: Option<&str>) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match unit {
        Some(unit) if !text.is_empty() => format!("{text} {unit}"),
        _ => text,
    }
}

fn request_of(form: &StoredForm, words: &PrintWords) -> Option<Request> {
    let form: Value = serde_json::from_str(&form.form).ok()?;
    let field = |name: &str| form[name].as_str().unwrap_or_default().to_string();
    Some(Request {
        urgency: words.urgency(&field("urgency")).to_string(),
        requested_examination: field("requested_examination"),
        requesting_physician: field("requesting_physician"),
        clinical_question: field("clinical_question"),
    })
}

/// Builds the page from what the caller may read, in `lang`. `None` when
/// nothing is issued yet.
pub fn printable(
    report: &ReportView,
    study: &StudySummary,
    form: Option<&StoredForm>,
    (zone, now): (&TimeZone, i64),
    lang: telerad_lang::Lang,
) -> Option<Printable> {
    let words = PrintWords::of(lang);
    // The signed final, else the newest preliminary.
    let main: &VersionView = report
        .versions
        .iter()
        .rev()
        .find(|v| v.kind == VersionKind::Final)
        .or_else(|| report.versions.last())?;
    let content: Content = serde_json::from_value(main.content.clone()).ok()?;
    let template = templates::find(&content.template)?;
    let wording = Wording {
        template,
        translation: match lang {
            telerad_lang::Lang::Fr => templates::french()
                .iter()
                .find(|t| t.template == template.id),
            telerad_lang::Lang::En => None,
        },
    };
    let sections = template
        .sections
        .iter()
        .map(|section| SectionOut {
            title: wording.section(section),
            rows: section
                .fields
                .iter()
                .filter_map(|field| {
                    let value = wording.value(field, content.fields.get(&field.id)?);
                    let text = value_text(&value, field.unit.as_deref());
                    (!text.is_empty()).then(|| (wording.label(field), text))
                })
                .collect(),
        })
        .filter(|s| !s.rows.is_empty())
        .collect();
    let (status, status_label) = match report.status {
        Status::Draft | Status::Preliminary => ("preliminary", words.preliminary),
        Status::Final => ("final", words.final_report),
        Status::Addendum => ("final", words.final_with_addenda),
    };
    let at = local(main.at, zone, words);
    let issued_line = match main.kind {
        VersionKind::Final => words.signed(&main.radiologist, &main.signed_by, &at),
        _ => words.issued(&main.radiologist, &at),
    };
    let addenda = report
        .versions
        .iter()
        .filter(|v| v.kind == VersionKind::Addendum)
        .map(|v| AddendumOut {
            line: words.addendum_signed(&v.radiologist, &local(v.at, zone, words)),
            text: v.content["text"].as_str().unwrap_or_default().to_string(),
            content_hash: v.content_hash.clone(),
        })
        .collect();
    let interop = super::lifecycle::interop(report.status);
    Some(Printable {
        words,
        site: study.site.clone(),
        title: wording.title(),
        status,
        status_label,
        patient_name: person_name(&study.patient_name),
        patient_id: study.patient_id.clone(),
        birth_date: dicom_date(&study.patient_birth_date, words),
        sex: study.patient_sex.clone(),
        examination: study.study_description.clone(),
        accession: study.accession_number.clone(),
        study_date: dicom_date(&study.study_date, words),
        study_instance_uid: study.study_instance_uid.clone(),
        request: form.and_then(|form| request_of(form, words)),
        sections,
        text: content.text.clone(),
        communications: content.communications.clone(),
        issued_line,
        content_hash: main.content_hash.clone(),
        addenda,
        printed_at: local(now, zone, words),
        fhir: interop.fhir,
        hl7: interop.hl7v2.unwrap_or("-"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicom_values_read_as_people_write_them() {
        assert_eq!(person_name("DOE^JANE^^"), "DOE JANE");
        assert_eq!(
            dicom_date("20260318", &super::super::print_words::EN),
            "2026-03-18"
        );
        assert_eq!(
            dicom_date("20260318", &super::super::print_words::FR),
            "18/03/2026"
        );
        assert_eq!(dicom_date("2026", &super::super::print_words::FR), "2026");
        assert_eq!(
            dicom_date("20261399", &super::super::print_words::FR),
            "20261399"
        );
        assert_eq!(value_text(&Value::from(8), Some("mm")), "8 mm");
        assert_eq!(value_text(&Value::Null, Some("mm")), "");
    }
}
