//! The Modality Performed Procedure Step SCP (DICOM PS3.4 Annex F): a
//! modality's N-CREATE (step IN PROGRESS) and N-SET (its series and
//! instances, then COMPLETED or DISCONTINUED). A COMPLETED step whose
//! instances are all indexed completes the study at once; one still
//! missing some is settled by the completion sweep when they come.

use crate::dimse::{Command, N_CREATE_RQ, status};
use telerad_dicom::mpps::{self, MppsError, StepStatus};
use telerad_store::Archive;
use telerad_store::performed_steps::StepWrite;

/// How many times an N-SET is recomputed when another writer changed the
/// step between its read and its write.
const SET_ATTEMPTS: usize = 3;

/// The answer to one N-CREATE or N-SET.
#[derive(Debug)]
pub struct Answer {
    /// The request as the response must name it: Affected SOP Class and
    /// Instance UIDs (an N-SET's Requested ones; a created step's new UID).
    pub subject: Command,
    pub status: u16,
    pub comment: Option<String>,
    /// The step's status after the operation, for the log and the audit.
    pub step_status: Option<StepStatus>,
    pub study_instance_uid: Option<String>,
}

impl Answer {
    fn failure(subject: Command, status: u16, comment: impl Into<String>) -> Answer {
        Answer {
            subject,
            status,
            comment: Some(comment.into()),
            step_status: None,
            study_instance_uid: None,
        }
    }
}

fn error_status(e: &MppsError) -> u16 {
    match e {
        MppsError::Malformed(_) => status::PROCESSING_FAILURE,
        MppsError::MissingAttribute(_) => status::MISSING_ATTRIBUTE,
        MppsError::InvalidValue { .. } => status::INVALID_ATTRIBUTE_VALUE,
        MppsError::TooManyReferences => status::RESOURCE_LIMITATION,
    }
}

/// Answers an N-CREATE or N-SET of `site`, received on a context of
/// `transfer_syntax`, with its data set when it had one.
pub async fn answer(
    archive: &Archive,
    site: &str,
    calling_ae_title: &str,
    command: &Command,
    transfer_syntax: &str,
    data_set: Option<&[u8]>,
) -> Answer {
    if command.command_field == N_CREATE_RQ {
        create(
            archive,
            site,
            calling_ae_title,
            command,
            transfer_syntax,
            data_set,
        )
        .await
    } else {
        set(archive, site, command, transfer_syntax, data_set).await
    }
}

async fn create(
    archive: &Archive,
    site: &str,
    calling_ae_title: &str,
    command: &Command,
    transfer_syntax: &str,
    data_set: Option<&[u8]>,
) -> Answer {
    let mut subject = command.clone();
    // The SCP names the step when the modality did not (PS3.7 10.1.5.1.4).
    if subject.affected_sop_instance_uid.is_empty() {
        subject.affected_sop_instance_uid = telerad_dicom::uid::new_uid();
    }
    let uid = match telerad_dicom::uid::validate_uid(&subject.affected_sop_instance_uid) {
        Ok(uid) => uid.to_string(),
        Err(e) => {
            return Answer::failure(
                subject,
                status::INVALID_OBJECT_INSTANCE,
                format!("Affected SOP Instance UID: {e}"),
            );
        }
    };
    let Some(data_set) = data_set else {
        return Answer::failure(subject, status::MISSING_ATTRIBUTE, "no attribute list");
    };
    let object = match mpps::read(data_set, transfer_syntax) {
        Ok(object) => object,
        Err(e) => return Answer::failure(subject, error_status(&e), e.to_string()),
    };
    let step = match mpps::step(&object) {
        Ok(step) => step,
        Err(e) => return Answer::failure(subject, error_status(&e), e.to_string()),
    };
    if step.status != StepStatus::InProgress {
        return Answer::failure(
            subject,
            status::INVALID_ATTRIBUTE_VALUE,
            "a step is created IN PROGRESS (0040,0252)",
        );
    }
    let json = match mpps::to_json(&object) {
        Ok(json) => json,
        Err(e) => return Answer::failure(subject, status::PROCESSING_FAILURE, e.to_string()),
    };
    let now = archive.clock().now_ms();
    match archive
        .index()
        .create_performed_step(&uid, site, calling_ae_title, &step, &json, now)
        .await
    {
        Ok(StepWrite::Written { .. }) => Answer {
            subject,
            status: status::SUCCESS,
            comment: None,
            step_status: Some(step.status),
            study_instance_uid: step.study_instance_uid,
        },
        Ok(StepWrite::Duplicate) => Answer::failure(
            subject,
            status::DUPLICATE_SOP_INSTANCE,
            "a performed procedure step with this UID exists",
        ),
        Ok(StepWrite::Conflict) => Answer::failure(
            subject,
            status::PROCESSING_FAILURE,
            "the step changed while it was written",
        ),
        Err(e) => {
            tracing::error!("cannot keep a performed procedure step: {e}");
            Answer::failure(subject, status::PROCESSING_FAILURE, "cannot keep the step")
        }
    }
}

