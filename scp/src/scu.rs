//! telerad's own SCU: C-ECHO and C-STORE of Part 10 files, each sent in its
//! own transfer syntax (no transcoding), streamed from disk in PDU-sized
//! chunks so that memory does not grow with the file.

use crate::dimse::{self, Command, status};
use crate::negotiation::DICOM_APPLICATION_CONTEXT;
use crate::pdu_io::{self, PduError};
use dicom_object::meta::FileMetaTable;
use dicom_ul::pdu::{
    AssociationRQ, PDataValue, PDataValueType, Pdu, PresentationContextProposed,
    PresentationContextResultReason, UserVariableItem,
};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use telerad_dicom::part10::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use telerad_dicom::sop_class::VERIFICATION;
use telerad_dicom::uid::trim_uid;
use tokio::net::TcpStream;

/// What we announce as our own maximum PDU length.
const OWN_MAX_PDU: u32 = 128 * 1024;
/// The largest P-DATA-TF we send, whatever the peer allows: its maximum is
/// a bound, not a size to fill, and the send buffer is allocated at it.
const MAX_SEND_PDU: u32 = 1024 * 1024;
/// Used when the peer announces no limit (0, PS3.8 §D.1).
const DEFAULT_SEND_PDU: u32 = 128 * 1024;
/// Below this a peer's maximum is taken as a mistake rather than obeyed one
/// tiny PDU at a time.
const MIN_SEND_PDU: u32 = 1024;

/// The data carried by each P-DATA-TF we send to a peer announcing
/// `peer_max`: a PDV item adds 6 bytes to its data (PS3.8 §9.3.5.1). The
/// same bound serves telerad's own associations as SCU and as SCP.
pub(crate) fn send_chunk(peer_max: u32) -> usize {
    let pdu = match peer_max {
        0 => DEFAULT_SEND_PDU,
        n => n.clamp(MIN_SEND_PDU, MAX_SEND_PDU),
    };
    (pdu - 6) as usize
}

#[derive(Debug, thiserror::Error)]
pub enum ScuError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Pdu(#[from] PduError),
    #[error("association rejected by {addr}: {reason}")]
    Rejected { addr: String, reason: String },
    #[error("the peer aborted the association")]
    Aborted,
    #[error("unexpected answer from the peer: {0}")]
    Unexpected(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("no accepted presentation context for SOP class {sop_class} in {transfer_syntax}")]
    NoContext {
        sop_class: String,
        transfer_syntax: String,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// What an association asks for beyond its presentation contexts.
#[derive(Debug, Clone, Copy)]
pub struct Negotiation<'a> {
    /// SOP classes for which telerad asks to be the SCP and not the SCU
    /// (role selection, PS3.7 D.3.3.4).
    pub scp_roles: &'a [&'a str],
    /// C-STOREs telerad would have outstanding at once (the asynchronous
    /// operations window, PS3.7 D.3.3.3); 1 proposes nothing.
    pub operations_window: u16,
}

impl Default for Negotiation<'_> {
    fn default() -> Self {
        Negotiation {
            scp_roles: &[],
            operations_window: 1,
        }
    }
}

/// The Asynchronous Operations Window sub-item's type (PS3.7 D.3.3.3.1).
pub const ASYNC_OPERATIONS_WINDOW_ITEM: u8 = 0x53;

/// The remote application entity: `AE@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub ae_title: String,
    pub address: String,
}

impl std::str::FromStr for Destination {
    type Err = String;
    fn from_str(s: &str) -> Result<Destination, String> {
        let (ae, address) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?}: expected AE@HOST:PORT"))?;
        if ae.is_empty() || ae.len() > 16 {
            return Err(format!("{ae:?}: an AE title has 1 to 16 characters"));
        }
        if !address.contains(':') {
            return Err(format!("{address:?}: expected HOST:PORT"));
        }
        Ok(Destination {
            ae_title: ae.to_string(),
            address: address.to_string(),
        })
    }
}

/// A Part 10 file, as far as sending it needs.
#[derive(Debug, Clone)]
pub struct FileToSend {
    pub path: PathBuf,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub dataset_offset: u64,
    pub size: u64,
}

