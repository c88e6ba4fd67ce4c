//! One accepted TCP connection, from A-ASSOCIATE-RQ to release or abort.
//!
//! PDUs are read one at a time (memory bounded by the announced maximum PDU
//! length); command fragments are collected, data set fragments stream into
//! the archive's pending file. C-STORE success is sent only when
//! [`Archive::commit`] has returned.

use crate::dimse::{self, Command, MAX_COMMAND_BYTES, status};

mod query_retrieve;
use crate::negotiation::{AcceptedContext, Decision, Policy, negotiate};
use crate::pdu_io::{self, PduError, Pdv};
use crate::stream::DicomStream;
use dicom_ul::pdu::{AbortRQServiceProviderReason, AbortRQSource, Pdu};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use telerad_dicom::commitment::STORAGE_COMMITMENT_PUSH_MODEL;
use telerad_dicom::mpps::MODALITY_PERFORMED_PROCEDURE_STEP;
use telerad_dicom::part10::InstanceHeader;
use telerad_dicom::query::{STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE};
use telerad_store::audit::{AuditRecord, Outcome};
use telerad_store::{Archive, PendingInstance, Stored};
use tokio::sync::watch;
use tracing::Instrument;

/// A performed procedure step's data set is a few kB; one naming 3,000
/// instances, ~400 kB. Past this it is refused, not collected.
pub const MAX_NORMALIZED_DATA_SET_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub struct AssociationContext {
    pub policy: Policy,
    pub archive: Arc<Archive>,
    pub artim_timeout: Duration,
    pub idle_timeout: Duration,
    /// Open associations per site, for sites that complete on release.
    pub sites: crate::release::SiteAssociations,
    /// Where C-MOVEs put their images, for the forwarder to send.
    pub outbox: Arc<telerad_store::outbox::Outbox>,
    /// Storage commitment reports that go out on associations of their own.
    pub commitment_reports: Arc<telerad_store::commitment_reports::CommitmentReports>,
}

/// What is being received on the association right now.
enum Receiving {
    Idle,
    /// A C-STORE whose data set is streaming to disk.
    Instance {
        command: Command,
        context_id: u8,
        pending: Box<PendingInstance>,
    },
    /// An N-CREATE, N-SET or N-ACTION, or a C-FIND, whose (small) data set
    /// is collected in memory.
    Normalized {
        command: Command,
        context_id: u8,
        data: Vec<u8>,
    },
    /// A C-STORE already refused: its data set is read and dropped, then the
    /// status is answered.
    Refused {
        command: Command,
        context_id: u8,
        status: u16,
        comment: String,
    },
}

struct Association {
    stream: Box<dyn DicomStream>,
    peer: SocketAddr,
    calling_ae_title: String,
    site: String,
    /// What this caller's queries may see.
    scope: telerad_store::Scope,
    /// Where its C-MOVEs send: a workstation's own receiver.
    receiver: Option<telerad_store::outbox::Destination>,
    contexts: HashMap<u8, AcceptedContext>,
    ctx: Arc<AssociationContext>,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    command_buf: Vec<u8>,
    receiving: Receiving,
    stored: u64,
    /// Instances newly stored, per study, for the audit trail.
    stored_per_study: std::collections::BTreeMap<String, u64>,
    /// Whether the peer ended the association with a release.
    released: bool,
    /// The peer's maximum PDU length (0: no limit), for what telerad sends
    /// unasked (a storage commitment report).
    peer_max_pdu: u32,
    /// Of the requests telerad sends on this association.
    next_message_id: u16,
}

enum Flow {
    Continue,
    Close,
}

enum Incoming {
    /// P-DATA-TF, its values in `read_buf`.
    PData(Vec<Pdv>),
    Other(Pdu),
}

