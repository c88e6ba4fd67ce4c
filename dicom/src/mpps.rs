//! Modality Performed Procedure Step (PS3.4 Annex F): what a modality says
//! it did. A step is created IN PROGRESS (N-CREATE) and set COMPLETED or
//! DISCONTINUED (N-SET) with the series and instances it produced; telerad
//! reads that list to know when a study has all its images, rather than
//! guessing from a quiet period.
//!
//! This module reads and merges the data sets; keeping them, and what a
//! completed step does to its study, is `telerad-store`'s.

use crate::uid::{trim_uid, validate_uid};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use std::collections::BTreeSet;

/// Modality Performed Procedure Step SOP Class (PS3.4 F.7.1).
pub const MODALITY_PERFORMED_PROCEDURE_STEP: &str = "1.2.840.10008.3.1.2.3.3";

/// A step names at most this many instances: a 3,000-slice study is far
/// below it, and a data set claiming more is refused rather than indexed.
pub const MAX_REFERENCES: usize = 100_000;

/// Performed Procedure Step Status (0040,0252), PS3.3 C.4.14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    InProgress,
    Completed,
    Discontinued,
}

impl StepStatus {
    pub fn parse(value: &str) -> Option<StepStatus> {
        match value.trim() {
            "IN PROGRESS" => Some(StepStatus::InProgress),
            "COMPLETED" => Some(StepStatus::Completed),
            "DISCONTINUED" => Some(StepStatus::Discontinued),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::InProgress => "IN PROGRESS",
            StepStatus::Completed => "COMPLETED",
            StepStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// A step COMPLETED or DISCONTINUED may no longer be changed (PS3.4
    /// F.7.2.2.2).
    pub fn is_final(self) -> bool {
        self != StepStatus::InProgress
    }
}

/// One instance a step says it produced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
}

/// What telerad acts on and shows of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerformedStep {
    pub status: StepStatus,
    /// The Study Instance UID of the first scheduled step (0040,0270), when
    /// the modality gave one.
    pub study_instance_uid: Option<String>,
    pub accession_number: String,
    pub step_id: String,
    pub description: String,
    pub modality: String,
    pub patient_id: String,
    /// Start and end, as the modality wrote them (DA + TM, local time).
    pub started: String,
    pub ended: String,
    /// Every instance of the Performed Series Sequence (0040,0340), each
    /// once, in UID order.
    pub references: Vec<Reference>,
}

/// Why a step's data set is refused; each maps to a PS3.7 Annex C status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MppsError {
    #[error("malformed data set: {0}")]
    Malformed(String),
    #[error("{0} is missing")]
    MissingAttribute(&'static str),
    #[error("{attribute}: {why}")]
    InvalidValue {
        attribute: &'static str,
        why: String,
    },
    #[error("the step names more than {MAX_REFERENCES} instances")]
    TooManyReferences,
}

/// Reads a data set received on an MPPS presentation context (an
/// uncompressed transfer syntax), through [`crate::inspect::read_small`].
pub fn read(data_set: &[u8], transfer_syntax_uid: &str) -> Result<InMemDicomObject, MppsError> {
    crate::inspect::read_small(data_set, transfer_syntax_uid)
        .map_err(|e| MppsError::Malformed(e.to_string()))
}

/// Applies an N-SET's modifications: each attribute it carries replaces the
/// stored one whole, sequences included (PS3.4 F.7.2.2, PS3.7 10.1.1).
pub fn apply_set(stored: &mut InMemDicomObject, changes: InMemDicomObject) {
    for element in changes {
        stored.put(element);
    }
}

pub fn to_json(step: &InMemDicomObject) -> Result<String, MppsError> {
    dicom_json::to_string(step).map_err(|e| MppsError::Malformed(e.to_string()))
}

pub fn from_json(json: &str) -> Result<InMemDicomObject, MppsError> {
    dicom_json::from_str(json).map_err(|e| MppsError::Malformed(e.to_string()))
}

fn text(object: &InMemDicomObject, tag: Tag) -> String {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
        .unwrap_or_default()
}

fn items(object: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .unwrap_or(&[])
}