impl FileToSend {
    pub fn read(path: &Path) -> Result<FileToSend, ScuError> {
        let fail = |reason: String| ScuError::File {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let size = file.metadata().map_err(|e| fail(e.to_string()))?.len();
        let mut reader = BufReader::new(file);
        reader
            .seek(SeekFrom::Start(128))
            .map_err(|e| fail(e.to_string()))?;
        let meta = FileMetaTable::from_reader(&mut reader)
            .map_err(|e| fail(format!("not a DICOM Part 10 file: {e}")))?;
        let dataset_offset = reader.stream_position().map_err(|e| fail(e.to_string()))?;
        Ok(FileToSend {
            path: path.to_path_buf(),
            sop_class_uid: trim_uid(meta.media_storage_sop_class_uid()).to_string(),
            sop_instance_uid: trim_uid(meta.media_storage_sop_instance_uid()).to_string(),
            transfer_syntax_uid: trim_uid(meta.transfer_syntax()).to_string(),
            dataset_offset,
            size,
        })
    }
}

/// Where the data set of a C-STORE comes from.
#[derive(Debug, Clone, Copy)]
pub enum DataSetSource<'a> {
    /// `len` bytes of the file at `path` from `offset`: a stored instance
    /// sent in its own transfer syntax, streamed from disk.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
    /// A data set already in memory, such as one re-encoded in a transfer
    /// syntax the peer accepts.
    Bytes(&'a [u8]),
}

/// A C-STORE that got no response.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StoreAttemptError {
    pub error: ScuError,
    /// The whole data set had been sent when it failed: the peer may have
    /// stored the instance, so sending it again may make a duplicate.
    pub data_set_sent: bool,
}

/// The answer to one C-STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResponse {
    pub status: u16,
    pub error_comment: String,
}

impl StoreResponse {
    /// Success or warning (PS3.4 B.2.3: 0000, B000, B007, B006).
    pub fn is_success(&self) -> bool {
        self.status == status::SUCCESS || (self.status & 0xF000) == 0xB000
    }
}

#[derive(Debug)]
pub struct ClientAssociation {
    stream: Box<dyn crate::stream::DicomStream>,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    chunk: usize,
    contexts: Vec<(u8, String, String)>,
    /// SOP classes for which the peer accepted us as SCP (role selection,
    /// PS3.7 D.3.3.4); `None` where it did not answer the proposal.
    scp_roles: Vec<(String, Option<bool>)>,
    /// Operations that may be outstanding at once: what we proposed,
    /// bounded by what the peer performs; 1 where it did not answer.
    window: u16,
    /// Values of a P-DATA-TF read past the response they ended (at most
    /// one PDU's worth).
    received: std::collections::VecDeque<PDataValue>,
    next_message_id: u16,
    timeout: Duration,
}

impl ClientAssociation {
    /// Proposes one presentation context per (abstract syntax, transfer
    /// syntax) pair, so that each file travels in its own syntax.
    pub async fn connect(
        calling_ae_title: &str,
        destination: &Destination,
        proposals: &[(String, String)],
        timeout: Duration,
    ) -> Result<ClientAssociation, ScuError> {
        ClientAssociation::connect_over(calling_ae_title, destination, proposals, timeout, None)
            .await
    }

    /// As [`ClientAssociation::connect`], over TLS when `tls` is given.
    pub async fn connect_over(
        calling_ae_title: &str,
        destination: &Destination,
        proposals: &[(String, String)],
        timeout: Duration,
        tls: Option<&crate::tls::TlsClient>,
    ) -> Result<ClientAssociation, ScuError> {
        ClientAssociation::connect_as(
            calling_ae_title,
            destination,
            proposals,
            Negotiation::default(),
            timeout,
            tls,
        )
        .await
    }