/// Serves one connection; `abort` fires when shutdown's grace period ends.
pub async fn serve(
    mut stream: Box<dyn DicomStream>,
    peer: SocketAddr,
    ctx: Arc<AssociationContext>,
    mut abort: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    let first = tokio::select! {
        read = tokio::time::timeout(ctx.artim_timeout, pdu_io::read(&mut stream, ctx.policy.max_pdu_length, &mut buf)) => read,
        _ = abort.changed() => return,
    };
    let rq = match first {
        Err(_) => {
            tracing::info!(%peer, "no association request within the ARTIM timeout: closing");
            return;
        }
        Ok(Err(PduError::Closed)) => return,
        Ok(Err(e)) => {
            tracing::warn!(%peer, "invalid association request: {e}");
            send_abort(&mut stream, &e, &mut buf).await;
            return;
        }
        Ok(Ok(Pdu::AssociationRQ(rq))) => rq,
        Ok(Ok(other)) => {
            tracing::warn!(%peer, "expected A-ASSOCIATE-RQ, got {}", other.short_description());
            let e = PduError::Malformed("unexpected PDU".into());
            send_abort(&mut stream, &e, &mut buf).await;
            return;
        }
    };
    let calling = rq.calling_ae_title.trim().to_string();
    let span = tracing::info_span!("association", calling_ae_title = %calling, %peer);
    let run = async move {
        let certificate = stream.peer_certificate();
        match negotiate(&rq, peer.ip(), certificate.as_ref(), &ctx.policy) {
            Decision::Reject { rj, why } => {
                tracing::warn!("association rejected: {why}");
                audit(&ctx, &calling, "", peer, |record| {
                    record.outcome = Outcome::Refused;
                    record.detail = serde_json::json!({ "reason": why }).to_string();
                })
                .await;
                let _ = pdu_io::write(&mut stream, &Pdu::AssociationRJ(rj), &mut buf).await;
            }
            Decision::Accept {
                ac,
                site,
                scope,
                receiver,
                contexts,
                peer_max_pdu,
            } => {
                if let Err(e) = pdu_io::write(&mut stream, &Pdu::AssociationAC(*ac), &mut buf).await
                {
                    tracing::warn!("cannot answer the association request: {e}");
                    return;
                }
                tracing::info!(site = %site, contexts = contexts.len(), "association accepted");
                let role = if receiver.is_some() {
                    "workstation"
                } else {
                    "modality"
                };
                audit(&ctx, &calling, &site, peer, |record| {
                    record.role = role.into()
                })
                .await;
                ctx.sites.opened(&site);
                let mut association = Association {
                    stream,
                    peer,
                    calling_ae_title: calling,
                    site,
                    scope,
                    receiver,
                    contexts,
                    ctx,
                    read_buf: buf,
                    write_buf: Vec::new(),
                    command_buf: Vec::new(),
                    receiving: Receiving::Idle,
                    stored: 0,
                    stored_per_study: std::collections::BTreeMap::new(),
                    released: false,
                    peer_max_pdu,
                    next_message_id: 0,
                };
                association.run(&mut abort).await;
                let stored = std::mem::take(&mut association.stored_per_study);
                let released = association.released;
                let (ctx, calling, site) = (
                    association.ctx.clone(),
                    association.calling_ae_title.clone(),
                    association.site.clone(),
                );
                drop(association);
                let brought: Vec<String> = if released {
                    stored.keys().cloned().collect()
                } else {
                    Vec::new()
                };
                let to_complete = ctx.sites.closed(&site, brought);
                complete_on_release(&ctx, &site, to_complete).await;
                audit_stored(&ctx, &calling, &site, peer, stored).await;
            }
        }
    };
    run.instrument(span).await;
}

/// Writes an association's audit record (a security event); a failure to
/// write it is logged, and does not stop the images.
async fn audit(
    ctx: &AssociationContext,
    calling: &str,
    site: &str,
    peer: SocketAddr,
    change: impl FnOnce(&mut AuditRecord),
) {
    let mut record = AuditRecord {
        at: ctx.archive.clock().now_ms(),
        actor: format!("dicom:{calling}"),
        role: "modality".into(),
        sites: site.to_string(),
        action: "dicom.associate".into(),
        object: "association".into(),
        study_uid: None,
        patient_id: None,
        outcome: Outcome::Success,
        source: peer.ip().to_string(),
        detail: "{}".into(),
    };
    change(&mut record);
    if let Err(e) = telerad_store::audit::append_now(ctx.archive.index().database(), &record).await
    {
        tracing::error!("cannot write the audit record of an association: {e}");
    }
}

