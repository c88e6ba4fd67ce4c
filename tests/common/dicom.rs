//! DICOM-side helpers: data set bytes of Part 10 files, hostile files, and a
//! raw blocking peer that speaks PDUs by hand to send what no well-behaved
//! SCU would.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_ul::pdu::{
    AssociationAC, AssociationRQ, PDataValue, PDataValueType, Pdu, PresentationContextProposed,
    UserVariableItem, read_pdu, write_pdu,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use telerad_fixtures::SyntheticStudy;

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// The bytes after the Part 10 header: what was sent on the wire.
pub fn dataset_bytes(path: &Path) -> Vec<u8> {
    let file = telerad_scp::FileToSend::read(path).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(path).expect("read a DICOM file");
    bytes[usize::try_from(file.dataset_offset).expect("offset")..].to_vec()
}

pub fn dataset_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&dataset_bytes(path))
}

/// Stored versions of one SOP instance: `SOP.dcm`, `SOP.v2.dcm`, ...
pub fn stored_versions(stored: &[PathBuf], sop_instance_uid: &str) -> Vec<PathBuf> {
    stored
        .iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name == format!("{sop_instance_uid}.dcm")
                || (name.starts_with(&format!("{sop_instance_uid}.v")) && name.ends_with(".dcm"))
        })
        .cloned()
        .collect()
}

/// Writes slice 0 of `study` with the given UIDs, as a sender might.
pub fn write_with_uids(
    study: &SyntheticStudy,
    dir: &Path,
    sop_instance_uid: &str,
    study_instance_uid: Option<&str>,
) -> PathBuf {
    let mut object = study.instance(0);
    object.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop_instance_uid),
    ));
    if let Some(uid) = study_instance_uid {
        object.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid),
        ));
    }
    object.meta_mut().media_storage_sop_instance_uid = sop_instance_uid.to_string();
    object.meta_mut().update_information_group_length();
    let path = dir.join(format!("hostile-{}.dcm", crate::common::rand_suffix()));
    object.write_to_file(&path).expect("write a hostile file");
    path
}

/// A DICOM peer that writes PDUs by hand.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    pub fn connect(address: &str) -> RawPeer {
        let stream = TcpStream::connect(address).expect("connect to telerad");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("set a read timeout");
        RawPeer { stream }
    }

    pub fn send(&mut self, pdu: &Pdu) {
        let mut bytes = Vec::new();
        write_pdu(&mut bytes, pdu).expect("encode a PDU");
        self.stream.write_all(&bytes).expect("send a PDU");
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have hung up: that is what some tests expect.
        let _ = self.stream.write_all(bytes);
    }

    /// The next PDU, or None when the server closed the connection.
    pub fn receive(&mut self) -> Option<Pdu> {
        let mut header = [0u8; 6];
        self.stream.read_exact(&mut header).ok()?;
        let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
        let mut bytes = header.to_vec();
        bytes.resize(6 + length, 0);
        self.stream.read_exact(&mut bytes[6..]).ok()?;
        read_pdu(&bytes[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
            .ok()
            .flatten()
    }

    /// True when the server closes the connection (after an optional PDU).
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }

    pub fn associate(&mut self, calling: &str, contexts: &[(&str, &str)]) -> Pdu {
        let rq = AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling.into(),
            called_ae_title: crate::common::SERVER_AE.into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: contexts
                .iter()
                .enumerate()
                .map(|(i, (abstract_syntax, ts))| PresentationContextProposed {
                    id: u8::try_from(2 * i + 1).expect("few contexts"),
                    abstract_syntax: (*abstract_syntax).into(),
                    transfer_syntaxes: vec![(*ts).into()],
                })
                .collect(),
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        };
        self.send(&Pdu::AssociationRQ(rq));
        self.receive().expect("an answer to A-ASSOCIATE-RQ")
    }

    pub fn expect_accepted(&mut self, calling: &str, contexts: &[(&str, &str)]) -> AssociationAC {
        match self.associate(calling, contexts) {
            Pdu::AssociationAC(ac) => ac,
            other => panic!("association not accepted: {other:?}"),
        }
    }

    pub fn send_command(&mut self, context_id: u8, command: Vec<u8>) {
        self.send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        });
    }

    /// Sends data set bytes in fragments that fit telerad's announced
    /// maximum PDU length (128 kB in the test configuration).
    pub fn send_data(&mut self, context_id: u8, data: &[u8], is_last: bool) {
        const FRAGMENT: usize = 16 * 1024;
        let count = data.len().div_ceil(FRAGMENT).max(1);
        for (i, chunk) in data
            .chunks(FRAGMENT)
            .chain(std::iter::once(&[][..]).take(usize::from(data.is_empty())))
            .enumerate()
        {
            self.send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: context_id,
                    value_type: PDataValueType::Data,
                    is_last: is_last && i + 1 == count,
                    data: chunk.to_vec(),
                }],
            });
        }
    }

    /// Reads the next command set (a DIMSE response).
    pub fn receive_command(&mut self) -> telerad_scp::dimse::Command {
        let mut bytes = Vec::new();
        loop {
            match self.receive() {
                Some(Pdu::PData { data }) => {
                    for value in data {
                        bytes.extend_from_slice(&value.data);
                        if value.is_last && value.value_type == PDataValueType::Command {
                            return telerad_scp::dimse::decode(&bytes).expect("a valid response");
                        }
                    }
                }
                other => panic!("expected a DIMSE response, got {other:?}"),
            }
        }
    }
}

/// Equal content, whatever the length encoding of sequences and items
/// (defined or undefined: senders such as DCMTK re-encode them).
pub fn same_content(
    a: &dicom_object::InMemDicomObject,
    b: &dicom_object::InMemDicomObject,
) -> Result<(), String> {
    use dicom_core::value::Value;
    let tags_a: Vec<_> = a.iter().map(|e| e.header().tag).collect();
    let tags_b: Vec<_> = b.iter().map(|e| e.header().tag).collect();
    if tags_a != tags_b {
        return Err(format!("different elements: {tags_a:?} vs {tags_b:?}"));
    }
    for (x, y) in a.iter().zip(b.iter()) {
        let tag = x.header().tag;
        match (x.value(), y.value()) {
            (Value::Primitive(p), Value::Primitive(q)) => {
                // Trailing padding is not part of a text value (PS3.5 §6.2).
                let unpadded =
                    |v: &PrimitiveValue| v.to_str().trim_end_matches([' ', '\0']).to_string();
                if p != q && p.to_bytes() != q.to_bytes() && unpadded(p) != unpadded(q) {
                    return Err(format!("{tag}: {p:?} vs {q:?}"));
                }
            }
            (Value::Sequence(s), Value::Sequence(t)) => {
                if s.items().len() != t.items().len() {
                    return Err(format!("{tag}: item counts differ"));
                }
                for (i, j) in s.items().iter().zip(t.items()) {
                    same_content(i, j).map_err(|e| format!("{tag} > {e}"))?;
                }
            }
            (Value::PixelSequence(s), Value::PixelSequence(t)) => {
                if s.fragments() != t.fragments() || s.offset_table() != t.offset_table() {
                    return Err(format!("{tag}: pixel data fragments differ"));
                }
            }
            _ => return Err(format!("{tag}: different kinds of value")),
        }
    }
    Ok(())
}