    /// As [`ClientAssociation::connect_over`], with roles or an operations
    /// window to negotiate: how a storage commitment SCP that opens the
    /// association sends its report, how the forwarder keeps a long link
    /// busy.
    pub async fn connect_as(
        calling_ae_title: &str,
        destination: &Destination,
        proposals: &[(String, String)],
        negotiation: Negotiation<'_>,
        timeout: Duration,
        tls: Option<&crate::tls::TlsClient>,
    ) -> Result<ClientAssociation, ScuError> {
        let scp_roles = negotiation.scp_roles;
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&destination.address))
            .await
            .map_err(|_| ScuError::Timeout(timeout))?
            .map_err(|source| ScuError::Connect {
                addr: destination.address.clone(),
                source,
            })?;
        crate::socket::tune(&stream);
        let stream: Box<dyn crate::stream::DicomStream> = match tls {
            None => Box::new(stream),
            Some(tls) => Box::new(
                tokio::time::timeout(
                    timeout,
                    tls.connector.connect(tls.server_name.clone(), stream),
                )
                .await
                .map_err(|_| ScuError::Timeout(timeout))?
                .map_err(|source| ScuError::Connect {
                    addr: format!("{} (TLS)", destination.address),
                    source,
                })?,
            ),
        };
        let presentation_contexts: Vec<PresentationContextProposed> = proposals
            .iter()
            .take(128)
            .enumerate()
            .map(|(i, (abstract_syntax, ts))| PresentationContextProposed {
                // Context ids are odd, 1 to 255 (PS3.8 §9.3.2.2).
                id: u8::try_from(2 * i + 1).unwrap_or(255),
                abstract_syntax: abstract_syntax.clone(),
                transfer_syntaxes: vec![ts.clone()],
            })
            .collect();
        let mut user_variables = vec![
            UserVariableItem::MaxLength(OWN_MAX_PDU),
            UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.to_string()),
            UserVariableItem::ImplementationVersionName(IMPLEMENTATION_VERSION_NAME.to_string()),
        ];
        if negotiation.operations_window > 1 {
            // Invoked: the window; performed: one at a time (telerad
            // performs nothing asked of it on its own associations).
            let [high, low] = negotiation.operations_window.to_be_bytes();
            user_variables.push(UserVariableItem::Unknown(
                ASYNC_OPERATIONS_WINDOW_ITEM,
                vec![high, low, 0, 1],
            ));
        }
        user_variables.extend(scp_roles.iter().map(|uid| {
            UserVariableItem::ScuScpRoleSelectionSubItem(
                uid.to_string(),
                dicom_ul::pdu::RequestorRoles {
                    scu: false,
                    scp: true,
                },
            )
        }));
        let rq = Pdu::AssociationRQ(AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling_ae_title.to_string(),
            called_ae_title: destination.ae_title.clone(),
            application_context_name: DICOM_APPLICATION_CONTEXT.to_string(),
            presentation_contexts: presentation_contexts.clone(),
            user_variables,
        });
        let mut association = ClientAssociation {
            stream,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            chunk: 0,
            contexts: Vec::new(),
            scp_roles: scp_roles
                .iter()
                .map(|uid| (uid.to_string(), None))
                .collect(),
            window: 1,
            received: std::collections::VecDeque::new(),
            next_message_id: 1,
            timeout,
        };
        pdu_io::write(&mut association.stream, &rq, &mut association.write_buf).await?;
        match association.read_pdu().await? {
            Pdu::AssociationAC(ac) => {
                let peer_max = ac
                    .user_variables
                    .iter()
                    .find_map(|v| match v {
                        UserVariableItem::MaxLength(n) => Some(*n),
                        _ => None,
                    })
                    .unwrap_or(0);
                association.chunk = send_chunk(peer_max);
                association.window =
                    accepted_window(negotiation.operations_window, &ac.user_variables);
                for variable in &ac.user_variables {
                    if let UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) = variable {
                        let uid = trim_uid(uid);
                        if let Some(asked) =
                            association.scp_roles.iter_mut().find(|(a, _)| a == uid)
                        {
                            asked.1 = Some(roles.scp);
                        }
                    }
                }
                for result in ac.presentation_contexts {
                    if result.reason != PresentationContextResultReason::Acceptance {
                        continue;
                    }
                    if let Some(proposed) = presentation_contexts.iter().find(|p| p.id == result.id)
                    {
                        association.contexts.push((
                            result.id,
                            proposed.abstract_syntax.clone(),
                            trim_uid(&result.transfer_syntax).to_string(),
                        ));
                    }
                }
                Ok(association)
            }
            Pdu::AssociationRJ(rj) => Err(ScuError::Rejected {
                addr: destination.address.clone(),
                reason: format!("{} ({:?})", rj.source, rj.result),
            }),
            other => Err(ScuError::Unexpected(other.short_description().to_string())),
        }
    }

    pub fn accepted_contexts(&self) -> &[(u8, String, String)] {
        &self.contexts
    }

    /// How many C-STOREs may be outstanding at once on this association.
    pub fn operations_window(&self) -> u16 {
        self.window
    }

    /// Whether the peer took us as SCP of `sop_class`: `Some(false)` if it
    /// refused, `None` if it did not answer (or it was not asked).
    pub fn scp_role_accepted(&self, sop_class: &str) -> Option<bool> {
        self.scp_roles
            .iter()
            .find(|(uid, _)| uid == sop_class)
            .and_then(|(_, accepted)| *accepted)
    }

    /// Sends an N-EVENT-REPORT-RQ with its data set (in the context
    /// accepted for `sop_class` in `transfer_syntax`) and waits for the
    /// response: its status (PS3.7 §10.1.1).
    pub async fn event_report(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        event_type: u16,
        transfer_syntax: &str,
        data: &[u8],
    ) -> Result<u16, ScuError> {
        let context_id = self.context_for(sop_class, transfer_syntax)?;
        let id = self.message_id();
        self.send_command(
            context_id,
            dimse::event_report_rq(id, sop_class, sop_instance, event_type),
        )
        .await?;
        let mut pieces = data.chunks(self.chunk.max(1)).peekable();
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            self.send_data(context_id, piece, last).await?;
        }
        let response = self.read_response().await?;
        if response.command_field != dimse::N_EVENT_REPORT_RSP
            || response.message_id_being_responded_to != id
        {
            return Err(ScuError::Unexpected(format!(
                "command 0x{:04X} answering message {} while waiting for the report's response",
                response.command_field, response.message_id_being_responded_to
            )));
        }
        Ok(response.status)
    }

    async fn read_pdu(&mut self) -> Result<Pdu, ScuError> {
        let read = pdu_io::read(&mut self.stream, OWN_MAX_PDU, &mut self.read_buf);
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(ScuError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(Pdu::AbortRQ { .. })) => Err(ScuError::Aborted),
            Ok(Ok(pdu)) => Ok(pdu),
        }
    }

    fn context_for(&self, abstract_syntax: &str, transfer_syntax: &str) -> Result<u8, ScuError> {
        self.contexts
            .iter()
            .find(|(_, a, t)| a == abstract_syntax && t == transfer_syntax)
            .map(|(id, _, _)| *id)
            .ok_or_else(|| ScuError::NoContext {
                sop_class: abstract_syntax.to_string(),
                transfer_syntax: transfer_syntax.to_string(),
            })
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    async fn send_command(&mut self, context_id: u8, command: Vec<u8>) -> Result<(), ScuError> {
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        };
        pdu_io::write(&mut self.stream, &pdu, &mut self.write_buf).await?;
        Ok(())
    }

    /// Reads until a complete command set arrives. What follows it in the
    /// same P-DATA-TF (the next responses, with a window) is kept for the
    /// next call.
    async fn read_response(&mut self) -> Result<Command, ScuError> {
        let mut command = Vec::new();
        loop {
            let Some(value) = self.received.pop_front() else {
                match self.read_pdu().await? {
                    Pdu::PData { data } => self.received.extend(data),
                    other => {
                        return Err(ScuError::Unexpected(other.short_description().to_string()));
                    }
                }
                continue;
            };
            if value.value_type != PDataValueType::Command {
                return Err(ScuError::Unexpected("data set in a response".into()));
            }
            if command.len() + value.data.len() > dimse::MAX_COMMAND_BYTES {
                return Err(ScuError::Unexpected(format!(
                    "a response command set over {} bytes",
                    dimse::MAX_COMMAND_BYTES
                )));
            }
            command.extend_from_slice(&value.data);
            if value.is_last {
                return dimse::decode(&command).map_err(|e| ScuError::Unexpected(e.to_string()));
            }
        }
    }

    pub async fn echo(&mut self) -> Result<u16, ScuError> {
        let context_id = self
            .contexts
            .iter()
            .find(|(_, a, _)| a == VERIFICATION)
            .map(|(id, _, _)| *id)
            .ok_or_else(|| ScuError::NoContext {
                sop_class: VERIFICATION.into(),
                transfer_syntax: "any".into(),
            })?;
        let id = self.message_id();
        self.send_command(context_id, dimse::echo_rq(id)).await?;
        Ok(self.read_response().await?.status)
    }

    /// Sends one file, as it is on disk, and waits for the C-STORE response.
    pub async fn store(&mut self, file: &FileToSend) -> Result<StoreResponse, ScuError> {
        self.store_data_set(
            &file.sop_class_uid,
            &file.sop_instance_uid,
            &file.transfer_syntax_uid,
            DataSetSource::File {
                path: &file.path,
                offset: file.dataset_offset,
                len: file.size.saturating_sub(file.dataset_offset),
            },
        )
        .await
        .map_err(|attempt| attempt.error)
    }

    /// Sends one data set with a C-STORE and waits for the response, in
    /// `transfer_syntax_uid`, which the peer must have accepted for
    /// `sop_class_uid`. Unlike [`ClientAssociation::store`] the data set may
    /// come from memory (re-encoded in another transfer syntax), and a
    /// failure says whether the whole data set had gone out: if it had, the
    /// peer may have stored the instance even though no response came.
    pub async fn store_data_set(
        &mut self,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        data_set: DataSetSource<'_>,
    ) -> Result<StoreResponse, StoreAttemptError> {
        let id = self
            .send_store(
                sop_class_uid,
                sop_instance_uid,
                transfer_syntax_uid,
                data_set,
            )
            .await?;
        let sent = |error: ScuError| StoreAttemptError {
            error,
            data_set_sent: true,
        };
        let (answered, response) = self.read_store_response().await.map_err(sent)?;
        if answered != id {
            return Err(sent(ScuError::Unexpected(format!(
                "response to message {answered} while waiting for {id}"
            ))));
        }
        Ok(response)
    }

    /// Sends a C-STORE request and its data set without waiting for the
    /// response (within the operations window); the request's message ID.
    pub async fn send_store(
        &mut self,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        data_set: DataSetSource<'_>,
    ) -> Result<u16, StoreAttemptError> {
        let not_sent = |error: ScuError| StoreAttemptError {
            error,
            data_set_sent: false,
        };
        let context_id = self
            .context_for(sop_class_uid, transfer_syntax_uid)
            .map_err(not_sent)?;
        let id = self.message_id();
        let command = dimse::store_rq(id, sop_class_uid, sop_instance_uid);
        self.send_command(context_id, command)
            .await
            .map_err(not_sent)?;
        match data_set {
            DataSetSource::File { path, offset, len } => {
                let fail = |reason: String| {
                    not_sent(ScuError::File {
                        path: path.to_path_buf(),
                        reason,
                    })
                };
                let mut reader = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(|e| fail(e.to_string()))?;
                let mut remaining = len;
                let mut chunk = vec![0u8; self.chunk];
                while remaining > 0 {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.chunk);
                    reader
                        .read_exact(&mut chunk[..n])
                        .map_err(|e| fail(e.to_string()))?;
                    remaining -= n as u64;
                    self.send_data(context_id, &chunk[..n], remaining == 0)
                        .await
                        .map_err(not_sent)?;
                }
            }
            DataSetSource::Bytes(bytes) => {
                let mut pieces = bytes.chunks(self.chunk.max(1)).peekable();
                while let Some(piece) = pieces.next() {
                    let last = pieces.peek().is_none();
                    self.send_data(context_id, piece, last)
                        .await
                        .map_err(not_sent)?;
                }
            }
        }
        Ok(id)
    }

    /// The next C-STORE response: the message it answers, and what it says.
    pub async fn read_store_response(&mut self) -> Result<(u16, StoreResponse), ScuError> {
        let response = self.read_response().await?;
        if response.command_field != dimse::C_STORE_RSP {
            return Err(ScuError::Unexpected(format!(
                "command 0x{:04X} while waiting for a C-STORE response",
                response.command_field
            )));
        }
        Ok((
            response.message_id_being_responded_to,
            StoreResponse {
                status: response.status,
                error_comment: response.error_comment,
            },
        ))
    }

    async fn send_data(
        &mut self,
        context_id: u8,
        data: &[u8],
        is_last: bool,
    ) -> Result<(), ScuError> {
        pdu_io::write_pdata(
            &mut self.stream,
            context_id,
            false,
            is_last,
            data,
            &mut self.write_buf,
        )
        .await?;
        Ok(())
    }

    /// A-RELEASE (PS3.8 §7.2).
    pub async fn release(mut self) -> Result<(), ScuError> {
        pdu_io::write(&mut self.stream, &Pdu::ReleaseRQ, &mut self.write_buf).await?;
        match self.read_pdu().await? {
            Pdu::ReleaseRP => Ok(()),
            other => Err(ScuError::Unexpected(other.short_description().to_string())),
        }
    }
}