/// Keeps a storage commitment report for the requester's own address.
async fn keep_report(
    ctx: &AssociationContext,
    site: &str,
    requester: &telerad_config::CommitmentRequester,
    address: &str,
    outcomes: &telerad_dicom::commitment::Outcomes,
) -> Result<(), String> {
    let new = telerad_store::commitment_reports::NewReport {
        site: site.to_string(),
        ae_title: requester.ae_title.trim().to_string(),
        address: address.to_string(),
        transaction_uid: outcomes.transaction_uid.clone(),
        outcomes: serde_json::to_string(outcomes).map_err(|e| e.to_string())?,
    };
    ctx.commitment_reports
        .enqueue(&new)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn send_abort(stream: &mut Box<dyn DicomStream>, error: &PduError, buf: &mut Vec<u8>) {
    let reason = match error {
        PduError::UnknownType(_) => AbortRQServiceProviderReason::UnrecognizedPdu,
        PduError::TooLarge { .. } => AbortRQServiceProviderReason::InvalidPduParameter,
        _ => AbortRQServiceProviderReason::UnexpectedPdu,
    };
    let pdu = Pdu::AbortRQ {
        source: AbortRQSource::ServiceProvider(reason),
    };
    let _ = pdu_io::write(stream, &pdu, buf).await;
}

/// Brings the completion of `studies` forward to the site's release grace,
/// when the site completes on release.
async fn complete_on_release(ctx: &AssociationContext, site: &str, studies: Vec<String>) {
    let grace = ctx
        .policy
        .config
        .sites
        .iter()
        .find(|s| s.name == site)
        .and_then(|s| s.release_grace());
    let Some(grace) = grace else {
        return;
    };
    let due_at = ctx.archive.clock().now_ms() + i64::try_from(grace.as_millis()).unwrap_or(0);
    let mut moved = false;
    for study in studies {
        match ctx.archive.index().complete_at(site, &study, due_at).await {
            Ok(true) => {
                moved = true;
                tracing::info!(study_instance_uid = %study, ?grace, "association released: the study completes after the grace")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(
                study_instance_uid = %study,
                "cannot complete the study on release (the quiet period will): {e}"
            ),
        }
    }
    if moved {
        // The sweep would find it within its period; waking it when the
        // grace ends saves up to that period on a stroke's clock.
        let archive = ctx.archive.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            archive.completion_due().notify_one();
        });
    }
}

/// One audit record per study an association stored instances of.
async fn audit_stored(
    ctx: &AssociationContext,
    calling: &str,
    site: &str,
    peer: SocketAddr,
    stored: std::collections::BTreeMap<String, u64>,
) {
    for (study, count) in stored {
        audit(ctx, calling, site, peer, |record| {
            record.action = "dicom.store".into();
            record.object = format!("study/{study}");
            record.detail = serde_json::json!({ "instances": count }).to_string();
            record.study_uid = Some(study);
        })
        .await;
    }
}

impl Association {
    async fn run(&mut self, abort: &mut watch::Receiver<bool>) {
        loop {
            let read = tokio::select! {
                read = tokio::time::timeout(
                    self.ctx.idle_timeout,
                    pdu_io::read_raw(&mut self.stream, self.ctx.policy.max_pdu_length, &mut self.read_buf),
                ) => read,
                _ = abort.changed() => {
                    tracing::warn!("server shutting down: aborting the association");
                    self.abort_with(AbortRQServiceProviderReason::ReasonNotSpecified).await;
                    return;
                }
            };
            let pdu_type = match read {
                Err(_) => {
                    tracing::warn!("no PDU for {:?}: aborting", self.ctx.idle_timeout);
                    self.abort_with(AbortRQServiceProviderReason::ReasonNotSpecified)
                        .await;
                    return;
                }
                Ok(Err(PduError::Closed)) => {
                    self.log_lost_instance("connection closed");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!("{e}: aborting");
                    self.log_lost_instance("protocol error");
                    send_abort(&mut self.stream, &e, &mut self.write_buf).await;
                    return;
                }
                Ok(Ok(pdu_type)) => pdu_type,
            };
            let decoded = if pdu_type == pdu_io::P_DATA_TF {
                pdu_io::pdata_values(&self.read_buf).map(Incoming::PData)
            } else {
                pdu_io::decode(&self.read_buf).map(Incoming::Other)
            };
            let incoming = match decoded {
                Ok(incoming) => incoming,
                Err(e) => {
                    tracing::warn!("{e}: aborting");
                    self.log_lost_instance("protocol error");
                    send_abort(&mut self.stream, &e, &mut self.write_buf).await;
                    return;
                }
            };
            let flow = match incoming {
                Incoming::PData(values) => self.on_pdata(values).await,
                Incoming::Other(Pdu::ReleaseRQ) => {
                    self.log_lost_instance("release requested");
                    self.released = true;
                    let _ =
                        pdu_io::write(&mut self.stream, &Pdu::ReleaseRP, &mut self.write_buf).await;
                    tracing::info!(stored = self.stored, "association released");
                    Flow::Close
                }
                Incoming::Other(Pdu::AbortRQ { source }) => {
                    self.log_lost_instance("aborted by the peer");
                    tracing::info!(
                        stored = self.stored,
                        "association aborted by the peer: {source:?}"
                    );
                    Flow::Close
                }
                Incoming::Other(other) => {
                    tracing::warn!(
                        "unexpected {} within an association: aborting",
                        other.short_description()
                    );
                    self.abort_with(AbortRQServiceProviderReason::UnexpectedPdu)
                        .await;
                    Flow::Close
                }
            };
            if matches!(flow, Flow::Close) {
                return;
            }
        }
    }

