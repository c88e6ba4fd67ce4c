//! Reads back a received data set before it is acknowledged.
//!
//! Two jobs: prove that the data set is well formed to its end (a truncated
//! or garbled data set must be refused, not stored), and pick the attributes
//! the index needs. Values are skipped without being loaded, and every
//! length is checked against the bytes present before its value is read, so
//! memory stays bounded whatever a length claims. Deflated data sets are
//! inflated first, never past the configured maximum instance size (a few
//! kB of deflate can claim gigabytes), into a spill file beside the received
//! one, then walked the same way.

use crate::transfer_syntax::EXPLICIT_VR_LITTLE_ENDIAN;
use dicom_core::Tag;
use dicom_core::header::HasLength;
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// What the index keeps of one instance, as found in its data set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceAttributes {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub accession_number: String,
    pub study_date: String,
    pub study_time: String,
    pub study_description: String,
    pub referring_physician_name: String,
    pub modality: String,
    pub body_part_examined: String,
    pub series_description: String,
    pub series_number: Option<i64>,
    pub instance_number: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read the received file: {0}")]
    Io(#[from] std::io::Error),
    #[error("transfer syntax {0} is not known")]
    UnknownTransferSyntax(String),
    #[error("malformed data set: {0}")]
    Malformed(String),
    #[error("the deflated data set inflates past the {limit}-byte limit")]
    InflatesPastLimit { limit: u64 },
}

/// Generous: 64 characters of a multi-byte character set, three times over
/// for the groups of a Person Name.
const MAX_WANTED_VALUE: u64 = 4096;

const WANTED: &[Tag] = &[
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::ACCESSION_NUMBER,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::STUDY_DESCRIPTION,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::MODALITY,
    tags::BODY_PART_EXAMINED,
    tags::SERIES_DESCRIPTION,
    tags::SERIES_NUMBER,
    tags::INSTANCE_NUMBER,
];

impl InstanceAttributes {
    fn set(&mut self, tag: Tag, value: String) {
        let value = value.trim_end_matches(['\0', ' ']).trim_start().to_string();
        let number = || value.trim().parse::<i64>().ok();
        match tag {
            tags::SOP_CLASS_UID => self.sop_class_uid = value,
            tags::SOP_INSTANCE_UID => self.sop_instance_uid = value,
            tags::STUDY_INSTANCE_UID => self.study_instance_uid = value,
            tags::SERIES_INSTANCE_UID => self.series_instance_uid = value,
            tags::PATIENT_NAME => self.patient_name = value,
            tags::PATIENT_ID => self.patient_id = value,
            tags::PATIENT_BIRTH_DATE => self.patient_birth_date = value,
            tags::PATIENT_SEX => self.patient_sex = value,
            tags::ACCESSION_NUMBER => self.accession_number = value,
            tags::STUDY_DATE => self.study_date = value,
            tags::STUDY_TIME => self.study_time = value,
            tags::STUDY_DESCRIPTION => self.study_description = value,
            tags::REFERRING_PHYSICIAN_NAME => self.referring_physician_name = value,
            tags::MODALITY => self.modality = value,
            tags::BODY_PART_EXAMINED => self.body_part_examined = value,
            tags::SERIES_DESCRIPTION => self.series_description = value,
            tags::SERIES_NUMBER => self.series_number = number(),
            tags::INSTANCE_NUMBER => self.instance_number = number(),
            _ => {}
        }
    }
}

fn transfer_syntax(uid: &str) -> Result<&'static dicom_encoding::TransferSyntax, InspectError> {
    TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| InspectError::UnknownTransferSyntax(uid.to_string()))
}

fn is_deflated(ts: &dicom_encoding::TransferSyntax) -> bool {
    matches!(ts.codec(), Codec::Dataset(Some(_)))
}