async fn set(
    archive: &Archive,
    site: &str,
    command: &Command,
    transfer_syntax: &str,
    data_set: Option<&[u8]>,
) -> Answer {
    let mut subject = command.clone();
    subject.affected_sop_class_uid = command.requested_sop_class_uid.clone();
    subject.affected_sop_instance_uid = command.requested_sop_instance_uid.clone();
    let uid = match telerad_dicom::uid::validate_uid(&command.requested_sop_instance_uid) {
        Ok(uid) => uid.to_string(),
        Err(e) => {
            return Answer::failure(
                subject,
                status::INVALID_OBJECT_INSTANCE,
                format!("Requested SOP Instance UID: {e}"),
            );
        }
    };
    let Some(data_set) = data_set else {
        return Answer::failure(subject, status::MISSING_ATTRIBUTE, "no modification list");
    };
    let changes = match mpps::read(data_set, transfer_syntax) {
        Ok(changes) => changes,
        Err(e) => return Answer::failure(subject, error_status(&e), e.to_string()),
    };
    let index = archive.index();
    for _ in 0..SET_ATTEMPTS {
        let stored = match index.performed_step(&uid, site).await {
            Ok(Some(stored)) => stored,
            // Another site's step is none of this one's business.
            Ok(None) => {
                return Answer::failure(
                    subject,
                    status::NO_SUCH_OBJECT_INSTANCE,
                    "no such performed procedure step",
                );
            }
            Err(e) => {
                tracing::error!("cannot read a performed procedure step: {e}");
                return Answer::failure(
                    subject,
                    status::PROCESSING_FAILURE,
                    "cannot read the step",
                );
            }
        };
        if stored.status.0.is_final() {
            // PS3.4 F.7.2.2.2: "Performed Procedure Step Object may no
            // longer be updated".
            return Answer::failure(
                subject,
                status::PROCESSING_FAILURE,
                format!(
                    "the step is {}: it may no longer be updated",
                    stored.status.0.as_str()
                ),
            );
        }
        let mut merged = match mpps::from_json(&stored.attributes) {
            Ok(merged) => merged,
            Err(e) => {
                tracing::error!("a stored performed procedure step does not read back: {e}");
                return Answer::failure(
                    subject,
                    status::PROCESSING_FAILURE,
                    "cannot read the step",
                );
            }
        };
        mpps::apply_set(&mut merged, changes.clone());
        let step = match mpps::step(&merged) {
            Ok(step) => step,
            Err(e) => return Answer::failure(subject, error_status(&e), e.to_string()),
        };
        let json = match mpps::to_json(&merged) {
            Ok(json) => json,
            Err(e) => return Answer::failure(subject, status::PROCESSING_FAILURE, e.to_string()),
        };
        let now = archive.clock().now_ms();
        match index
            .update_performed_step(&stored, &step, &json, now)
            .await
        {
            Ok(StepWrite::Written { id }) => {
                if step.status == StepStatus::Completed {
                    settle(archive, id, site).await;
                }
                return Answer {
                    subject,
                    status: status::SUCCESS,
                    comment: None,
                    step_status: Some(step.status),
                    study_instance_uid: step.study_instance_uid,
                };
            }
            Ok(StepWrite::Conflict | StepWrite::Duplicate) => continue,
            Err(e) => {
                tracing::error!("cannot update a performed procedure step: {e}");
                return Answer::failure(
                    subject,
                    status::PROCESSING_FAILURE,
                    "cannot keep the step",
                );
            }
        }
    }
    Answer::failure(
        subject,
        status::PROCESSING_FAILURE,
        "the step kept changing while it was written",
    )
}

/// Completes the step's study now if its instances are all here; if not,
/// the completion sweep looks again as they come. A failure here is only
/// logged: the step is kept, and the sweep will settle it.
async fn settle(archive: &Archive, id: i64, site: &str) {
    let now = archive.clock().now_ms();
    match archive.index().settle_performed_step(id, site, now).await {
        Ok(events) => telerad_store::completion::announce(
            archive,
            &events,
            "its performed procedure step is COMPLETED with all its images",
        ),
        Err(e) => tracing::warn!("cannot settle a completed performed procedure step now: {e}"),
    }
}