fn checked_uid(value: &str, attribute: &'static str) -> Result<String, MppsError> {
    let value = trim_uid(value);
    validate_uid(value)
        .map(str::to_string)
        .map_err(|e| MppsError::InvalidValue {
            attribute,
            why: e.to_string(),
        })
}

/// What a step's data set says, checked: a status PS3.3 knows, UIDs that
/// are UIDs, a bounded list of instances.
pub fn step(object: &InMemDicomObject) -> Result<PerformedStep, MppsError> {
    const STATUS: &str = "Performed Procedure Step Status (0040,0252)";
    if object
        .element_opt(tags::PERFORMED_PROCEDURE_STEP_STATUS)
        .ok()
        .flatten()
        .is_none()
    {
        return Err(MppsError::MissingAttribute(STATUS));
    }
    let status_text = text(object, tags::PERFORMED_PROCEDURE_STEP_STATUS);
    let status = StepStatus::parse(&status_text).ok_or_else(|| MppsError::InvalidValue {
        attribute: STATUS,
        why: format!("{status_text:?} is not IN PROGRESS, COMPLETED or DISCONTINUED"),
    })?;
    let scheduled = items(object, tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE);
    let study_instance_uid = match scheduled
        .first()
        .map(|item| text(item, tags::STUDY_INSTANCE_UID))
        .filter(|uid| !uid.is_empty())
    {
        Some(uid) => Some(checked_uid(&uid, "Study Instance UID (0020,000D)")?),
        None => None,
    };
    let accession_number = scheduled
        .first()
        .map(|item| text(item, tags::ACCESSION_NUMBER))
        .unwrap_or_default();
    let mut references = BTreeSet::new();
    for series in items(object, tags::PERFORMED_SERIES_SEQUENCE) {
        let series_uid = checked_uid(
            &text(series, tags::SERIES_INSTANCE_UID),
            "Series Instance UID (0020,000E)",
        )?;
        let listed = items(series, tags::REFERENCED_IMAGE_SEQUENCE)
            .iter()
            .chain(items(
                series,
                tags::REFERENCED_NON_IMAGE_COMPOSITE_SOP_INSTANCE_SEQUENCE,
            ));
        for instance in listed {
            let sop = checked_uid(
                &text(instance, tags::REFERENCED_SOP_INSTANCE_UID),
                "Referenced SOP Instance UID (0008,1155)",
            )?;
            references.insert(Reference {
                series_instance_uid: series_uid.clone(),
                sop_instance_uid: sop,
            });
            if references.len() > MAX_REFERENCES {
                return Err(MppsError::TooManyReferences);
            }
        }
    }
    let when = |date, time| {
        let (date, time) = (text(object, date), text(object, time));
        format!("{date} {time}").trim().to_string()
    };
    Ok(PerformedStep {
        status,
        study_instance_uid,
        accession_number,
        step_id: text(object, tags::PERFORMED_PROCEDURE_STEP_ID),
        description: text(object, tags::PERFORMED_PROCEDURE_STEP_DESCRIPTION),
        modality: text(object, tags::MODALITY),
        patient_id: text(object, tags::PATIENT_ID),
        started: when(
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            tags::PERFORMED_PROCEDURE_STEP_START_TIME,
        ),
        ended: when(
            tags::PERFORMED_PROCEDURE_STEP_END_DATE,
            tags::PERFORMED_PROCEDURE_STEP_END_TIME,
        ),
        references: references.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

    fn cs(tag: Tag, value: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::CS, PrimitiveValue::from(value))
    }

    fn ui(tag: Tag, value: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::UI, PrimitiveValue::from(value))
    }

    fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    }

    fn series(uid: &str, instances: &[&str]) -> InMemDicomObject {
        let images = instances
            .iter()
            .map(|sop| {
                InMemDicomObject::from_element_iter([
                    ui(tags::REFERENCED_SOP_CLASS_UID, "1.2.840.10008.5.1.4.1.1.2"),
                    ui(tags::REFERENCED_SOP_INSTANCE_UID, sop),
                ])
            })
            .collect();
        InMemDicomObject::from_element_iter([
            ui(tags::SERIES_INSTANCE_UID, uid),
            sequence(tags::REFERENCED_IMAGE_SEQUENCE, images),
        ])
    }

    fn encoded(object: &InMemDicomObject) -> Vec<u8> {
        let ts = TransferSyntaxRegistry.get(EXPLICIT_LE).unwrap();
        let mut out = Vec::new();
        object.write_dataset_with_ts(&mut out, ts).unwrap();
        out
    }

    fn created() -> InMemDicomObject {
        InMemDicomObject::from_element_iter([
            sequence(
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([
                    ui(tags::STUDY_INSTANCE_UID, "1.2.3.4"),
                    DataElement::new(tags::ACCESSION_NUMBER, VR::SH, PrimitiveValue::from("A1")),
                ])],
            ),
            cs(tags::MODALITY, "CT"),
            cs(tags::PERFORMED_PROCEDURE_STEP_STATUS, "IN PROGRESS"),
            sequence(tags::PERFORMED_SERIES_SEQUENCE, vec![]),
        ])
    }

    #[test]
    fn a_created_step_reads_back_in_progress_with_its_study() {
        let object = read(&encoded(&created()), EXPLICIT_LE).unwrap();
        let step = step(&object).unwrap();
        assert_eq!(step.status, StepStatus::InProgress);
        assert_eq!(step.study_instance_uid.as_deref(), Some("1.2.3.4"));
        assert_eq!(step.accession_number, "A1");
        assert_eq!(step.modality, "CT");
        assert!(step.references.is_empty());
    }

    #[test]
    fn a_set_replaces_the_series_and_the_status_and_survives_json() {
        let mut stored = created();
        let changes = InMemDicomObject::from_element_iter([
            cs(tags::PERFORMED_PROCEDURE_STEP_STATUS, "COMPLETED"),
            sequence(
                tags::PERFORMED_SERIES_SEQUENCE,
                vec![series(
                    "1.2.3.4.1",
                    &["1.2.3.4.1.2", "1.2.3.4.1.1", "1.2.3.4.1.1"],
                )],
            ),
        ]);
        apply_set(&mut stored, changes);
        let back = from_json(&to_json(&stored).unwrap()).unwrap();
        let step = step(&back).unwrap();
        assert_eq!(step.status, StepStatus::Completed);
        assert_eq!(step.study_instance_uid.as_deref(), Some("1.2.3.4"));
        let sops: Vec<_> = step
            .references
            .iter()
            .map(|r| r.sop_instance_uid.as_str())
            .collect();
        assert_eq!(sops, ["1.2.3.4.1.1", "1.2.3.4.1.2"], "each instance once");
    }

    #[test]
    fn bad_statuses_and_uids_are_named() {
        let mut object = created();
        object.put(cs(tags::PERFORMED_PROCEDURE_STEP_STATUS, "DONE"));
        let e = step(&object).unwrap_err();
        assert!(e.to_string().contains("(0040,0252)"), "{e}");
        object.remove_element(tags::PERFORMED_PROCEDURE_STEP_STATUS);
        assert!(matches!(step(&object), Err(MppsError::MissingAttribute(_))));
        let mut object = created();
        object.put(sequence(
            tags::PERFORMED_SERIES_SEQUENCE,
            vec![series("1.2.3.4.1", &["1.2.x"])],
        ));
        let e = step(&object).unwrap_err();
        assert!(e.to_string().contains("(0008,1155)"), "{e}");
    }

    #[test]
    fn truncated_or_lying_data_sets_are_malformed_not_a_panic() {
        let bytes = encoded(&created());
        for cut in [1, 7, bytes.len() / 2, bytes.len() - 1] {
            assert!(read(&bytes[..cut], EXPLICIT_LE).is_err(), "cut at {cut}");
        }
        // A string element claiming 4 GB.
        let mut lying = bytes.clone();
        lying.extend_from_slice(&[0x40, 0x00, 0x54, 0x02, b'L', b'O', 0xFF, 0xFE]);
        assert!(matches!(
            read(&lying, EXPLICIT_LE),
            Err(MppsError::Malformed(_))
        ));
    }
}
