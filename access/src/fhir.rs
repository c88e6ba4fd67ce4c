//! The audit trail as FHIR R4 `AuditEvent` resources, after the IHE BALP
//! (Basic Audit Log Patterns) profiles: a read of a study is a RESTful
//! `read`, a list a `search-type`, a change an `update`, a login a DICOM
//! "User Authentication" event, received instances "DICOM Instances
//! Transferred". Each record's chain position and hash go with it as
//! extensions' worth of identifiers, so an export can be checked against
//! the database.

use serde_json::{Value, json};
use telerad_store::audit::{Outcome, StoredRecord};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";

/// (type, subtype, action) of an audit action.
fn classify(action: &str) -> (Value, Value, &'static str) {
    let rest =
        json!({ "system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation" });
    let interaction = |code: &str| json!({ "system": RESTFUL, "code": code });
    match action {
        "login" => (
            json!({ "system": DCM, "code": "110114", "display": "User Authentication" }),
            json!({ "system": DCM, "code": "110122", "display": "Login" }),
            "E",
        ),
        "logout" => (
            json!({ "system": DCM, "code": "110114", "display": "User Authentication" }),
            json!({ "system": DCM, "code": "110123", "display": "Logout" }),
            "E",
        ),
        "dicom.store" => (
            json!({ "system": DCM, "code": "110104", "display": "DICOM Instances Transferred" }),
            json!({ "system": DCM, "code": "110107", "display": "Import" }),
            "C",
        ),
        "dicom.associate" | "token.use" | "csrf" => (
            json!({ "system": DCM, "code": "110113", "display": "Security Alert" }),
            json!({ "system": DCM, "code": "110126", "display": "Node Authentication" }),
            "E",
        ),
        a if a.ends_with(".list")
            || a == "event.list_failed"
            || a.starts_with("dicomweb.search") =>
        {
            (rest, interaction("search-type"), "E")
        }
        a if a.ends_with(".read")
            || matches!(
                a,
                "report.print" | "report.pdf" | "dicomweb.retrieve" | "dicomweb.metadata"
            ) =>
        {
            (rest, interaction("read"), "R")
        }
        a if a.starts_with("user.create") || a.starts_with("token.create") => {
            (rest, interaction("create"), "C")
        }
        _ => (rest, interaction("update"), "U"),
    }
}

/// One record as an `AuditEvent`.
pub fn audit_event(record: &StoredRecord) -> Value {
    let (kind, subtype, action) = classify(&record.action);
    let outcome = match record.outcome {
        Outcome::Success => "0",
        Outcome::Refused => "4",
        Outcome::Failed => "8",
    };
    let mut entities = Vec::new();
    if let Some(patient) = record.patient_id.as_deref().filter(|p| !p.is_empty()) {
        entities.push(json!({
            "what": { "identifier": { "value": patient } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                      "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role",
                      "code": "1", "display": "Patient" },
        }));
    }
    let mut what = json!({ "display": record.object });
    if let Some(study) = &record.study_uid {
        what = json!({
            "identifier": { "system": "urn:dicom:uid", "value": format!("urn:oid:{study}") },
            "display": record.object,
        });
    }
    entities.push(json!({
        "what": what,
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                  "code": "2", "display": "System Object" },
        "detail": [
            { "type": "telerad-action", "valueString": record.action },
            { "type": "telerad-detail", "valueString": record.detail },
        ],
    }));
    let mut agent = json!({
        "who": { "identifier": { "value": record.actor } },
        "requestor": true,
        "network": { "address": record.source, "type": "2" },
    });
    if !record.role.is_empty() {
        agent["role"] = json!([{ "text": record.role }]);
    }
    if !record.sites.is_empty() {
        agent["policy"] = json!(record.sites.split(',').collect::<Vec<_>>());
    }
    json!({
        "resourceType": "AuditEvent",
        "id": record.seq.to_string(),
        "type": kind,
        "subtype": [subtype],
        "action": action,
        "recorded": telerad_store::time::to_rfc3339(record.at),
        "outcome": outcome,
        "outcomeDesc": record.outcome.as_str(),
        "agent": [agent],
        "source": {
            "observer": { "display": "telerad" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                       "code": "4", "display": "Application Server" }],
        },
        "entity": entities,
        "meta": { "tag": [
            { "system": "urn:telerad:audit-chain:seq", "code": record.seq.to_string() },
            { "system": "urn:telerad:audit-chain:hash", "code": record.hash },
        ] },
    })
}

/// A page of records as a FHIR `Bundle` (searchset), with its next page.
pub fn bundle(records: &[StoredRecord], next: Option<String>) -> Value {
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": records.iter().map(|r| json!({ "resource": audit_event(r) })).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        bundle["link"] = json!([{ "relation": "next", "url": next }]);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(action: &str, outcome: Outcome) -> StoredRecord {
        StoredRecord {
            seq: 7,
            at: 1_774_749_600_000,
            actor: "clin-a".into(),
            role: "clinician".into(),
            sites: "site-a,site-b".into(),
            action: action.into(),
            object: "study/1.2.3".into(),
            study_uid: Some("1.2.3".into()),
            patient_id: Some("P1".into()),
            outcome,
            source: "10.0.0.7".into(),
            detail: "{}".into(),
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        }
    }

    #[test]
    fn a_study_read_is_a_restful_read_with_the_patient_and_the_study() {
        let event = audit_event(&stored("study.read", Outcome::Success));
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["type"]["code"], "rest");
        assert_eq!(event["subtype"][0]["code"], "read");
        assert_eq!(event["action"], "R");
        assert_eq!(event["outcome"], "0");
        assert_eq!(event["recorded"], "2026-03-29T02:00:00Z");
        assert_eq!(event["agent"][0]["who"]["identifier"]["value"], "clin-a");
        assert_eq!(event["agent"][0]["network"]["address"], "10.0.0.7");
        assert_eq!(event["agent"][0]["policy"][1], "site-b");
        assert_eq!(event["entity"][0]["what"]["identifier"]["value"], "P1");
        assert_eq!(event["entity"][0]["role"]["code"], "1");
        assert_eq!(
            event["entity"][1]["what"]["identifier"]["value"],
            "urn:oid:1.2.3"
        );
        assert_eq!(event["meta"]["tag"][1]["code"], "a".repeat(64));
    }

    #[test]
    fn logins_lists_and_refusals_map_to_their_codes() {
        let login = audit_event(&stored("login", Outcome::Refused));
        assert_eq!(login["type"]["code"], "110114");
        assert_eq!(login["subtype"][0]["code"], "110122");
        assert_eq!(login["outcome"], "4");
        let list = audit_event(&stored("study.list", Outcome::Success));
        assert_eq!(list["subtype"][0]["code"], "search-type");
        let assign = audit_event(&stored("study.assign", Outcome::Failed));
        assert_eq!(
            (assign["action"].as_str(), assign["outcome"].as_str()),
            (Some("U"), Some("8"))
        );
        let bundle = bundle(
            &[stored("study.read", Outcome::Success)],
            Some("/next".into()),
        );
        assert_eq!(bundle["entry"][0]["resource"]["id"], "7");
        assert_eq!(bundle["link"][0]["url"], "/next");
    }
}