    /// Who this peer is, for the audit trail.
    fn role(&self) -> &'static str {
        if self.receiver.is_some() {
            "workstation"
        } else {
            "modality"
        }
    }

    fn log_lost_instance(&self, why: &str) {
        if let Receiving::Instance { command, .. } = &self.receiving {
            tracing::warn!(
                sop_instance_uid = %command.affected_sop_instance_uid,
                "{why} in the middle of an instance: discarded, never acknowledged"
            );
        }
    }

    async fn abort_with(&mut self, reason: AbortRQServiceProviderReason) {
        self.log_lost_instance("association aborted");
        self.receiving = Receiving::Idle;
        let pdu = Pdu::AbortRQ {
            source: AbortRQSource::ServiceProvider(reason),
        };
        let _ = pdu_io::write(&mut self.stream, &pdu, &mut self.write_buf).await;
    }

    async fn on_pdata(&mut self, values: Vec<Pdv>) -> Flow {
        // The fragments are slices of the read buffer, which is not needed
        // again before the next read.
        let buf = std::mem::take(&mut self.read_buf);
        let flow = self.on_pdvs(&buf, values).await;
        self.read_buf = buf;
        flow
    }

    async fn on_pdvs(&mut self, buf: &[u8], values: Vec<Pdv>) -> Flow {
        for value in values {
            if !self.contexts.contains_key(&value.context_id) {
                tracing::warn!(
                    context_id = value.context_id,
                    "P-DATA on a presentation context that was not accepted: aborting"
                );
                self.abort_with(AbortRQServiceProviderReason::InvalidPduParameter)
                    .await;
                return Flow::Close;
            }
            let data = &buf[value.data.clone()];
            let flow = if value.is_command {
                self.on_command_fragment(&value, data).await
            } else {
                self.on_data_fragment(&value, data).await
            };
            if matches!(flow, Flow::Close) {
                return flow;
            }
        }
        Flow::Continue
    }

    async fn on_command_fragment(&mut self, value: &Pdv, data: &[u8]) -> Flow {
        if !matches!(self.receiving, Receiving::Idle) {
            tracing::warn!("a new command arrived before the previous data set ended: aborting");
            self.abort_with(AbortRQServiceProviderReason::UnexpectedPdu)
                .await;
            return Flow::Close;
        }
        if self.command_buf.len() + data.len() > MAX_COMMAND_BYTES {
            tracing::warn!("command set larger than {MAX_COMMAND_BYTES} bytes: aborting");
            self.abort_with(AbortRQServiceProviderReason::InvalidPduParameter)
                .await;
            return Flow::Close;
        }
        self.command_buf.extend_from_slice(data);
        if !value.is_last {
            return Flow::Continue;
        }
        let bytes = std::mem::take(&mut self.command_buf);
        let command = match dimse::decode(&bytes) {
            Ok(command) => command,
            Err(e) => {
                tracing::warn!("{e}: aborting");
                self.abort_with(AbortRQServiceProviderReason::UnrecognizedPduParameter)
                    .await;
                return Flow::Close;
            }
        };
        let context_id = value.context_id;
        match command.command_field {
            dimse::C_ECHO_RQ => {
                tracing::debug!("C-ECHO");
                self.respond(context_id, &command, status::SUCCESS, None)
                    .await
            }
            // A workstation's storage contexts are for receiving a C-GET's
            // images: it stores nothing here.
            dimse::C_STORE_RQ if self.receiver.is_some() => {
                self.receiving = Receiving::Refused {
                    command,
                    context_id,
                    status: status::NOT_AUTHORIZED,
                    comment: "a workstation stores nothing here".into(),
                };
                Flow::Continue
            }
            dimse::C_STORE_RQ => {
                self.receiving = self.begin_store(command, context_id);
                Flow::Continue
            }
            dimse::N_CREATE_RQ | dimse::N_SET_RQ | dimse::N_ACTION_RQ => {
                let (sop_class, service, comment) = match command.command_field {
                    dimse::N_CREATE_RQ => (
                        &command.affected_sop_class_uid,
                        MODALITY_PERFORMED_PROCEDURE_STEP,
                        "only Modality Performed Procedure Steps are created here",
                    ),
                    dimse::N_SET_RQ => (
                        &command.requested_sop_class_uid,
                        MODALITY_PERFORMED_PROCEDURE_STEP,
                        "only Modality Performed Procedure Steps are set here",
                    ),
                    _ => (
                        &command.requested_sop_class_uid,
                        STORAGE_COMMITMENT_PUSH_MODEL,
                        "only storage commitment is asked of here",
                    ),
                };
                let on_its_context = self.contexts.get(&context_id).is_some_and(|c| {
                    c.abstract_syntax == service
                        && telerad_dicom::uid::trim_uid(sop_class) == c.abstract_syntax
                });
                if !on_its_context {
                    if command.has_data_set {
                        self.receiving = Receiving::Refused {
                            command,
                            context_id,
                            status: status::SOP_CLASS_NOT_SUPPORTED,
                            comment: comment.into(),
                        };
                        return Flow::Continue;
                    }
                    return self
                        .respond(
                            context_id,
                            &command,
                            status::SOP_CLASS_NOT_SUPPORTED,
                            Some(comment),
                        )
                        .await;
                }
                if command.has_data_set {
                    self.receiving = Receiving::Normalized {
                        command,
                        context_id,
                        data: Vec::new(),
                    };
                    Flow::Continue
                } else {
                    self.answer_normalized(context_id, command, None).await
                }
            }
            dimse::C_FIND_RQ => self.begin_query(command, context_id, STUDY_ROOT_FIND).await,
            dimse::C_MOVE_RQ => self.begin_query(command, context_id, STUDY_ROOT_MOVE).await,
            dimse::C_GET_RQ => self.begin_query(command, context_id, STUDY_ROOT_GET).await,
            dimse::N_EVENT_REPORT_RSP => {
                // The requester's answer to a storage commitment report.
                if command.status == status::SUCCESS {
                    tracing::debug!("storage commitment report acknowledged");
                } else {
                    tracing::warn!(
                        status = command.status,
                        "the requester refused a storage commitment report: {}",
                        command.error_comment
                    );
                }
                Flow::Continue
            }
            dimse::C_CANCEL_RQ => Flow::Continue,
            other => {
                tracing::warn!(command_field = other, "unsupported DIMSE operation");
                if command.has_data_set {
                    self.receiving = Receiving::Refused {
                        command,
                        context_id,
                        status: status::UNRECOGNIZED_OPERATION,
                        comment: format!("operation 0x{other:04X} is not supported"),
                    };
                    Flow::Continue
                } else {
                    let comment = format!("operation 0x{other:04X} is not supported");
                    self.respond(
                        context_id,
                        &command,
                        status::UNRECOGNIZED_OPERATION,
                        Some(&comment),
                    )
                    .await
                }
            }
        }
    }

    /// A C-FIND or C-MOVE on its Query/Retrieve context (`sop_class`)
    /// collects its identifier; anything else is refused once its data set
    /// (if any) is read.
    async fn begin_query(&mut self, command: Command, context_id: u8, sop_class: &str) -> Flow {
        let on_its_context = self.contexts.get(&context_id).is_some_and(|c| {
            c.abstract_syntax == sop_class
                && telerad_dicom::uid::trim_uid(&command.affected_sop_class_uid) == sop_class
        });
        let refusal = if !on_its_context {
            Some((
                status::SOP_CLASS_NOT_SUPPORTED,
                "only the Study Root model is answered here, on its own context",
            ))
        } else if !command.has_data_set {
            Some((
                status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                "an identifier is needed",
            ))
        } else {
            None
        };
        match refusal {
            None => {
                self.receiving = Receiving::Normalized {
                    command,
                    context_id,
                    data: Vec::new(),
                };
                Flow::Continue
            }
            Some((status, comment)) if command.has_data_set => {
                self.receiving = Receiving::Refused {
                    command,
                    context_id,
                    status,
                    comment: comment.into(),
                };
                Flow::Continue
            }
            Some((status, comment)) => {
                self.respond(context_id, &command, status, Some(comment))
                    .await
            }
        }
    }

    fn begin_store(&self, command: Command, context_id: u8) -> Receiving {
        let refuse = |status, comment: String| Receiving::Refused {
            command: command.clone(),
            context_id,
            status,
            comment,
        };
        let Some(context) = self.contexts.get(&context_id) else {
            return refuse(
                status::CANNOT_UNDERSTAND,
                "unknown presentation context".into(),
            );
        };
        if context.abstract_syntax != command.affected_sop_class_uid {
            return refuse(
                status::SOP_CLASS_NOT_SUPPORTED,
                format!(
                    "SOP class {} sent on the context negotiated for {}",
                    command.affected_sop_class_uid, context.abstract_syntax
                ),
            );
        }
        if let Err(e) = telerad_dicom::uid::validate_uid(&command.affected_sop_instance_uid) {
            return refuse(
                status::CANNOT_UNDERSTAND,
                format!("Affected SOP Instance UID: {e}"),
            );
        }
        let header = InstanceHeader {
            sop_class_uid: command.affected_sop_class_uid.clone(),
            sop_instance_uid: command.affected_sop_instance_uid.clone(),
            transfer_syntax_uid: context.transfer_syntax.clone(),
            calling_ae_title: self.calling_ae_title.clone(),
        };
        match self.ctx.archive.begin(header) {
            Ok(pending) => Receiving::Instance {
                command,
                context_id,
                pending: Box::new(pending),
            },
            Err(e) => refuse(e.failure.status(), e.message),
        }
    }

    async fn on_data_fragment(&mut self, value: &Pdv, data: &[u8]) -> Flow {
        let context_matches = match &self.receiving {
            Receiving::Idle => {
                tracing::warn!("data set fragment without a command: aborting");
                self.abort_with(AbortRQServiceProviderReason::UnexpectedPdu)
                    .await;
                return Flow::Close;
            }
            Receiving::Instance { context_id, .. }
            | Receiving::Normalized { context_id, .. }
            | Receiving::Refused { context_id, .. } => *context_id == value.context_id,
        };
        if !context_matches {
            tracing::warn!(
                "data set fragment on another presentation context than its command: aborting"
            );
            self.abort_with(AbortRQServiceProviderReason::UnexpectedPduParameter)
                .await;
            return Flow::Close;
        }
        match &mut self.receiving {
            Receiving::Instance { pending, .. } => {
                let limit = self.ctx.archive.max_instance_bytes();
                if pending.dataset_len().saturating_add(data.len() as u64) > limit {
                    self.refuse_oversized(limit);
                } else {
                    pending.write(data);
                }
            }
            Receiving::Normalized {
                data: collected,
                command,
                ..
            } => {
                if collected.len() + data.len() > data_set_limit(command.command_field) {
                    self.refuse_normalized();
                } else {
                    collected.extend_from_slice(data);
                }
            }
            Receiving::Idle | Receiving::Refused { .. } => {}
        }
        if !value.is_last {
            return Flow::Continue;
        }
        match std::mem::replace(&mut self.receiving, Receiving::Idle) {
            Receiving::Instance {
                command,
                context_id,
                pending,
            } => {
                let sop = command.affected_sop_instance_uid.clone();
                match self.ctx.archive.commit(*pending, &self.site).await {
                    Ok(stored) => {
                        self.stored += 1;
                        if let Stored::New { path, .. } = &stored
                            && let Some(study) = telerad_store::layout::Layout::study_of(path)
                        {
                            *self.stored_per_study.entry(study.to_string()).or_default() += 1;
                        }
                        tracing::debug!(sop_instance_uid = %sop, ?stored, "stored");
                        self.respond(context_id, &command, status::SUCCESS, None)
                            .await
                    }
                    Err(e) => {
                        tracing::warn!(sop_instance_uid = %sop, "instance refused: {}", e.message);
                        let status = e.failure.status();
                        self.respond(context_id, &command, status, Some(&e.message))
                            .await
                    }
                }
            }
            Receiving::Normalized {
                command,
                context_id,
                data,
            } => {
                self.answer_normalized(context_id, command, Some(&data))
                    .await
            }
            Receiving::Refused {
                command,
                context_id,
                status,
                comment,
            } => {
                tracing::warn!(sop_instance_uid = %command.affected_sop_instance_uid, "instance refused: {comment}");
                self.respond(context_id, &command, status, Some(&comment))
                    .await
            }
            Receiving::Idle => Flow::Continue,
        }
    }

    /// Refuses the instance being received for exceeding `limit` (PS3.4
    /// B.2.3: A700, Out of Resources): its partial file is dropped now, the
    /// rest of its data set is read and discarded, and the status is
    /// answered after its last fragment, so that the association goes on.
    fn refuse_oversized(&mut self, limit: u64) {
        let Receiving::Instance {
            command,
            context_id,
            pending,
        } = std::mem::replace(&mut self.receiving, Receiving::Idle)
        else {
            return;
        };
        drop(pending);
        tracing::warn!(
            sop_instance_uid = %command.affected_sop_instance_uid,
            "data set larger than max_instance_bytes ({limit} bytes): refusing it"
        );
        self.receiving = Receiving::Refused {
            command,
            context_id,
            status: status::OUT_OF_RESOURCES,
            comment: format!("data set over the {limit}-byte limit"),
        };
    }

    /// Refuses an N-CREATE or N-SET whose data set is over
    /// [`MAX_NORMALIZED_DATA_SET_BYTES`]: the rest is read and dropped.
    fn refuse_normalized(&mut self) {
        let Receiving::Normalized {
            command,
            context_id,
            ..
        } = std::mem::replace(&mut self.receiving, Receiving::Idle)
        else {
            return;
        };
        let limit = data_set_limit(command.command_field);
        tracing::warn!("a data set over {limit} bytes: refusing it");
        // A query's failure is A700 (PS3.4 C.4.1.1.4), a DIMSE-N's 0213.
        let status = if is_query(command.command_field) {
            status::OUT_OF_RESOURCES
        } else {
            status::RESOURCE_LIMITATION
        };
        self.receiving = Receiving::Refused {
            command,
            context_id,
            status,
            comment: format!("data set over the {limit}-byte limit"),
        };
    }

    /// Answers an N-CREATE, N-SET or N-ACTION whose data set (if any) has
    /// been collected.
    async fn answer_normalized(
        &mut self,
        context_id: u8,
        command: Command,
        data: Option<&[u8]>,
    ) -> Flow {
        let transfer_syntax = self
            .contexts
            .get(&context_id)
            .map(|c| c.transfer_syntax.clone())
            .unwrap_or_default();
        if command.command_field == dimse::N_ACTION_RQ {
            self.answer_commitment(context_id, command, &transfer_syntax, data)
                .await
        } else if command.command_field == dimse::C_FIND_RQ {
            self.answer_find(
                context_id,
                command,
                &transfer_syntax,
                data.unwrap_or_default(),
            )
            .await
        } else if command.command_field == dimse::C_MOVE_RQ {
            self.answer_move(
                context_id,
                command,
                &transfer_syntax,
                data.unwrap_or_default(),
            )
            .await
        } else if command.command_field == dimse::C_GET_RQ {
            self.answer_get(
                context_id,
                command,
                &transfer_syntax,
                data.unwrap_or_default(),
            )
            .await
        } else {
            self.answer_step(context_id, command, &transfer_syntax, data)
                .await
        }
    }

    /// Answers a storage commitment request, then sends its report on the
    /// same association, or keeps it for an association of its own when
    /// the site gives the requester's address; audited.
    async fn answer_commitment(
        &mut self,
        context_id: u8,
        command: Command,
        transfer_syntax: &str,
        data: Option<&[u8]>,
    ) -> Flow {
        let mut answer = crate::commitment::answer(
            &self.ctx.archive,
            &self.site,
            &command,
            transfer_syntax,
            data,
        )
        .await;
        let requester = self
            .ctx
            .policy
            .config
            .sites
            .iter()
            .find(|s| s.name == self.site)
            .and_then(|s| s.commitment_requester(&self.calling_ae_title))
            .cloned();
        let mut kept_for = None;
        if let (Some(requester), Some(outcomes)) = (&requester, &answer.outcomes) {
            // Kept before the request is answered: a commitment accepted is
            // reported, whatever happens to this process afterwards.
            let address = if requester.host.contains(':') {
                // An IPv6 literal.
                format!("[{}]:{}", requester.host, requester.port)
            } else {
                format!("{}:{}", requester.host, requester.port)
            };
            match keep_report(&self.ctx, &self.site, requester, &address, outcomes).await {
                Ok(()) => kept_for = Some(address),
                Err(e) => {
                    tracing::error!("storage commitment: cannot keep the report: {e}");
                    answer.status = status::PROCESSING_FAILURE;
                    answer.comment = Some("the report cannot be kept for sending".into());
                    answer.outcomes = None;
                }
            }
        }
        if answer.status == status::SUCCESS {
            tracing::info!(
                committed = answer.committed,
                failed = answer.failed,
                report_to = kept_for.as_deref().unwrap_or("this association"),
                "storage commitment requested"
            );
        } else {
            tracing::warn!(
                "storage commitment refused (0x{:04X}): {}",
                answer.status,
                answer.comment.as_deref().unwrap_or("")
            );
        }
        let (calling, site, peer) = (self.calling_ae_title.clone(), self.site.clone(), self.peer);
        audit(&self.ctx, &calling, &site, peer, |record| {
            record.action = "dicom.commitment".into();
            record.object = format!(
                "commitment/{}",
                answer.transaction_uid.as_deref().unwrap_or("")
            );
            if answer.status != status::SUCCESS {
                record.outcome = Outcome::Failed;
            }
            record.detail = serde_json::json!({
                "status": format!("{:04X}", answer.status),
                "committed": answer.committed,
                "failed": answer.failed,
                "comment": answer.comment,
                "report_to": kept_for,
            })
            .to_string();
        })
        .await;
        let flow = self
            .respond(
                context_id,
                &answer.subject,
                answer.status,
                answer.comment.as_deref(),
            )
            .await;
        let Some(outcomes) = answer.outcomes else {
            return flow;
        };
        if matches!(flow, Flow::Close) || kept_for.is_some() {
            return flow;
        }
        match outcomes.report(transfer_syntax) {
            Ok((event_type, report)) => self.send_report(context_id, event_type, &report).await,
            Err(e) => {
                tracing::error!("storage commitment: cannot encode the report: {e}");
                flow
            }
        }
    }

    /// Sends an N-EVENT-REPORT-RQ and its data set, in PDUs the peer
    /// accepts; its response comes back as any command does.
    async fn send_report(&mut self, context_id: u8, event_type: u16, data: &[u8]) -> Flow {
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        let command = dimse::event_report_rq(
            self.next_message_id,
            STORAGE_COMMITMENT_PUSH_MODEL,
            telerad_dicom::commitment::STORAGE_COMMITMENT_INSTANCE,
            event_type,
        );
        match self.send_with_data(context_id, &command, data).await {
            Ok(()) => Flow::Continue,
            Err(e) => {
                tracing::warn!(peer = %self.peer, "cannot send a storage commitment report: {e}");
                Flow::Close
            }
        }
    }

    /// Sends a command and its data set, in PDUs the peer accepts.
    async fn send_with_data(
        &mut self,
        context_id: u8,
        command: &[u8],
        data: &[u8],
    ) -> Result<(), PduError> {
        let chunk = crate::scu::send_chunk(self.peer_max_pdu);
        pdu_io::write_pdata(
            &mut self.stream,
            context_id,
            true,
            true,
            command,
            &mut self.write_buf,
        )
        .await?;
        let count = data.chunks(chunk).count();
        for (i, part) in data.chunks(chunk).enumerate() {
            pdu_io::write_pdata(
                &mut self.stream,
                context_id,
                false,
                i + 1 == count,
                part,
                &mut self.write_buf,
            )
            .await?;
        }
        Ok(())
    }

    /// Answers an N-CREATE or N-SET of a performed procedure step, and
    /// audits it (the step names the patient and the study).
    async fn answer_step(
        &mut self,
        context_id: u8,
        command: Command,
        transfer_syntax: &str,
        data: Option<&[u8]>,
    ) -> Flow {
        let answer = crate::mpps::answer(
            &self.ctx.archive,
            &self.site,
            &self.calling_ae_title,
            &command,
            transfer_syntax,
            data,
        )
        .await;
        let operation = if command.command_field == dimse::N_CREATE_RQ {
            "N-CREATE"
        } else {
            "N-SET"
        };
        let uid = answer.subject.affected_sop_instance_uid.clone();
        if answer.status == status::SUCCESS {
            tracing::info!(
                sop_instance_uid = %uid,
                step_status = answer.step_status.map(|s| s.as_str()).unwrap_or(""),
                "performed procedure step {operation}"
            );
        } else {
            tracing::warn!(
                sop_instance_uid = %uid,
                "performed procedure step {operation} refused (0x{:04X}): {}",
                answer.status,
                answer.comment.as_deref().unwrap_or("")
            );
        }
        let (calling, site, peer) = (self.calling_ae_title.clone(), self.site.clone(), self.peer);
        audit(&self.ctx, &calling, &site, peer, |record| {
            record.action = "dicom.mpps".into();
            record.object = format!("mpps/{uid}");
            record.study_uid = answer.study_instance_uid.clone();
            if answer.status != status::SUCCESS {
                record.outcome = Outcome::Failed;
            }
            record.detail = serde_json::json!({
                "operation": operation,
                "status": format!("{:04X}", answer.status),
                "step_status": answer.step_status.map(|s| s.as_str()),
                "comment": answer.comment,
            })
            .to_string();
        })
        .await;
        self.respond(
            context_id,
            &answer.subject,
            answer.status,
            answer.comment.as_deref(),
        )
        .await
    }

    async fn respond(
        &mut self,
        context_id: u8,
        request: &Command,
        status: u16,
        comment: Option<&str>,
    ) -> Flow {
        let response = dimse::response(request, status, comment);
        self.send_response(context_id, &response).await
    }

    /// Sends a response command set, ~200 bytes: below any peer's maximum
    /// PDU length, so never fragmented.
    async fn send_response(&mut self, context_id: u8, response: &[u8]) -> Flow {
        match pdu_io::write_pdata(
            &mut self.stream,
            context_id,
            true,
            true,
            response,
            &mut self.write_buf,
        )
        .await
        {
            Ok(()) => Flow::Continue,
            Err(e) => {
                tracing::warn!(peer = %self.peer, "cannot send a response: {e}");
                Flow::Close
            }
        }
    }
}

/// A Query/Retrieve request (C-FIND, C-MOVE, C-GET).
fn is_query(command_field: u16) -> bool {
    matches!(
        command_field,
        dimse::C_FIND_RQ | dimse::C_MOVE_RQ | dimse::C_GET_RQ
    )
}

/// How much of a request's data set is collected in memory: a query's
/// identifier is a few dozen keys.
fn data_set_limit(command_field: u16) -> usize {
    if is_query(command_field) {
        telerad_dicom::query::MAX_IDENTIFIER_BYTES
    } else {
        MAX_NORMALIZED_DATA_SET_BYTES
    }
}
