//! DIMSE command sets (DICOM PS3.7 §9.3, §E): always implicit VR little
//! endian, always led by the Command Group Length.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
/// Query/Retrieve's query (PS3.7 §9.3.2) and move (§9.3.4).
pub const C_FIND_RQ: u16 = 0x0020;
pub const C_MOVE_RQ: u16 = 0x0021;
/// Query/Retrieve's get (PS3.7 §9.3.3), answered by C-STOREs on the same
/// association.
pub const C_GET_RQ: u16 = 0x0010;
/// DIMSE-N operations of the Modality Performed Procedure Step service
/// (PS3.7 §10.3.5, §10.3.3).
pub const N_CREATE_RQ: u16 = 0x0140;
pub const N_SET_RQ: u16 = 0x0120;
/// Storage Commitment's request and report (PS3.7 §10.3.4, §10.3.1).
pub const N_ACTION_RQ: u16 = 0x0130;
pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
/// Command Data Set Type value meaning "no data set" (PS3.7 E.1-1).
pub const NO_DATA_SET: u16 = 0x0101;

/// DIMSE status codes used by telerad (PS3.7 Annex C, PS3.4 B.2.3).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: not authorized (PS3.7 C.4.2).
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// DIMSE-N failures (PS3.7 C.5, Table C.5-1).
    pub const INVALID_ATTRIBUTE_VALUE: u16 = 0x0106;
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
    pub const INVALID_OBJECT_INSTANCE: u16 = 0x0117;
    pub const NO_SUCH_SOP_CLASS: u16 = 0x0118;
    pub const MISSING_ATTRIBUTE: u16 = 0x0120;
    pub const RESOURCE_LIMITATION: u16 = 0x0213;
    pub const NO_SUCH_ACTION: u16 = 0x0123;
    /// C-FIND: a match follows, more may come (PS3.4 C.4.1.1.4).
    pub const PENDING: u16 = 0xFF00;
    /// C-FIND: the identifier does not match the SOP class (PS3.4 C.4.1.1.4).
    pub const IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// C-FIND: unable to process (PS3.4 C.4.1.1.4, Cxxx).
    pub const UNABLE_TO_PROCESS: u16 = 0xC001;
    /// C-FIND: matching ended by a C-CANCEL (PS3.4 C.4.1.1.4).
    pub const CANCELLED: u16 = 0xFE00;
    /// C-MOVE: the destination is not one this caller may move to
    /// (PS3.4 C.4.2.1.5).
    pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
    /// C-MOVE: no sub-operation could be performed.
    pub const UNABLE_TO_PERFORM_SUBOPERATIONS: u16 = 0xA702;
    /// C-MOVE: sub-operations complete, one or more failed (a warning).
    pub const SUBOPERATIONS_FAILED: u16 = 0xB000;
}

#[derive(Debug, thiserror::Error)]
#[error("malformed DIMSE command: {0}")]
pub struct CommandError(pub String);

/// The fields of a received command that telerad acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub command_field: u16,
    pub message_id: u16,
    pub message_id_being_responded_to: u16,
    pub affected_sop_class_uid: String,
    pub affected_sop_instance_uid: String,
    /// What an N-SET (and N-GET, N-ACTION) is about (PS3.7 §10.1).
    pub requested_sop_class_uid: String,
    pub requested_sop_instance_uid: String,
    /// An N-ACTION's Action Type ID (0000,1008).
    pub action_type_id: Option<u16>,
    /// A C-MOVE's Move Destination (0000,0600).
    pub move_destination: String,
    pub has_data_set: bool,
    pub status: u16,
    pub error_comment: String,
}

fn implicit_le() -> &'static dicom_encoding::TransferSyntax {
    // The registry always has the default transfer syntax (PS3.5 §10.1).
    TransferSyntaxRegistry
        .get("1.2.840.10008.1.2")
        .expect("implicit VR little endian is built into the registry")
}

