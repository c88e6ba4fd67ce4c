//! The Storage Commitment Push Model SCP (DICOM PS3.4 Annex J): an
//! N-ACTION asks whether telerad holds instances; the N-ACTION-RSP says the
//! request is taken, and the N-EVENT-REPORT that follows on the same
//! association lists those committed and those not, with reasons. The
//! answer is known at once (an instance is acknowledged only once durable
//! and indexed), so the report is sent right after the response, while the
//! requester is still associated; or, for a requester whose address the
//! site's configuration gives, kept and sent on an association of telerad's
//! own (`forward::commitment`).

use crate::dimse::{Command, status};
use telerad_dicom::commitment::{
    self, CommitmentError, Outcomes, REQUEST_COMMITMENT, STORAGE_COMMITMENT_INSTANCE,
};
use telerad_store::Archive;

#[derive(Debug)]
pub struct Answer {
    /// The request as the response names it (its Requested UIDs).
    pub subject: Command,
    pub status: u16,
    pub comment: Option<String>,
    /// What the report says, on success.
    pub outcomes: Option<Outcomes>,
    pub transaction_uid: Option<String>,
    pub committed: usize,
    pub failed: usize,
}

impl Answer {
    fn failure(subject: Command, status: u16, comment: impl Into<String>) -> Answer {
        Answer {
            subject,
            status,
            comment: Some(comment.into()),
            outcomes: None,
            transaction_uid: None,
            committed: 0,
            failed: 0,
        }
    }
}

fn error_status(e: &CommitmentError) -> u16 {
    match e {
        CommitmentError::Malformed(_) => status::PROCESSING_FAILURE,
        CommitmentError::MissingAttribute(_) => status::MISSING_ATTRIBUTE,
        CommitmentError::InvalidValue { .. } => status::INVALID_ATTRIBUTE_VALUE,
        CommitmentError::TooManyReferences => status::RESOURCE_LIMITATION,
    }
}

/// Answers an N-ACTION of `site` received on a context of
/// `transfer_syntax`.
pub async fn answer(
    archive: &Archive,
    site: &str,
    command: &Command,
    transfer_syntax: &str,
    data_set: Option<&[u8]>,
) -> Answer {
    let mut subject = command.clone();
    subject.affected_sop_class_uid = command.requested_sop_class_uid.clone();
    subject.affected_sop_instance_uid = command.requested_sop_instance_uid.clone();
    if telerad_dicom::uid::trim_uid(&command.requested_sop_instance_uid)
        != STORAGE_COMMITMENT_INSTANCE
    {
        return Answer::failure(
            subject,
            status::NO_SUCH_OBJECT_INSTANCE,
            "storage commitment is asked of its well-known instance",
        );
    }
    if command.action_type_id != Some(REQUEST_COMMITMENT) {
        return Answer::failure(
            subject,
            status::NO_SUCH_ACTION,
            "the only action is 1, request storage commitment",
        );
    }
    let Some(data_set) = data_set else {
        return Answer::failure(subject, status::MISSING_ATTRIBUTE, "no action information");
    };
    let request = match commitment::read_request(data_set, transfer_syntax) {
        Ok(request) => request,
        Err(e) => return Answer::failure(subject, error_status(&e), e.to_string()),
    };
    let outcomes = match archive.commitment(site, &request.references).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::error!("storage commitment: cannot read the index: {e}");
            return Answer::failure(subject, status::PROCESSING_FAILURE, "cannot read the index");
        }
    };
    let failed = outcomes.iter().filter(|o| o.is_some()).count();
    Answer {
        subject,
        status: status::SUCCESS,
        comment: None,
        outcomes: Some(Outcomes::new(&request, &outcomes)),
        transaction_uid: Some(request.transaction_uid),
        committed: outcomes.len() - failed,
        failed,
    }
}
