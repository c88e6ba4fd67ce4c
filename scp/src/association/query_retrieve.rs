//! The Query/Retrieve answers of an association (DICOM PS3.4 C.4): C-FIND
//! (`crate::find`), C-MOVE and C-GET (`crate::retrieve`), each read from
//! its collected identifier and answered on the association, audited.

use super::{AcceptedContext, Association, Flow, audit};
use crate::dimse::{self, Command, MAX_COMMAND_BYTES, SubOperations, status};
use crate::pdu_io::{self, PduError};

/// What a workstation said while its C-MOVE was followed.
enum Heard {
    Nothing,
    Cancel,
    /// The association cannot go on (closed, aborted, or a PDU that has
    /// no place here).
    Gone(String),
}

/// How one C-GET sub-operation ended.
pub(super) enum SubOperation {
    /// The workstation answered with this status.
    Stored(u16),
    /// It answered, after asking to cancel the C-GET.
    Cancelled(u16),
    /// It could not be sent (no context for it, a file unreadable).
    NotSent(String),
    /// The association failed.
    Lost(String),
}

/// A received identifier, or the status and words of its refusal.
fn read_identifier(
    data: &[u8],
    transfer_syntax: &str,
) -> Result<telerad_dicom::query::Identifier, (u16, String)> {
    telerad_dicom::query::read(data, transfer_syntax).map_err(|e| (e.status(), e.to_string()))
}

/// A search an identifier names, or its refusal: the identifier does not
/// match the SOP class (A900).
fn identified<T>(search: Result<T, String>) -> Result<T, (u16, String)> {
    search.map_err(|why| (status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, why))
}