/// Command sets are small (a C-STORE-RQ is about 200 bytes); this bounds
/// what a peer may make us collect before [`decode`] looks at it.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Command elements telerad reads (PS3.7 §E.1, Table E.1-1).
const COMMAND_GROUP_LENGTH: u32 = 0x0000_0000;
const AFFECTED_SOP_CLASS_UID: u32 = 0x0000_0002;
const REQUESTED_SOP_CLASS_UID: u32 = 0x0000_0003;
const COMMAND_FIELD: u32 = 0x0000_0100;
const MOVE_DESTINATION: u32 = 0x0000_0600;
const MESSAGE_ID: u32 = 0x0000_0110;
const MESSAGE_ID_BEING_RESPONDED_TO: u32 = 0x0000_0120;
const COMMAND_DATA_SET_TYPE: u32 = 0x0000_0800;
const STATUS: u32 = 0x0000_0900;
const ERROR_COMMENT: u32 = 0x0000_0902;
const AFFECTED_SOP_INSTANCE_UID: u32 = 0x0000_1000;
const REQUESTED_SOP_INSTANCE_UID: u32 = 0x0000_1001;
const ACTION_TYPE_ID: u32 = 0x0000_1008;

/// Undefined length (PS3.5 §7.1.1), which no command element may have.
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

fn show(tag: u32) -> String {
    format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF)
}

/// Decodes a command set: implicit VR little endian, each element a tag
/// (group, element: 2 + 2 bytes), a 4-byte length, then the value (PS3.7
/// §6.3.1, PS3.5 §7.1.2). Every length is checked against the bytes present
/// before the value is looked at, and values are borrowed, not copied, until
/// one telerad keeps is found: a length the peer made up costs nothing.
pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
    let fail = |why: String| Err(CommandError(why));
    if bytes.len() > MAX_COMMAND_BYTES {
        return fail(format!(
            "{} bytes, over the limit of {MAX_COMMAND_BYTES}",
            bytes.len()
        ));
    }
    let mut command = Command::default();
    let mut command_field = None;
    let mut previous: Option<u32> = None;
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return fail(format!(
                "{} bytes left at offset {at}, too few for an element header",
                bytes.len() - at
            ));
        };
        let group = u16::from_le_bytes([header[0], header[1]]);
        let element = u16::from_le_bytes([header[2], header[3]]);
        let tag = (u32::from(group) << 16) | u32::from(element);
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if group != 0x0000 {
            return fail(format!(
                "element {} is not a command element (group 0000)",
                show(tag)
            ));
        }
        // Ascending order (PS3.5 §7.1): a repeated element could otherwise
        // say one thing to telerad and another to a log or a peer.
        if previous.is_some_and(|p| p >= tag) {
            return fail(format!("element {} is repeated or out of order", show(tag)));
        }
        previous = Some(tag);
        if length == UNDEFINED_LENGTH {
            return fail(format!("element {} has an undefined length", show(tag)));
        }
        let start = at + 8;
        let left = bytes.len() - start;
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > left {
            return fail(format!(
                "element {} claims {length} bytes but only {left} follow",
                show(tag)
            ));
        }
        let value = &bytes[start..start + length];
        at = start + length;
        let number = || -> Result<u16, CommandError> {
            match value {
                [low, high] => Ok(u16::from_le_bytes([*low, *high])),
                _ => Err(CommandError(format!(
                    "element {} (US) has {} bytes instead of 2",
                    show(tag),
                    value.len()
                ))),
            }
        };
        let text = || {
            String::from_utf8_lossy(value)
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        match tag {
            COMMAND_GROUP_LENGTH => {
                let [a, b, c, d] = value else {
                    return fail(format!(
                        "Command Group Length (0000,0000) has {} bytes instead of 4",
                        value.len()
                    ));
                };
                let declared = u32::from_le_bytes([*a, *b, *c, *d]);
                let actual = bytes.len() - at;
                if usize::try_from(declared).ok() != Some(actual) {
                    return fail(format!(
                        "Command Group Length (0000,0000) says {declared} bytes, {actual} follow"
                    ));
                }
            }
            AFFECTED_SOP_CLASS_UID => command.affected_sop_class_uid = text(),
            COMMAND_FIELD => command_field = Some(number()?),
            MESSAGE_ID => command.message_id = number()?,
            MESSAGE_ID_BEING_RESPONDED_TO => command.message_id_being_responded_to = number()?,
            COMMAND_DATA_SET_TYPE => command.has_data_set = number()? != NO_DATA_SET,
            STATUS => command.status = number()?,
            ERROR_COMMENT => command.error_comment = text(),
            AFFECTED_SOP_INSTANCE_UID => command.affected_sop_instance_uid = text(),
            REQUESTED_SOP_CLASS_UID => command.requested_sop_class_uid = text(),
            REQUESTED_SOP_INSTANCE_UID => command.requested_sop_instance_uid = text(),
            ACTION_TYPE_ID => command.action_type_id = Some(number()?),
            MOVE_DESTINATION => command.move_destination = text(),
            _ => {}
        }
    }
    command.command_field = match command_field {
        Some(field) => field,
        None => return fail("no Command Field (0000,0100)".into()),
    };
    Ok(command)
}