/// The window a peer's A-ASSOCIATE-AC leaves of the `proposed` one: its
/// Maximum Number Operations Invoked, the operations we may invoke (0
/// means no bound, PS3.7 D.3.3.3.1), never more than we proposed; without
/// the item, operations are synchronous.
fn accepted_window(proposed: u16, variables: &[UserVariableItem]) -> u16 {
    if proposed <= 1 {
        return 1;
    }
    variables
        .iter()
        .find_map(|v| match v {
            UserVariableItem::Unknown(ASYNC_OPERATIONS_WINDOW_ITEM, data) if data.len() == 4 => {
                let invoked = u16::from_be_bytes([data[0], data[1]]);
                Some(if invoked == 0 {
                    proposed
                } else {
                    invoked.min(proposed)
                })
            }
            _ => None,
        })
        .unwrap_or(1)
}

/// Convenience for `telerad echo`: associate, C-ECHO, release.
pub async fn echo(
    calling_ae_title: &str,
    destination: &Destination,
    timeout: Duration,
) -> Result<u16, ScuError> {
    let proposals = [(
        VERIFICATION.to_string(),
        telerad_dicom::transfer_syntax::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
    )];
    let mut association =
        ClientAssociation::connect(calling_ae_title, destination, &proposals, timeout).await?;
    let status = association.echo().await?;
    association.release().await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_what_both_sides_allow() {
        let item = |invoked: u16, performed: u16| {
            let mut data = invoked.to_be_bytes().to_vec();
            data.extend(performed.to_be_bytes());
            vec![UserVariableItem::Unknown(
                ASYNC_OPERATIONS_WINDOW_ITEM,
                data,
            )]
        };
        // The answer's first field: what we may invoke.
        assert_eq!(accepted_window(16, &item(8, 1)), 8);
        assert_eq!(accepted_window(16, &item(64, 1)), 16);
        // 0: the peer sets no bound.
        assert_eq!(accepted_window(16, &item(0, 1)), 16);
        // A peer that performs many but lets us invoke one.
        assert_eq!(accepted_window(16, &item(1, 16)), 1);
        // No answer: synchronous, as without negotiation.
        assert_eq!(accepted_window(16, &[]), 1);
        assert_eq!(accepted_window(1, &item(8, 1)), 1);
        // A malformed item is no answer.
        assert_eq!(
            accepted_window(
                16,
                &[UserVariableItem::Unknown(
                    ASYNC_OPERATIONS_WINDOW_ITEM,
                    vec![0, 4]
                )]
            ),
            1
        );
    }

    #[test]
    fn the_peer_maximum_bounds_the_send_buffer_but_never_sizes_it_past_ours() {
        // 0: no limit announced (PS3.8 §D.1).
        assert_eq!(send_chunk(0), DEFAULT_SEND_PDU as usize - 6);
        assert_eq!(send_chunk(16_384), 16_384 - 6);
        // A peer announcing 4 GiB does not make us allocate 4 GiB.
        assert_eq!(send_chunk(u32::MAX), MAX_SEND_PDU as usize - 6);
        assert_eq!(send_chunk(7), MIN_SEND_PDU as usize - 6);
    }
}
