//! The printable report: `GET /api/studies/{uid}/report/print`, an HTML
//! page (A4, print it or save it as PDF from the browser) with the site,
//! the patient, the request, the findings of the issued text, the
//! critical-result statements, the status (a preliminary is marked so),
//! the signer and the hash of what was signed, then every addendum.
//! Whoever may read the report may print it; drafts are never printed.

use super::desk::{ReportView, VersionView};
use super::templates::{self, Content};
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

/// "20260318" as "2026-03-18"; anything else as it is.
fn dicom_date(date: &str) -> String {
    match (date.get(0..4), date.get(4..6), date.get(6..8)) {
        (Some(y), Some(m), Some(d)) if date.len() == 8 => format!("{y}-{m}-{d}"),
        _ => date.to_string(),
    }
}

fn local(ms: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => ms.to_string(),
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

fn request_of(form: &StoredForm) -> Option<Request> {
    let form: Value = serde_json::from_str(&form.form).ok()?;
    let field = |name: &str| form[name].as_str().unwrap_or_default().to_string();
    Some(Request {
        urgency: field("urgency"),
        requested_examination: field("requested_examination"),
        requesting_physician: field("requesting_physician"),
        clinical_question: field("clinical_question"),
    })
}

/// Builds the page from what the caller may read. `None` when nothing is
/// issued yet.
pub fn printable(
    report: &ReportView,
    study: &StudySummary,
    form: Option<&StoredForm>,
    zone: &TimeZone,
    now: i64,
) -> Option<Printable> {
    // The signed final, else the newest preliminary.
    let main: &VersionView = report
        .versions
        .iter()
        .rev()
        .find(|v| v.kind == VersionKind::Final)
        .or_else(|| report.versions.last())?;
    let content: Content = serde_json::from_value(main.content.clone()).ok()?;
    let template = templates::find(&content.template)?;
    let sections = template
        .sections
        .iter()
        .map(|section| SectionOut {
            title: section.title.clone(),
            rows: section
                .fields
                .iter()
                .filter_map(|field| {
                    let value = content.fields.get(&field.id)?;
                    let text = value_text(value, field.unit.as_deref());
                    (!text.is_empty()).then(|| (field.label.clone(), text))
                })
                .collect(),
        })
        .filter(|s| !s.rows.is_empty())
        .collect();
    let (status, status_label) = match report.status {
        Status::Draft | Status::Preliminary => {
            ("preliminary", "Preliminary report — not signed, may change")
        }
        Status::Final => ("final", "Final report"),
        Status::Addendum => ("final", "Final report, with addenda"),
    };
    let issued_line = match main.kind {
        VersionKind::Final => format!(
            "Signed by {} ({}) on {}.",
            main.radiologist,
            main.signed_by,
            local(main.at, zone)
        ),
        _ => format!(
            "Preliminary, issued by {} on {}; not signed.",
            main.radiologist,
            local(main.at, zone)
        ),
    };
    let addenda = report
        .versions
        .iter()
        .filter(|v| v.kind == VersionKind::Addendum)
        .map(|v| AddendumOut {
            line: format!("signed by {} on {}", v.radiologist, local(v.at, zone)),
            text: v.content["text"].as_str().unwrap_or_default().to_string(),
            content_hash: v.content_hash.clone(),
        })
        .collect();
    let interop = super::lifecycle::interop(report.status);
    Some(Printable {
        site: study.site.clone(),
        title: template.title.clone(),
        status,
        status_label,
        patient_name: person_name(&study.patient_name),
        patient_id: study.patient_id.clone(),
        birth_date: dicom_date(&study.patient_birth_date),
        sex: study.patient_sex.clone(),
        examination: study.study_description.clone(),
        accession: study.accession_number.clone(),
        study_date: dicom_date(&study.study_date),
        study_instance_uid: study.study_instance_uid.clone(),
        request: form.and_then(request_of),
        sections,
        text: content.text.clone(),
        communications: content.communications.clone(),
        issued_line,
        content_hash: main.content_hash.clone(),
        addenda,
        printed_at: local(now, zone),
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
        assert_eq!(dicom_date("20260318"), "2026-03-18");
        assert_eq!(dicom_date("2026"), "2026");
        assert_eq!(value_text(&Value::from(8), Some("mm")), "8 mm");
        assert_eq!(value_text(&Value::Null, Some("mm")), "");
    }
}