/// Walks the data set that starts at `dataset_offset` in `path`. A deflated
/// one may not inflate past `max_inflated_bytes`.
pub fn inspect(
    path: &Path,
    dataset_offset: u64,
    transfer_syntax_uid: &str,
    max_inflated_bytes: u64,
) -> Result<InstanceAttributes, InspectError> {
    let ts = transfer_syntax(transfer_syntax_uid)?;
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    file.seek(SeekFrom::Start(dataset_offset))?;
    // Once inflated, a Deflated Explicit VR Little Endian data set (PS3.5
    // §A.5) is an Explicit VR Little Endian one.
    if is_deflated(ts) {
        let dir = path.parent().unwrap_or(Path::new("."));
        // Unnamed, so it goes away with its handle whatever happens.
        let mut spill = tempfile::tempfile_in(dir)?;
        let inflated = inflate(BufReader::new(file), max_inflated_bytes, &mut spill)?;
        spill.seek(SeekFrom::Start(0))?;
        return walk(
            BufReader::new(spill),
            inflated,
            transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN)?,
        );
    }
    walk(BufReader::new(file), file_len, ts)
}

/// A small data set (a DIMSE-N or C-FIND data set, received in an
/// uncompressed syntax) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// Reads a small data set received in memory. It is walked first by
/// [`inspect_bytes`], which checks every length against the bytes
/// present, so parsing it cannot be made to allocate what a length claims.
pub fn read_small(
    data_set: &[u8],
    transfer_syntax_uid: &str,
) -> Result<dicom_object::InMemDicomObject, Unreadable> {
    // Fewer bytes than one element header would parse as an empty data
    // set: refused instead.
    if data_set.len() < 8 {
        return Err(Unreadable(format!(
            "{} bytes cannot hold an element",
            data_set.len()
        )));
    }
    inspect_bytes(data_set, transfer_syntax_uid, data_set.len() as u64)
        .map_err(|e| Unreadable(e.to_string()))?;
    let ts = transfer_syntax(transfer_syntax_uid).map_err(|e| Unreadable(e.to_string()))?;
    dicom_object::InMemDicomObject::read_dataset_with_ts(data_set, ts)
        .map_err(|e| Unreadable(e.to_string()))
}

/// [`inspect`] of a data set held in memory (no Part 10 header).
pub fn inspect_bytes(
    data_set: &[u8],
    transfer_syntax_uid: &str,
    max_inflated_bytes: u64,
) -> Result<InstanceAttributes, InspectError> {
    let ts = transfer_syntax(transfer_syntax_uid)?;
    if is_deflated(ts) {
        let mut inflated = Vec::new();
        inflate(data_set, max_inflated_bytes, &mut inflated)?;
        let end = inflated.len() as u64;
        return walk(
            Cursor::new(inflated),
            end,
            transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN)?,
        );
    }
    walk(Cursor::new(data_set), data_set.len() as u64, ts)
}

/// Inflates a raw deflate stream (PS3.5 §A.5, RFC 1951) into `out`, and
/// returns its inflated length: at most `limit` bytes are written, and one
/// more than that refuses it.
fn inflate(deflated: impl Read, limit: u64, out: &mut impl Write) -> Result<u64, InspectError> {
    let mut inflater = flate2::read::DeflateDecoder::new(deflated).take(limit.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match inflater.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InspectError::Malformed(format!("cannot inflate: {e}"))),
        };
        total += n as u64;
        if total > limit {
            return Err(InspectError::InflatesPastLimit { limit });
        }
        out.write_all(&buf[..n])?;
    }
    Ok(total)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nesting {
    Sequence,
    Item,
}