fn uid(value: &str) -> PrimitiveValue {
    // UIDs are padded with NUL to an even length (PS3.5 §9.1).
    let mut padded = value.to_string();
    if padded.len() % 2 == 1 {
        padded.push('\0');
    }
    PrimitiveValue::from(padded)
}

fn text(value: &str) -> PrimitiveValue {
    let mut padded: String = value
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(64)
        .collect();
    if padded.len() % 2 == 1 {
        padded.push(' ');
    }
    PrimitiveValue::from(padded)
}

/// Error Comment (0000,0902) is LO: at most 64 characters (PS3.7 C.4.2,
/// PS3.5 6.2). Our messages are written for the log and often longer,
/// mostly because of the UIDs they quote; the sender knows those already,
/// so they are dropped first. What is still too long is cut at a word and
/// marked "...". The log keeps the whole message.
pub fn error_comment(message: &str) -> String {
    const MAX: usize = 64;
    let message: String = message
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    if message.len() <= MAX {
        return message;
    }
    let without_uids = message
        .split_whitespace()
        .filter(|word| !is_uid_like(word))
        .collect::<Vec<_>>()
        .join(" ");
    if without_uids.len() <= MAX {
        return without_uids;
    }
    let mut cut = String::new();
    for word in without_uids.split(' ') {
        if cut.len() + word.len() + 1 > MAX - 3 {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    if cut.is_empty() {
        // One word longer than the field: cut it.
        cut = without_uids.chars().take(MAX - 3).collect();
    }
    cut.push_str("...");
    cut
}

/// A UID as quoted in a message: digits and dots, possibly in quotes or
/// followed by punctuation.
fn is_uid_like(word: &str) -> bool {
    let core = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ':' | ';' | '(' | ')'));
    core.contains('.') && core.len() > 8 && core.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn encode(elements: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
    let mut object = InMemDicomObject::from_element_iter(elements);
    object.put(DataElement::new(
        tags::COMMAND_GROUP_LENGTH,
        VR::UL,
        PrimitiveValue::from(0u32),
    ));
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail on I/O; the elements are well formed.
    if let Err(e) = object.write_dataset_with_ts(&mut out, implicit_le()) {
        tracing::error!("cannot encode a DIMSE command: {e}");
        return Vec::new();
    }
    // Group length element: tag (4) + length (4) + value (4); the value is
    // the length of everything after it.
    let rest = u32::try_from(out.len().saturating_sub(12)).unwrap_or(0);
    if out.len() >= 12 {
        out[8..12].copy_from_slice(&rest.to_le_bytes());
    }
    out
}

pub fn echo_rq(message_id: u16) -> Vec<u8> {
    encode(vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            uid(telerad_dicom::sop_class::VERIFICATION),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(C_ECHO_RQ)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(NO_DATA_SET),
        ),
    ])
}

