//! Storage Commitment Push Model (PS3.4 Annex J): a modality or PACS asks
//! (N-ACTION) whether telerad has taken responsibility for instances, and
//! is told (N-EVENT-REPORT) which it has and which it has not, so that it
//! may delete its own copies of the first. This module reads the request
//! and writes the report; which instances are committed is
//! `telerad-store`'s answer.

use crate::uid::{trim_uid, validate_uid};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// Storage Commitment Push Model SOP Class (PS3.4 J.3).
pub const STORAGE_COMMITMENT_PUSH_MODEL: &str = "1.2.840.10008.1.20.1";
/// Its well-known SOP Instance (PS3.4 J.3.5).
pub const STORAGE_COMMITMENT_INSTANCE: &str = "1.2.840.10008.1.20.1.1";
/// "Request Storage Commitment" (PS3.4 J.3.2.1: Action Type ID 1).
pub const REQUEST_COMMITMENT: u16 = 1;
/// Event Type IDs of the report (PS3.4 J.3.3.1).
pub const ALL_COMMITTED: u16 = 1;
pub const SOME_FAILED: u16 = 2;
/// A request names at most this many instances.
pub const MAX_REFERENCES: usize = 100_000;

/// Failure Reasons (0008,1197) of a Failed SOP Sequence item (PS3.3
/// C.14.1.1).
pub mod reason {
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
    pub const CLASS_INSTANCE_CONFLICT: u16 = 0x0119;
}

/// One instance named by a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRequest {
    pub transaction_uid: String,
    pub references: Vec<Reference>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitmentError {
    #[error("malformed data set: {0}")]
    Malformed(String),
    #[error("{0} is missing")]
    MissingAttribute(&'static str),
    #[error("{attribute}: {why}")]
    InvalidValue {
        attribute: &'static str,
        why: String,
    },
    #[error("the request names more than {MAX_REFERENCES} instances")]
    TooManyReferences,
}

fn text(object: &InMemDicomObject, tag: Tag) -> String {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| trim_uid(&s).to_string())
        .unwrap_or_default()
}

fn uid(
    object: &InMemDicomObject,
    tag: Tag,
    attribute: &'static str,
) -> Result<String, CommitmentError> {
    let value = text(object, tag);
    if value.is_empty() {
        return Err(CommitmentError::MissingAttribute(attribute));
    }
    validate_uid(&value)
        .map(str::to_string)
        .map_err(|e| CommitmentError::InvalidValue {
            attribute,
            why: e.to_string(),
        })
}

/// Reads an N-ACTION's Action Information (PS3.4 Table J.3-1), its bytes
/// walked first as [`crate::mpps::read`] does.
pub fn read_request(
    data_set: &[u8],
    transfer_syntax_uid: &str,
) -> Result<CommitmentRequest, CommitmentError> {
    let object = crate::mpps::read(data_set, transfer_syntax_uid)
        .map_err(|e| CommitmentError::Malformed(e.to_string()))?;
    let transaction_uid = uid(
        &object,
        tags::TRANSACTION_UID,
        "Transaction UID (0008,1195)",
    )?;
    let items = object
        .element_opt(tags::REFERENCED_SOP_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .ok_or(CommitmentError::MissingAttribute(
            "Referenced SOP Sequence (0008,1199)",
        ))?;
    if items.len() > MAX_REFERENCES {
        return Err(CommitmentError::TooManyReferences);
    }
    let references = items
        .iter()
        .map(|item| {
            Ok(Reference {
                sop_class_uid: uid(
                    item,
                    tags::REFERENCED_SOP_CLASS_UID,
                    "Referenced SOP Class UID (0008,1150)",
                )?,
                sop_instance_uid: uid(
                    item,
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    "Referenced SOP Instance UID (0008,1155)",
                )?,
            })
        })
        .collect::<Result<Vec<_>, CommitmentError>>()?;
    Ok(CommitmentRequest {
        transaction_uid,
        references,
    })
}

fn ui(tag: Tag, value: &str) -> DataElement<InMemDicomObject> {
    let mut padded = value.to_string();
    if padded.len() % 2 == 1 {
        padded.push('\0');
    }
    DataElement::new(tag, VR::UI, PrimitiveValue::from(padded))
}

fn item(reference: &Reference) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        ui(tags::REFERENCED_SOP_CLASS_UID, &reference.sop_class_uid),
        ui(
            tags::REFERENCED_SOP_INSTANCE_UID,
            &reference.sop_instance_uid,
        ),
    ])
}

/// The Event Information of the report (PS3.4 Table J.3-2): the Event Type
/// ID and the data set, in `transfer_syntax_uid`. `outcomes` holds, per
/// reference of the request, `None` when committed or its failure reason.
pub fn report(
    request: &CommitmentRequest,
    outcomes: &[Option<u16>],
    transfer_syntax_uid: &str,
) -> Result<(u16, Vec<u8>), CommitmentError> {
    let mut committed = Vec::new();
    let mut failed = Vec::new();
    for (reference, outcome) in request.references.iter().zip(outcomes) {
        match outcome {
            None => committed.push(item(reference)),
            Some(why) => {
                let mut failure = item(reference);
                failure.put(DataElement::new(
                    tags::FAILURE_REASON,
                    VR::US,
                    PrimitiveValue::from(*why),
                ));
                failed.push(failure);
            }
        }
    }
    let event_type = if failed.is_empty() {
        ALL_COMMITTED
    } else {
        SOME_FAILED
    };
    let mut object =
        InMemDicomObject::from_element_iter([ui(tags::TRANSACTION_UID, &request.transaction_uid)]);
    if !committed.is_empty() {
        object.put(DataElement::new(
            tags::REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(committed),
        ));
    }
    if !failed.is_empty() {
        object.put(DataElement::new(
            tags::FAILED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(failed),
        ));
    }
    let ts = TransferSyntaxRegistry
        .get(transfer_syntax_uid)
        .ok_or_else(|| {
            CommitmentError::Malformed(format!("transfer syntax {transfer_syntax_uid}"))
        })?;
    let mut out = Vec::new();
    object
        .write_dataset_with_ts(&mut out, ts)
        .map_err(|e| CommitmentError::Malformed(e.to_string()))?;
    Ok((event_type, out))
}