/// Walks a data set from the reader's position to `end`, a position of the
/// same reader.
fn walk<R: Read + Seek>(
    mut reader: R,
    end: u64,
    ts: &dicom_encoding::TransferSyntax,
) -> Result<InstanceAttributes, InspectError> {
    if reader.stream_position()? >= end {
        return Err(InspectError::Malformed("the data set is empty".into()));
    }
    let malformed = |e: &dyn std::fmt::Display| InspectError::Malformed(e.to_string());
    let mut reader = LazyDataSetReader::new_with_ts(reader, ts).map_err(|e| malformed(&e))?;
    let mut attributes = InstanceAttributes::default();
    // What is open, innermost last. dicom-parser panics when an item
    // follows an item delimiter that closed no item (it pops the sequence,
    // then finds no sequence for the item): such nesting is refused here,
    // before the reader is asked for another token.
    let mut open: Vec<Nesting> = Vec::new();
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| malformed(&e))?;
        let depth = open.len();
        match token {
            LazyDataToken::SequenceStart { .. } | LazyDataToken::PixelSequenceStart => {
                open.push(Nesting::Sequence);
            }
            LazyDataToken::ItemStart { .. } => {
                if open.last() != Some(&Nesting::Sequence) {
                    return Err(InspectError::Malformed("an item outside a sequence".into()));
                }
                open.push(Nesting::Item);
            }
            LazyDataToken::ItemEnd => {
                let closed = open.pop();
                if closed != Some(Nesting::Item) {
                    return Err(InspectError::Malformed(
                        "an item delimitation item outside an item".into(),
                    ));
                }
            }
            LazyDataToken::SequenceEnd => {
                let closed = open.pop();
                if closed != Some(Nesting::Sequence) {
                    return Err(InspectError::Malformed(
                        "a sequence delimitation item outside a sequence".into(),
                    ));
                }
            }
            LazyDataToken::ElementHeader(_) => {}
            LazyDataToken::LazyValue { header, decoder } => {
                let len = u64::from(header.length().0);
                // The decoder's position is an offset in the file (it starts
                // from the reader's position).
                if decoder.position() + len > end {
                    return Err(InspectError::Malformed(format!(
                        "element {} claims {len} bytes but the data set ends {} bytes later",
                        header.tag,
                        end.saturating_sub(decoder.position())
                    )));
                }
                // Pixel data that ends exactly where the file ends closes
                // the data set: its bounds are checked above, and skipping
                // it would read it all back (the lazy skip reads, it does
                // not seek).
                if depth == 0 && header.tag == tags::PIXEL_DATA && decoder.position() + len == end {
                    return Ok(attributes);
                }
                let token = LazyDataToken::LazyValue { header, decoder };
                if depth == 0 && WANTED.contains(&header.tag) {
                    // Every wanted attribute has a short VR (UI, PN, LO,
                    // SH, CS, DA, TM, IS: at most 64 characters, PS3.5
                    // §6.2); only a forged length is longer.
                    if len > MAX_WANTED_VALUE {
                        return Err(InspectError::Malformed(format!(
                            "element {} claims {len} bytes, longer than its VR allows",
                            header.tag
                        )));
                    }
                    let value = token.into_value().map_err(|e| malformed(&e))?;
                    attributes.set(header.tag, value.to_str().into_owned());
                } else {
                    token.skip().map_err(|e| malformed(&e))?;
                }
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                if decoder.position() + u64::from(len) > end {
                    return Err(InspectError::Malformed(format!(
                        "a pixel data fragment claims {len} bytes past the end of the data set"
                    )));
                }
                LazyDataToken::LazyItemValue { len, decoder }
                    .skip()
                    .map_err(|e| malformed(&e))?;
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(InspectError::Malformed(
            "the data set ends inside a sequence".into(),
        ));
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
    const MIB: u64 = 1024 * 1024;

    /// The data set offset of a Part 10 file: after the preamble, the magic
    /// and the file meta group.
    fn dataset_offset(path: &Path) -> u64 {
        let mut file = BufReader::new(File::open(path).expect("open"));
        file.seek(SeekFrom::Start(128)).expect("seek");
        dicom_object::meta::FileMetaTable::from_reader(&mut file).expect("file meta");
        file.stream_position().expect("position")
    }

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("deflate");
        encoder.finish().expect("deflate")
    }

    #[test]
    fn a_data_set_deflated_by_dcmtk_gives_the_attributes_of_the_original() {
        // By path: telerad-fixtures depends on this crate, not the reverse.
        let original =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/samples/CT_small.dcm");
        let dir = tempfile::tempdir().expect("a temp dir");
        let deflated = dir.path().join("CT_small_deflated.dcm");
        // DCMTK's own deflater: a real third-party encoding of PS3.5 §A.5.
        let out = Command::new("/usr/bin/dcmconv")
            .arg("+td")
            .arg(&original)
            .arg(&deflated)
            .output()
            .expect("run dcmconv (DCMTK)");
        assert!(out.status.success(), "{out:?}");
        let expected = inspect(
            &original,
            dataset_offset(&original),
            EXPLICIT_VR_LITTLE_ENDIAN,
            MIB,
        )
        .expect("the original");
        assert_eq!(expected.modality, "CT");
        let found = inspect(&deflated, dataset_offset(&deflated), DEFLATED, MIB).expect("deflated");
        assert_eq!(found, expected);
        // The spill file had no name: nothing is left beside the file.
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // Its inflated size is over a limit of 1 kB.
        let data = std::fs::read(&deflated).expect("read");
        let offset = usize::try_from(dataset_offset(&deflated)).expect("small");
        assert!(matches!(
            inspect_bytes(&data[offset..], DEFLATED, 1024),
            Err(InspectError::InflatesPastLimit { limit: 1024 })
        ));
        assert_eq!(
            inspect_bytes(&data[offset..], DEFLATED, MIB).expect("in memory"),
            expected
        );
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        // 64 MiB of zeros deflate to about 64 kB; the limit is 1 MiB.
        let bomb = deflate(&vec![0u8; 64 * MIB as usize]);
        assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
        assert!(matches!(
            inspect_bytes(&bomb, DEFLATED, MIB),
            Err(InspectError::InflatesPastLimit { limit: MIB })
        ));
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("bomb");
        std::fs::write(&path, &bomb).expect("write");
        assert!(matches!(
            inspect(&path, 0, DEFLATED, MIB),
            Err(InspectError::InflatesPastLimit { limit: MIB })
        ));
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn broken_deflate_and_lying_lengths_are_malformed() {
        let malformed =
            |result: Result<InstanceAttributes, InspectError>, expected: &str| match result {
                Err(InspectError::Malformed(why)) => assert!(why.contains(expected), "{why}"),
                other => panic!("expected a malformed data set, got {other:?}"),
            };
        malformed(inspect_bytes(&[0xFF; 64], DEFLATED, MIB), "cannot inflate");
        // Explicit VR LE (PS3.5 §7.1.2): Patient Name (PN), a 2-byte length.
        let mut name = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N'];
        name.extend_from_slice(&0xFFF0u16.to_le_bytes());
        name.extend_from_slice(b"DOE^JOHN");
        malformed(
            inspect_bytes(&name, EXPLICIT_VR_LITTLE_ENDIAN, MIB),
            "claims 65520 bytes",
        );
        malformed(
            inspect_bytes(&deflate(&name), DEFLATED, MIB),
            "claims 65520 bytes",
        );
        // Present, but far longer than a Person Name may be.
        let mut long_name = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N'];
        long_name.extend_from_slice(&0x8000u16.to_le_bytes());
        long_name.extend(std::iter::repeat_n(b'A', 0x8000));
        malformed(
            inspect_bytes(&long_name, EXPLICIT_VR_LITTLE_ENDIAN, MIB),
            "longer than its VR allows",
        );
        // Pixel Data (OB) with a 4-byte length of 1 GiB, 4 bytes present.
        let mut pixels = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0];
        pixels.extend_from_slice(&(1u32 << 30).to_le_bytes());
        pixels.extend_from_slice(&[1, 2, 3, 4]);
        malformed(
            inspect_bytes(&pixels, EXPLICIT_VR_LITTLE_ENDIAN, MIB),
            "claims 1073741824 bytes",
        );
        malformed(inspect_bytes(&[], EXPLICIT_VR_LITTLE_ENDIAN, MIB), "empty");
    }

    #[test]
    fn an_item_after_a_stray_item_delimiter_is_refused_not_a_panic() {
        // Found by the inspect fuzz target: a sequence of undefined length,
        // an item delimitation item that closes no item, then an item.
        let mut data_set = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0];
        data_set.extend_from_slice(&u32::MAX.to_le_bytes());
        data_set.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        data_set.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        data_set.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, b'U', b'I', 2, 0, b'1', 0]);
        match inspect_bytes(&data_set, EXPLICIT_VR_LITTLE_ENDIAN, MIB) {
            Err(InspectError::Malformed(why)) => assert!(why.contains("outside an item"), "{why}"),
            other => panic!("expected a malformed data set, got {other:?}"),
        }
    }
}