/// A request followed by a data set: its command field and message id, the
/// SOP class and instance under the tags the operation uses (Affected or
/// Requested), and `more` elements.
fn request_with_data_set(
    command_field: u16,
    message_id: u16,
    (class_tag, sop_class_uid): (dicom_core::Tag, &str),
    (instance_tag, sop_instance_uid): (dicom_core::Tag, &str),
    more: Vec<DataElement<InMemDicomObject>>,
) -> Vec<u8> {
    let mut elements = vec![
        DataElement::new(class_tag, VR::UI, uid(sop_class_uid)),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(command_field),
        ),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0x0000u16),
        ),
        DataElement::new(instance_tag, VR::UI, uid(sop_instance_uid)),
    ];
    elements.extend(more);
    encode(elements)
}

pub fn store_rq(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    request_with_data_set(
        C_STORE_RQ,
        message_id,
        (tags::AFFECTED_SOP_CLASS_UID, sop_class_uid),
        (tags::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid),
        // Priority MEDIUM.
        vec![DataElement::new(
            tags::PRIORITY,
            VR::US,
            PrimitiveValue::from(0u16),
        )],
    )
}

/// An N-CREATE-RQ with a data set (PS3.7 §10.3.5.1); a peer's request,
/// as telerad's tests send it.
pub fn n_create_rq(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    request_with_data_set(
        N_CREATE_RQ,
        message_id,
        (tags::AFFECTED_SOP_CLASS_UID, sop_class_uid),
        (tags::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid),
        Vec::new(),
    )
}

/// An N-SET-RQ with a data set (PS3.7 §10.3.3.1).
pub fn n_set_rq(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    request_with_data_set(
        N_SET_RQ,
        message_id,
        (tags::REQUESTED_SOP_CLASS_UID, sop_class_uid),
        (tags::REQUESTED_SOP_INSTANCE_UID, sop_instance_uid),
        Vec::new(),
    )
}

/// The N-EVENT-REPORT-RQ of a storage commitment report (PS3.7
/// §10.3.1.1, PS3.4 J.3.3), followed by its data set.
pub fn event_report_rq(
    message_id: u16,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    event_type_id: u16,
) -> Vec<u8> {
    request_with_data_set(
        N_EVENT_REPORT_RQ,
        message_id,
        (tags::AFFECTED_SOP_CLASS_UID, sop_class_uid),
        (tags::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid),
        vec![DataElement::new(
            tags::EVENT_TYPE_ID,
            VR::US,
            PrimitiveValue::from(event_type_id),
        )],
    )
}

/// A response to `request` (command field = request's | 0x8000).
pub fn response(request: &Command, status: u16, comment: Option<&str>) -> Vec<u8> {
    response_with(request, status, comment, false)
}

/// A pending C-FIND response, whose identifier (a data set) follows.
pub fn pending_with_identifier(request: &Command) -> Vec<u8> {
    response_with(request, status::PENDING, None, true)
}

/// Where a C-MOVE's sub-operations stand (PS3.7 §9.3.4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    pub remaining: u16,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

/// A C-MOVE response: pending with its progress, or final.
pub fn move_response(
    request: &Command,
    status: u16,
    progress: SubOperations,
    comment: Option<&str>,
    identifier_follows: bool,
) -> Vec<u8> {
    let mut elements = response_elements(request, status, comment, identifier_follows);
    // Remaining is only sent while pending, and when cancelled (PS3.7
    // Table 9.3-4, PS3.4 C.4.2.1.6).
    if status == self::status::PENDING || status == self::status::CANCELLED {
        elements.push(DataElement::new(
            tags::NUMBER_OF_REMAINING_SUBOPERATIONS,
            VR::US,
            PrimitiveValue::from(progress.remaining),
        ));
    }
    for (tag, n) in [
        (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, progress.completed),
        (tags::NUMBER_OF_FAILED_SUBOPERATIONS, progress.failed),
        (tags::NUMBER_OF_WARNING_SUBOPERATIONS, progress.warning),
    ] {
        elements.push(DataElement::new(tag, VR::US, PrimitiveValue::from(n)));
    }
    encode(elements)
}

