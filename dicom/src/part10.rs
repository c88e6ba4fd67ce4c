//! The DICOM Part 10 header (PS3.10 §7.1) written in front of a received data
//! set: preamble, `DICM`, and the file meta group built from the C-STORE
//! command and the negotiated transfer syntax.

use dicom_object::meta::FileMetaTableBuilder;
use std::io::Write;

/// Identifies files written by telerad (a UUID-derived UID, PS3.5 §B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.179128463215987466154371862240911346981";
pub const IMPLEMENTATION_VERSION_NAME: &str = "TELERAD_0_1";

#[derive(Debug, thiserror::Error)]
#[error("cannot build the file meta information: {0}")]
pub struct MetaError(String);

/// Everything that goes into the header, as given by the sender.
#[derive(Debug, Clone)]
pub struct InstanceHeader {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub calling_ae_title: String,
}

pub fn header_bytes(header: &InstanceHeader) -> Result<Vec<u8>, MetaError> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(header.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(header.sop_instance_uid.as_str())
        .transfer_syntax(header.transfer_syntax_uid.as_str())
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .source_application_entity_title(header.calling_ae_title.trim())
        .build()
        .map_err(|e| MetaError(e.to_string()))?;
    let mut out = vec![0u8; 128];
    out.write_all(b"DICM")
        .map_err(|e| MetaError(e.to_string()))?;
    meta.write(&mut out).map_err(|e| MetaError(e.to_string()))?;
    Ok(out)
}