impl Association {
    /// Answers a C-FIND: a pending response with each match's identifier,
    /// then the final status; audited (what was asked, how many matched).
    pub(super) async fn answer_find(
        &mut self,
        context_id: u8,
        command: Command,
        transfer_syntax: &str,
        data: &[u8],
    ) -> Flow {
        let query = match read_identifier(data, transfer_syntax)
            .and_then(|query| identified(crate::find::search_of(&query)).map(|s| (query, s)))
        {
            Ok(query) => query,
            Err((status, why)) => {
                tracing::warn!("C-FIND refused: {why}");
                return self.respond(context_id, &command, status, Some(&why)).await;
            }
        };
        let (query, search) = query;
        let found = crate::find::run(self.ctx.archive.index(), &search, &self.scope).await;
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::error!("C-FIND: the index could not be searched: {e}");
                return self
                    .respond(
                        context_id,
                        &command,
                        status::UNABLE_TO_PROCESS,
                        Some("the index could not be searched"),
                    )
                    .await;
            }
        };
        let pending = dimse::pending_with_identifier(&command);
        let mut sent = 0usize;
        let ae_title = self.ctx.policy.ae_title.clone();
        for i in 0..found.len() {
            let Some(identifier) = found.answer(i, &query, &ae_title) else {
                break;
            };
            let bytes = match telerad_dicom::query::encode(&identifier, transfer_syntax) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!("C-FIND: a match could not be encoded: {e}");
                    continue;
                }
            };
            if let Err(e) = self.send_with_data(context_id, &pending, &bytes).await {
                tracing::warn!(peer = %self.peer, "cannot send a C-FIND match: {e}");
                return Flow::Close;
            }
            sent += 1;
        }
        let scope = match &self.scope {
            telerad_store::Scope::Reader { radiologist, .. } => {
                format!("radiologist {radiologist}")
            }
            _ => format!("site {}", self.site),
        };
        let (calling, site, peer) = (self.calling_ae_title.clone(), self.site.clone(), self.peer);
        let role = self.role();
        audit(&self.ctx, &calling, &site, peer, |record| {
            record.action = "dicom.find".into();
            record.role = role.into();
            record.object = "query".into();
            record.detail = serde_json::json!({
                "level": query.level.as_str(),
                "matches": sent,
                "truncated": found.truncated,
                "scope": scope,
            })
            .to_string();
        })
        .await;
        if found.truncated {
            let comment = format!(
                "more than {} matches: narrow the query",
                crate::find::MAX_MATCHES
            );
            return self
                .respond(
                    context_id,
                    &command,
                    status::OUT_OF_RESOURCES,
                    Some(&comment),
                )
                .await;
        }
        self.respond(context_id, &command, status::SUCCESS, None)
            .await
    }

    /// Answers a C-MOVE: the images it names (within the caller's scope)
    /// are put in the outbox for the caller's own receiver, pending
    /// responses follow their progress, the final status says how it
    /// ended; audited.
    pub(super) async fn answer_move(
        &mut self,
        context_id: u8,
        command: Command,
        transfer_syntax: &str,
        data: &[u8],
    ) -> Flow {
        let none = SubOperations::default();
        let Some(receiver) = self
            .receiver
            .clone()
            .filter(|r| r.ae_title == command.move_destination.trim())
        else {
            let comment = format!(
                "{:?} is not this workstation's receiver",
                command.move_destination
            );
            return self
                .respond_move(
                    context_id,
                    &command,
                    status::MOVE_DESTINATION_UNKNOWN,
                    none,
                    Some(&comment),
                )
                .await;
        };
        let wanted = match self
            .retrieval_instances(context_id, &command, transfer_syntax, data)
            .await
        {
            Ok(hits) => crate::retrieve::by_study(hits),
            Err(flow) => return flow,
        };
        for (study, instances) in &wanted {
            if let Err(e) = self
                .ctx
                .outbox
                .enqueue_retrieval(study, &receiver, instances)
                .await
            {
                tracing::error!("C-MOVE: cannot enqueue {study}: {e}");
                return self
                    .respond_move(
                        context_id,
                        &command,
                        status::UNABLE_TO_PROCESS,
                        none,
                        Some("the images could not be queued"),
                    )
                    .await;
            }
        }
        // Followed on the outbox's state until every job is sent or has
        // failed once (it goes on retrying), or nothing moves for the
        // idle timeout.
        let mut last = None;
        let mut last_change = tokio::time::Instant::now();
        let mut ended = Heard::Nothing;
        let progress = loop {
            let mut progress = telerad_store::outbox::RetrievalProgress::default();
            for (study, instances) in &wanted {
                match self
                    .ctx
                    .outbox
                    .retrieval_progress(study, &receiver, instances)
                    .await
                {
                    Ok(p) => {
                        progress.remaining += p.remaining;
                        progress.sent += p.sent;
                        progress.failed += p.failed;
                    }
                    // Unknown is not done: the study waits, and the idle
                    // timeout ends the move if the outbox stays unreadable.
                    Err(e) => {
                        tracing::warn!("C-MOVE: cannot read the progress of {study}: {e}");
                        progress.remaining += instances.len() as u64;
                    }
                }
            }
            if progress.remaining == 0 {
                break progress;
            }
            if last != Some(progress) {
                last = Some(progress);
                last_change = tokio::time::Instant::now();
                let pending = crate::retrieve::sub_operations(progress);
                if let Flow::Close = self
                    .respond_move(context_id, &command, status::PENDING, pending, None)
                    .await
                {
                    ended = Heard::Gone("a pending response could not be sent".into());
                    break progress;
                }
            } else if last_change.elapsed() > self.ctx.idle_timeout {
                tracing::warn!(
                    remaining = progress.remaining,
                    "C-MOVE: no progress for {:?}: ended, the outbox goes on",
                    self.ctx.idle_timeout
                );
                progress.failed += progress.remaining;
                progress.remaining = 0;
                break progress;
            }
            // Between two looks at the outbox, the workstation is listened
            // to: a C-CANCEL ends the wait, a closed association the move.
            match self
                .listen_during_move(command.message_id, std::time::Duration::from_millis(100))
                .await
            {
                Heard::Nothing => {}
                heard => {
                    ended = heard;
                    break progress;
                }
            }
        };
        let cancelled = matches!(ended, Heard::Cancel);
        let status = match (cancelled, progress.sent, progress.failed) {
            (true, _, _) => status::CANCELLED,
            (false, _, 0) => status::SUCCESS,
            (false, 0, _) => status::UNABLE_TO_PERFORM_SUBOPERATIONS,
            _ => status::SUBOPERATIONS_FAILED,
        };
        let (calling, site, peer) = (self.calling_ae_title.clone(), self.site.clone(), self.peer);
        let role = self.role();
        let studies: Vec<&String> = wanted.keys().collect();
        let gone = match &ended {
            Heard::Gone(why) => Some(why.clone()),
            _ => None,
        };
        // Audited however it ended: the outbox delivers what was queued
        // even when the workstation has gone.
        audit(&self.ctx, &calling, &site, peer, |record| {
            if gone.is_some() {
                record.outcome = telerad_store::audit::Outcome::Failed;
            }
            record.action = "dicom.move".into();
            record.role = role.into();
            record.object = format!("destination/{}", receiver.ae_title);
            record.study_uid = (studies.len() == 1).then(|| studies[0].clone());
            record.detail = serde_json::json!({
                "studies": studies,
                "sent": progress.sent,
                "failed": progress.failed,
                "cancelled": cancelled,
                "association_lost": gone,
                "destination": receiver.to_string(),
            })
            .to_string();
        })
        .await;
        if let Some(why) = gone {
            tracing::warn!(peer = %self.peer, "C-MOVE: {why}; the outbox goes on");
            return Flow::Close;
        }
        let done = crate::retrieve::sub_operations(progress);
        let comment = (progress.failed > 0).then(|| {
            format!(
                "{} images not delivered yet: they are retried",
                progress.failed
            )
        });
        let mut failed = Vec::new();
        if progress.failed > 0 {
            for (study, instances) in &wanted {
                match self
                    .ctx
                    .outbox
                    .retrieval_sent(study, &receiver, instances)
                    .await
                {
                    Ok(sent) => {
                        let sent: std::collections::HashSet<String> = sent.into_iter().collect();
                        failed.extend(instances.iter().filter(|uid| !sent.contains(*uid)).cloned());
                    }
                    // The counts still say how many failed; the list is
                    // left without this study's rather than guessed.
                    Err(e) => tracing::warn!("C-MOVE: cannot list what {study} delivered: {e}"),
                }
            }
        }
        self.respond_final(
            context_id,
            &command,
            (status, done),
            comment.as_deref(),
            &failed,
            transfer_syntax,
        )
        .await
    }

    /// Waits `wait` for the workstation to say something during a C-MOVE.
    /// One byte is read in the race with the timer (a read of the socket
    /// is cancel-safe; a whole PDU is not), then the rest of its PDU.
    async fn listen_during_move(&mut self, move_id: u16, wait: std::time::Duration) -> Heard {
        use tokio::io::AsyncReadExt;
        let mut first = [0u8; 1];
        let read = tokio::select! {
            _ = tokio::time::sleep(wait) => return Heard::Nothing,
            read = self.stream.read(&mut first) => read,
        };
        match read {
            Ok(0) => return Heard::Gone("the workstation closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Heard::Gone(e.to_string()),
        }
        let heard = self
            .read_commands(Some(first[0]), "C-MOVE", |command| {
                match command.command_field {
                    dimse::C_CANCEL_RQ if command.message_id_being_responded_to == move_id => {
                        Ok(Some(Heard::Cancel))
                    }
                    // A late C-CANCEL of an operation already answered.
                    dimse::C_CANCEL_RQ => Ok(Some(Heard::Nothing)),
                    other => Err(format!("command 0x{other:04X} during a C-MOVE")),
                }
            })
            .await;
        heard.unwrap_or_else(Heard::Gone)
    }

    /// Reads P-DATA PDUs from the peer (the first one's first byte already
    /// read, if `first`) and hands each complete command set to
    /// `on_command`, until it returns something or refuses one; data sets
    /// are not expected from the peer while telerad answers a retrieval,
    /// and are skipped. Both the C-MOVE's listening and the C-GET's wait
    /// for each C-STORE response read this way.
    async fn read_commands<T>(
        &mut self,
        mut first: Option<u8>,
        during: &str,
        mut on_command: impl FnMut(Command) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        let max = self.ctx.policy.max_pdu_length;
        let mut command_bytes = Vec::new();
        loop {
            let read = tokio::time::timeout(
                self.ctx.idle_timeout,
                pdu_io::read_raw_from(&mut self.stream, max, &mut self.read_buf, first.take()),
            )
            .await;
            match read {
                Err(_) => return Err(format!("nothing complete from the peer during a {during}")),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(pdu_io::P_DATA_TF)) => {}
                Ok(Ok(other)) => return Err(format!("PDU type 0x{other:02X} during a {during}")),
            }
            let values = pdu_io::pdata_values(&self.read_buf).map_err(|e| e.to_string())?;
            for value in values {
                if !value.is_command {
                    continue;
                }
                if command_bytes.len() + value.data.len() > MAX_COMMAND_BYTES {
                    return Err("command set too large".into());
                }
                command_bytes.extend_from_slice(&self.read_buf[value.data.clone()]);
                if !value.is_last {
                    continue;
                }
                let command = dimse::decode(&std::mem::take(&mut command_bytes))
                    .map_err(|e| e.to_string())?;
                if let Some(done) = on_command(command)? {
                    return Ok(done);
                }
            }
        }
    }

    /// The instances a C-MOVE or C-GET identifier names within the
    /// caller's scope; or its refusal answered: A900 for an identifier
    /// that names none by UID, C001 for too many or an index failure.
    async fn retrieval_instances(
        &mut self,
        context_id: u8,
        command: &Command,
        transfer_syntax: &str,
        data: &[u8],
    ) -> Result<Vec<telerad_store::qido::InstanceHit>, Flow> {
        let search = read_identifier(data, transfer_syntax)
            .and_then(|query| identified(crate::retrieve::search_of(&query)));
        let (status, why) = match search {
            Ok(search) => {
                let index = self.ctx.archive.index();
                match crate::retrieve::instances(index, &search, &self.scope).await {
                    Ok(hits) => return Ok(hits),
                    Err(why) => (status::UNABLE_TO_PROCESS, why),
                }
            }
            Err(refusal) => refusal,
        };
        tracing::warn!("retrieval refused: {why}");
        Err(self
            .respond_move(
                context_id,
                command,
                status,
                SubOperations::default(),
                Some(&why),
            )
            .await)
    }

    async fn respond_move(
        &mut self,
        context_id: u8,
        request: &Command,
        status: u16,
        progress: SubOperations,
        comment: Option<&str>,
    ) -> Flow {
        let response = dimse::move_response(request, status, progress, comment, false);
        self.send_response(context_id, &response).await
    }

    /// A final response with the Failed SOP Instance UID List of `failed`
    /// (none: a plain final response).
    async fn respond_final(
        &mut self,
        context_id: u8,
        request: &Command,
        (status, progress): (u16, SubOperations),
        comment: Option<&str>,
        failed: &[String],
        transfer_syntax: &str,
    ) -> Flow {
        let identifier = crate::retrieve::failed_identifier(failed)
            .map(|set| telerad_dicom::query::encode(&set, transfer_syntax));
        let Some(Ok(bytes)) = identifier else {
            if let Some(Err(e)) = identifier {
                tracing::error!("the failed SOP instance list could not be encoded: {e}");
            }
            return self
                .respond_move(context_id, request, status, progress, comment)
                .await;
        };
        let response = dimse::move_response(request, status, progress, comment, true);
        match self.send_with_data(context_id, &response, &bytes).await {
            Ok(()) => Flow::Continue,
            Err(e) => {
                tracing::warn!(peer = %self.peer, "cannot send a retrieval's final response: {e}");
                Flow::Close
            }
        }
    }

    /// Answers a C-GET: the images it names (within the caller's scope)
    /// are sent on this association, each a C-STORE on a context the
    /// workstation accepted to receive on, in their stored syntax or, for
    /// uncompressed data, re-encoded in the one it took; a pending response
    /// after each, then the final status; audited. A C-CANCEL stops it
    /// after the image under way.
    pub(super) async fn answer_get(
        &mut self,
        context_id: u8,
        command: Command,
        transfer_syntax: &str,
        data: &[u8],
    ) -> Flow {
        let none = SubOperations::default();
        let hits = match self
            .retrieval_instances(context_id, &command, transfer_syntax, data)
            .await
        {
            Ok(hits) => hits,
            Err(flow) => return flow,
        };
        let total = u16::try_from(hits.len()).unwrap_or(u16::MAX);
        let mut done = SubOperations {
            remaining: total,
            ..none
        };
        let mut cancelled = false;
        let mut failed = Vec::new();
        for hit in &hits {
            if cancelled {
                break;
            }
            let sent = self.send_sub_operation(hit, command.message_id).await;
            done.remaining = done.remaining.saturating_sub(1);
            match sent {
                SubOperation::Stored(code) if code == status::SUCCESS => done.completed += 1,
                // Warnings (coercion, elements discarded) still delivered it.
                SubOperation::Stored(code) if code & 0xF000 == 0xB000 => done.warning += 1,
                SubOperation::Stored(code) => {
                    tracing::warn!(sop_instance_uid = %hit.sop_instance_uid, "C-GET: the workstation refused an image: 0x{code:04X}");
                    done.failed += 1;
                    failed.push(hit.sop_instance_uid.clone());
                }
                SubOperation::NotSent(why) => {
                    tracing::warn!(sop_instance_uid = %hit.sop_instance_uid, "C-GET: not sent: {why}");
                    done.failed += 1;
                    failed.push(hit.sop_instance_uid.clone());
                }
                SubOperation::Cancelled(code) => {
                    if code == status::SUCCESS {
                        done.completed += 1;
                    } else {
                        done.failed += 1;
                        failed.push(hit.sop_instance_uid.clone());
                    }
                    cancelled = true;
                }
                SubOperation::Lost(why) => {
                    tracing::warn!(peer = %self.peer, "C-GET: association lost: {why}");
                    return Flow::Close;
                }
            }
            if !cancelled
                && done.remaining > 0
                && let Flow::Close = self
                    .respond_move(context_id, &command, status::PENDING, done, None)
                    .await
            {
                return Flow::Close;
            }
        }
        let final_status = match (cancelled, done.completed + done.warning, done.failed) {
            (true, _, _) => status::CANCELLED,
            (false, _, 0) => status::SUCCESS,
            (false, 0, _) => status::UNABLE_TO_PERFORM_SUBOPERATIONS,
            _ => status::SUBOPERATIONS_FAILED,
        };
        let (calling, site, peer) = (self.calling_ae_title.clone(), self.site.clone(), self.peer);
        let role = self.role();
        let mut studies: Vec<&str> = hits.iter().map(|h| h.study_instance_uid.as_str()).collect();
        studies.dedup();
        audit(&self.ctx, &calling, &site, peer, |record| {
            record.action = "dicom.get".into();
            record.role = role.into();
            record.object = "association".into();
            record.study_uid = (studies.len() == 1).then(|| studies[0].to_string());
            record.detail = serde_json::json!({
                "studies": studies,
                "sent": done.completed + done.warning,
                "failed": done.failed,
                "cancelled": cancelled,
            })
            .to_string();
        })
        .await;
        self.respond_final(
            context_id,
            &command,
            (final_status, done),
            None,
            &failed,
            transfer_syntax,
        )
        .await
    }

    /// One C-GET sub-operation: a C-STORE of `hit` to the workstation on
    /// this association, and its response.
    async fn send_sub_operation(
        &mut self,
        hit: &telerad_store::qido::InstanceHit,
        get_id: u16,
    ) -> SubOperation {
        let stored = telerad_dicom::uid::trim_uid(&hit.transfer_syntax_uid).to_string();
        let uncompressed = telerad_dicom::transcode::is_uncompressed(&stored);
        let mut candidates: Vec<&AcceptedContext> = self
            .contexts
            .values()
            .filter(|c| c.abstract_syntax == hit.sop_class_uid)
            .filter(|c| {
                c.transfer_syntax == stored
                    || (uncompressed
                        && telerad_dicom::transcode::is_uncompressed(&c.transfer_syntax))
            })
            .collect();
        // The stored syntax first: sent as it is on disk.
        candidates.sort_by_key(|c| (c.transfer_syntax != stored, c.id));
        let Some(context) = candidates.first().map(|c| (*c).clone()) else {
            return SubOperation::NotSent(format!(
                "no context accepted for {} in {stored} or, uncompressed, another syntax",
                hit.sop_class_uid
            ));
        };
        let path = self.ctx.archive.layout().absolute(&hit.path);
        let header = match crate::scu::FileToSend::read(&path) {
            Ok(found) => found,
            Err(e) => return SubOperation::NotSent(e.to_string()),
        };
        let data = if context.transfer_syntax == stored {
            None
        } else {
            // Re-encoding reads and parses the whole data set: off the
            // runtime's threads.
            let (path, offset, to) = (
                header.path.clone(),
                header.dataset_offset,
                context.transfer_syntax.clone(),
            );
            let from = stored.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                telerad_dicom::transcode::reencode(&path, offset, &from, &to)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|encoded| encoded);
            match encoded {
                Ok(bytes) => Some(bytes),
                Err(why) => return SubOperation::NotSent(why),
            }
        };
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        let id = self.next_message_id;
        let command = dimse::store_rq(id, &hit.sop_class_uid, &hit.sop_instance_uid);
        let sent = match &data {
            Some(bytes) => self.send_with_data(context.id, &command, bytes).await,
            None => {
                self.send_file_with_command(context.id, &command, &header)
                    .await
            }
        };
        if let Err(e) = sent {
            return SubOperation::Lost(e.to_string());
        }
        self.read_store_response(id, get_id).await
    }
    /// Sends a command, then the data set of `file` streamed from disk in
    /// PDUs the peer accepts.
    async fn send_file_with_command(
        &mut self,
        context_id: u8,
        command: &[u8],
        file: &crate::scu::FileToSend,
    ) -> Result<(), PduError> {
        use std::io::{Read as _, Seek as _};
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
        let mut reader = std::fs::File::open(&file.path)?;
        reader.seek(std::io::SeekFrom::Start(file.dataset_offset))?;
        let mut remaining = file.size.saturating_sub(file.dataset_offset);
        let mut buf = vec![0u8; chunk];
        while remaining > 0 {
            let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(chunk);
            reader.read_exact(&mut buf[..n])?;
            remaining -= n as u64;
            pdu_io::write_pdata(
                &mut self.stream,
                context_id,
                false,
                remaining == 0,
                &buf[..n],
                &mut self.write_buf,
            )
            .await?;
        }
        Ok(())
    }

    /// Reads until the response to the C-STORE `id` sent to the peer; a
    /// C-CANCEL of the C-GET `get_id` met on the way is remembered (one
    /// naming another message is not this C-GET's, PS3.7 §9.3.2.3).
    async fn read_store_response(&mut self, id: u16, get_id: u16) -> SubOperation {
        let mut cancelled = false;
        let answer = self
            .read_commands(None, "C-GET", |command| match command.command_field {
                dimse::C_CANCEL_RQ => {
                    cancelled |= command.message_id_being_responded_to == get_id;
                    Ok(None)
                }
                dimse::C_STORE_RSP if command.message_id_being_responded_to == id => {
                    Ok(Some(command.status))
                }
                other => Err(format!(
                    "command 0x{other:04X} while waiting for a C-STORE response"
                )),
            })
            .await;
        match answer {
            Ok(status) if cancelled => SubOperation::Cancelled(status),
            Ok(status) => SubOperation::Stored(status),
            Err(why) => SubOperation::Lost(why),
        }
    }
}
