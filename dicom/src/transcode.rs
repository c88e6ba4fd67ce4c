//! Re-encoding a stored data set in another uncompressed transfer syntax,
//! for a destination that refuses the one it was received in.
//!
//! Only between uncompressed syntaxes (PS3.5 §10.1 and Annex A.1–A.5),
//! where the values keep their meaning and only their byte order, VR
//! encoding or deflation change; compressed pixel data is never decoded
//! here.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::transfer_syntax::{
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
};

/// Syntaxes whose data set can be read and written again in another
/// uncompressed syntax without touching the pixel data's meaning.
pub fn is_uncompressed(transfer_syntax_uid: &str) -> bool {
    matches!(
        transfer_syntax_uid,
        IMPLICIT_VR_LITTLE_ENDIAN
            | EXPLICIT_VR_LITTLE_ENDIAN
            | EXPLICIT_VR_BIG_ENDIAN
            | DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )
}

/// What to propose to a destination for an instance stored in `stored`:
/// that syntax first, then, for uncompressed data, the two little-endian
/// ones every storage SCP accepts (PS3.5 §10.1).
pub fn syntaxes_to_offer(stored: &str) -> Vec<&str> {
    let mut out = vec![stored];
    if is_uncompressed(stored) {
        for ts in [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] {
            if !out.contains(&ts) {
                out.push(ts);
            }
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("transfer syntax {0} is not known")]
    UnknownSyntax(String),
    #[error("{from} is compressed: only uncompressed data sets are re-encoded")]
    Compressed { from: String },
    #[error("cannot read the stored data set: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot parse the stored data set: {0}")]
    Read(String),
    #[error("cannot write the data set: {0}")]
    Write(String),
}

/// Reads the data set at `offset` of the file at `path`, in `from` syntax,
/// and returns it written in `to`. The whole data set is held in memory:
/// only uncompressed instances take this path, only for destinations that
/// refuse their stored syntax, and those are mostly single images of a few
/// megabytes.
pub fn reencode(path: &Path, offset: u64, from: &str, to: &str) -> Result<Vec<u8>, TranscodeError> {
    if !is_uncompressed(from) {
        return Err(TranscodeError::Compressed { from: from.into() });
    }
    let known = |uid: &str| {
        TransferSyntaxRegistry
            .get(uid)
            .ok_or_else(|| TranscodeError::UnknownSyntax(uid.into()))
    };
    let (from_ts, to_ts) = (known(from)?, known(to)?);
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut object = InMemDicomObject::read_dataset_with_ts(BufReader::new(file), from_ts)
        .map_err(|e| TranscodeError::Read(e.to_string()))?;
    drop_group_lengths(&mut object);
    let mut out = Vec::new();
    object
        .write_dataset_with_ts(&mut out, to_ts)
        .map_err(|e| TranscodeError::Write(e.to_string()))?;
    Ok(out)
}

/// Removes the group lengths (gggg,0000): they count bytes of the old
/// encoding, wrong once re-encoded, and are optional in a data set (PS3.5
/// §7.2).
pub(crate) fn drop_group_lengths(object: &mut InMemDicomObject) {
    let group_lengths: Vec<_> = object
        .iter()
        .map(|element| element.header().tag)
        .filter(|tag| tag.element() == 0)
        .collect();
    for tag in group_lengths {
        object.remove_element(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncompressed_instances_also_offer_both_little_endian_syntaxes() {
        assert_eq!(
            syntaxes_to_offer(EXPLICIT_VR_BIG_ENDIAN),
            [
                EXPLICIT_VR_BIG_ENDIAN,
                EXPLICIT_VR_LITTLE_ENDIAN,
                IMPLICIT_VR_LITTLE_ENDIAN
            ]
        );
        assert_eq!(
            syntaxes_to_offer(IMPLICIT_VR_LITTLE_ENDIAN),
            [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]
        );
        assert_eq!(
            syntaxes_to_offer("1.2.840.10008.1.2.4.90"),
            ["1.2.840.10008.1.2.4.90"]
        );
    }

    #[test]
    fn compressed_data_is_not_re_encoded() {
        let refused = reencode(
            Path::new("/nonexistent"),
            0,
            "1.2.840.10008.1.2.4.90",
            EXPLICIT_VR_LITTLE_ENDIAN,
        );
        assert!(
            matches!(refused, Err(TranscodeError::Compressed { .. })),
            "{refused:?}"
        );
    }
}