/// A request and what became of each instance it named, kept until its
/// report goes out on an association of its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcomes {
    pub transaction_uid: String,
    /// SOP Class UID, SOP Instance UID, `None` when committed or the
    /// failure reason.
    pub instances: Vec<(String, String, Option<u16>)>,
}

impl Outcomes {
    pub fn new(request: &CommitmentRequest, outcomes: &[Option<u16>]) -> Outcomes {
        Outcomes {
            transaction_uid: request.transaction_uid.clone(),
            instances: request
                .references
                .iter()
                .zip(outcomes)
                .map(|(r, o)| (r.sop_class_uid.clone(), r.sop_instance_uid.clone(), *o))
                .collect(),
        }
    }

    /// The report's Event Type ID and data set in `transfer_syntax_uid`.
    pub fn report(&self, transfer_syntax_uid: &str) -> Result<(u16, Vec<u8>), CommitmentError> {
        let request = CommitmentRequest {
            transaction_uid: self.transaction_uid.clone(),
            references: self
                .instances
                .iter()
                .map(|(class, instance, _)| Reference {
                    sop_class_uid: class.clone(),
                    sop_instance_uid: instance.clone(),
                })
                .collect(),
        };
        let outcomes: Vec<Option<u16>> = self.instances.iter().map(|(_, _, o)| *o).collect();
        report(&request, &outcomes, transfer_syntax_uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

    fn request_bytes(references: &[(&str, &str)]) -> Vec<u8> {
        let items = references
            .iter()
            .map(|(class, instance)| {
                item(&Reference {
                    sop_class_uid: class.to_string(),
                    sop_instance_uid: instance.to_string(),
                })
            })
            .collect::<Vec<_>>();
        let object = InMemDicomObject::from_element_iter([
            ui(tags::TRANSACTION_UID, "1.2.3.100"),
            DataElement::new(
                tags::REFERENCED_SOP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(items),
            ),
        ]);
        let mut out = Vec::new();
        object
            .write_dataset_with_ts(&mut out, TransferSyntaxRegistry.get(IMPLICIT_LE).unwrap())
            .unwrap();
        out
    }

    #[test]
    fn a_request_reads_back_and_its_report_splits_committed_from_failed() {
        let bytes = request_bytes(&[
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.1"),
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.2"),
        ]);
        let request = read_request(&bytes, IMPLICIT_LE).unwrap();
        assert_eq!(request.transaction_uid, "1.2.3.100");
        assert_eq!(request.references.len(), 2);
        let (event, data) = report(
            &request,
            &[None, Some(reason::NO_SUCH_OBJECT_INSTANCE)],
            IMPLICIT_LE,
        )
        .unwrap();
        assert_eq!(event, SOME_FAILED);
        let back = crate::mpps::read(&data, IMPLICIT_LE).unwrap();
        let committed = back
            .element(tags::REFERENCED_SOP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(
            text(&committed[0], tags::REFERENCED_SOP_INSTANCE_UID),
            "1.2.3.1"
        );
        let failed = back
            .element(tags::FAILED_SOP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(
            text(&failed[0], tags::REFERENCED_SOP_INSTANCE_UID),
            "1.2.3.2"
        );
        assert_eq!(
            failed[0]
                .element(tags::FAILURE_REASON)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            0x0112
        );
        let (event, _) = report(&request, &[None, None], IMPLICIT_LE).unwrap();
        assert_eq!(event, ALL_COMMITTED);
    }

    #[test]
    fn outcomes_kept_as_json_give_the_same_report() {
        let bytes = request_bytes(&[
            ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.1"),
            ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.2"),
        ]);
        let request = read_request(&bytes, IMPLICIT_LE).unwrap();
        let outcomes = [None, Some(reason::CLASS_INSTANCE_CONFLICT)];
        let kept = serde_json::to_string(&Outcomes::new(&request, &outcomes)).unwrap();
        let back: Outcomes = serde_json::from_str(&kept).unwrap();
        assert_eq!(
            back.report(IMPLICIT_LE).unwrap(),
            report(&request, &outcomes, IMPLICIT_LE).unwrap()
        );
    }

    #[test]
    fn requests_without_a_transaction_or_with_bad_uids_are_refused() {
        let bytes = request_bytes(&[("1.2.840.10008.5.1.4.1.1.2", "1.2.x")]);
        let e = read_request(&bytes, IMPLICIT_LE).unwrap_err();
        assert!(e.to_string().contains("(0008,1155)"), "{e}");
        assert!(matches!(
            read_request(&[0u8; 4], IMPLICIT_LE),
            Err(CommitmentError::Malformed(_))
        ));
    }
}