fn response_with(
    request: &Command,
    status: u16,
    comment: Option<&str>,
    data_set_follows: bool,
) -> Vec<u8> {
    encode(response_elements(
        request,
        status,
        comment,
        data_set_follows,
    ))
}

fn response_elements(
    request: &Command,
    status: u16,
    comment: Option<&str>,
    data_set_follows: bool,
) -> Vec<DataElement<InMemDicomObject>> {
    // Any value but NO_DATA_SET says a data set follows (PS3.7 E.1-1).
    let data_set_type = if data_set_follows {
        0x0000
    } else {
        NO_DATA_SET
    };
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            uid(&request.affected_sop_class_uid),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(request.command_field | 0x8000),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(request.message_id),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(data_set_type),
        ),
        DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)),
    ];
    if !request.affected_sop_instance_uid.is_empty() {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            uid(&request.affected_sop_instance_uid),
        ));
    }
    if let Some(comment) = comment {
        elements.push(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            text(&error_comment(comment)),
        ));
    }
    elements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_request_round_trips_with_a_correct_group_length() {
        let bytes = store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.45");
        let group_length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        assert_eq!(group_length as usize, bytes.len() - 12);
        let command = decode(&bytes).unwrap();
        assert_eq!(command.command_field, C_STORE_RQ);
        assert_eq!(command.message_id, 7);
        assert_eq!(command.affected_sop_instance_uid, "1.2.3.45");
        assert!(command.has_data_set);
    }

    #[test]
    fn error_comments_fit_in_an_lo_and_keep_their_sense() {
        assert_eq!(error_comment("disk full"), "disk full");
        let uids = "the data set's SOP Instance UID 1.2.826.0.1.3680043.8.498.1234567890 \
                    differs from the command's 1.2.826.0.1.3680043.8.498.1234567891";
        assert_eq!(
            error_comment(uids),
            "the data set's SOP Instance UID differs from the command's"
        );
        let long = "cannot write the instance to disk: No space left on device (os error 28) \
                    while syncing the study folder";
        let comment = error_comment(long);
        assert!(comment.len() <= 64, "{comment}");
        assert_eq!(
            comment,
            "cannot write the instance to disk: No space left on device..."
        );
        let word = "x".repeat(100);
        assert_eq!(error_comment(&word).len(), 64);
    }

    #[test]
    fn an_n_set_names_its_requested_instance() {
        let command = decode(&n_set_rq(5, "1.2.840.10008.3.1.2.3.3", "1.2.3.9")).unwrap();
        assert_eq!(command.command_field, N_SET_RQ);
        assert_eq!(command.requested_sop_class_uid, "1.2.840.10008.3.1.2.3.3");
        assert_eq!(command.requested_sop_instance_uid, "1.2.3.9");
        assert!(command.affected_sop_instance_uid.is_empty());
        assert!(command.has_data_set);
    }

    #[test]
    fn response_carries_status_and_comment() {
        let request = decode(&store_rq(3, "1.2.840.10008.5.1.4.1.1.4", "1.2.3")).unwrap();
        let command = decode(&response(
            &request,
            status::OUT_OF_RESOURCES,
            Some("disk full"),
        ))
        .unwrap();
        assert_eq!(command.command_field, C_STORE_RSP);
        assert_eq!(command.message_id_being_responded_to, 3);
        assert_eq!(command.status, 0xA700);
        assert_eq!(command.error_comment, "disk full");
        assert!(!command.has_data_set);
    }

    /// One implicit VR little endian element.
    fn element(group: u16, element: u16, length: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn refused(bytes: &[u8], expected: &str) {
        match decode(bytes) {
            Ok(command) => panic!("accepted: {command:?}"),
            Err(CommandError(why)) => assert!(why.contains(expected), "{why}"),
        }
    }

    #[test]
    fn a_length_past_the_end_is_refused_without_allocating_it() {
        // 26 bytes whose second element claims 1 GiB, then 0xFFFFFFF0: the
        // lengths a peer used to make the server allocate them.
        for claimed in [1u32 << 30, 0xFFFF_FFF0] {
            let mut bytes = element(0, 0x0100, 2, &C_ECHO_RQ.to_le_bytes());
            bytes.extend(element(0, 0x0110, claimed, &[1, 0, 0, 0, 0, 0, 0, 0]));
            assert_eq!(bytes.len(), 26);
            refused(&bytes, &format!("claims {claimed} bytes but only 8 follow"));
        }
    }

    #[test]
    fn malformed_command_sets_are_refused_with_the_reason() {
        let field = element(0, 0x0100, 2, &C_ECHO_RQ.to_le_bytes());
        let id = element(0, 0x0110, 2, &[5, 0]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "no Command Field"),
            (
                "partial header",
                [field.clone(), vec![0; 5]].concat(),
                "too few for an element header",
            ),
            (
                "undefined length",
                element(0, 0x0100, 0xFFFF_FFFF, &[]),
                "undefined length",
            ),
            (
                "data set element",
                [field.clone(), element(0x0008, 0x0018, 2, b"1\0")].concat(),
                "not a command element",
            ),
            (
                "repeated",
                [field.clone(), field.clone()].concat(),
                "repeated or out of order",
            ),
            (
                "out of order",
                [id.clone(), field.clone()].concat(),
                "repeated or out of order",
            ),
            (
                "US of 4 bytes",
                element(0, 0x0100, 4, &[0x30, 0, 0, 0]),
                "4 bytes instead of 2",
            ),
            (
                "US of 0 bytes",
                element(0, 0x0100, 0, &[]),
                "0 bytes instead of 2",
            ),
            ("no command field", id.clone(), "no Command Field"),
            (
                "group length too long",
                [element(0, 0, 4, &100u32.to_le_bytes()), field.clone()].concat(),
                "says 100 bytes, 10 follow",
            ),
            (
                "group length of 2 bytes",
                [element(0, 0, 2, &[10, 0]), field.clone()].concat(),
                "2 bytes instead of 4",
            ),
            (
                "too large",
                [field.clone(), element(0, 0x0902, 70_000, &[b' '; 70_000])].concat(),
                "over the limit",
            ),
        ];
        for (name, bytes, expected) in cases {
            match decode(&bytes) {
                Ok(command) => panic!("{name}: accepted as {command:?}"),
                Err(CommandError(why)) => assert!(why.contains(expected), "{name}: {why}"),
            }
        }
    }

    #[test]
    fn elements_telerad_does_not_use_are_skipped() {
        let bytes = [
            element(0, 0x0002, 6, b"1.2.3\0"),
            element(0, 0x0100, 2, &C_ECHO_RQ.to_le_bytes()),
            element(0, 0x0110, 2, &[9, 0]),
            // Priority, and an element no edition of PS3.7 defines.
            element(0, 0x0700, 2, &[0, 0]),
            element(0, 0x0777, 3, b"odd"),
            element(0, 0x0800, 2, &NO_DATA_SET.to_le_bytes()),
        ]
        .concat();
        let command = decode(&bytes).expect("a valid command without group length");
        assert_eq!(command.command_field, C_ECHO_RQ);
        assert_eq!(command.message_id, 9);
        assert_eq!(command.affected_sop_class_uid, "1.2.3");
        assert!(!command.has_data_set);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0xFF; 7]).is_err());
        assert!(decode(&[]).is_err());
    }
}
