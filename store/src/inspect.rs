//! Reads back a received data set before it is acknowledged.
//!
//! Two jobs: prove that the data set is well formed to its end (a truncated
//! or garbled data set must be refused, not stored), and pick the attributes
//! the index needs. Values are skipped without being loaded, so memory stays
//! bounded whatever the size of the pixel data. Deflated data sets (rare, and
//! small in practice) cannot be skipped through and are parsed whole.

use dicom_core::Tag;
use dicom_core::header::HasLength;
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::StatefulDecode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
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
}

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

/// Walks the data set that starts at `dataset_offset` in `path`.
pub fn inspect(
    path: &Path,
    dataset_offset: u64,
    transfer_syntax_uid: &str,
) -> Result<InstanceAttributes, InspectError> {
    let ts = TransferSyntaxRegistry
        .get(transfer_syntax_uid)
        .ok_or_else(|| InspectError::UnknownTransferSyntax(transfer_syntax_uid.to_string()))?;
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let dataset_len = file_len.saturating_sub(dataset_offset);
    file.seek(SeekFrom::Start(dataset_offset))?;
    let reader = BufReader::new(file);
    if matches!(ts.codec(), Codec::Dataset(Some(_))) {
        return inspect_whole(reader, ts);
    }
    if dataset_len == 0 {
        return Err(InspectError::Malformed("the data set is empty".into()));
    }
    let malformed = |e: &dyn std::fmt::Display| InspectError::Malformed(e.to_string());
    let mut reader = LazyDataSetReader::new_with_ts(reader, ts).map_err(|e| malformed(&e))?;
    let mut attributes = InstanceAttributes::default();
    let mut depth = 0usize;
    while let Some(token) = reader.advance() {
        let token = token.map_err(|e| malformed(&e))?;
        match token {
            LazyDataToken::SequenceStart { .. } | LazyDataToken::PixelSequenceStart => depth += 1,
            LazyDataToken::SequenceEnd => depth = depth.saturating_sub(1),
            LazyDataToken::ItemStart { .. }
            | LazyDataToken::ItemEnd
            | LazyDataToken::ElementHeader(_) => {}
            LazyDataToken::LazyValue { header, decoder } => {
                let len = u64::from(header.length().0);
                // The decoder's position is an offset in the file (it starts
                // from the reader's position).
                if decoder.position() + len > file_len {
                    return Err(InspectError::Malformed(format!(
                        "element {} claims {len} bytes but the data set ends {} bytes later",
                        header.tag,
                        file_len.saturating_sub(decoder.position())
                    )));
                }
                // Pixel data that ends exactly where the file ends closes
                // the data set: its bounds are checked above, and skipping
                // it would read it all back (the lazy skip reads, it does
                // not seek).
                if depth == 0
                    && header.tag == tags::PIXEL_DATA
                    && decoder.position() + len == file_len
                {
                    return Ok(attributes);
                }
                let token = LazyDataToken::LazyValue { header, decoder };
                if depth == 0 && WANTED.contains(&header.tag) {
                    let value = token.into_value().map_err(|e| malformed(&e))?;
                    attributes.set(header.tag, value.to_str().into_owned());
                } else {
                    token.skip().map_err(|e| malformed(&e))?;
                }
            }
            LazyDataToken::LazyItemValue { len, decoder } => {
                if decoder.position() + u64::from(len) > file_len {
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
    if depth != 0 {
        return Err(InspectError::Malformed(
            "the data set ends inside a sequence".into(),
        ));
    }
    Ok(attributes)
}

fn inspect_whole(
    reader: BufReader<File>,
    ts: &dicom_encoding::TransferSyntax,
) -> Result<InstanceAttributes, InspectError> {
    let object = InMemDicomObject::read_dataset_with_ts(reader, ts)
        .map_err(|e| InspectError::Malformed(e.to_string()))?;
    let mut attributes = InstanceAttributes::default();
    for &tag in WANTED {
        if let Some(text) = object
            .element_opt(tag)
            .ok()
            .flatten()
            .and_then(|element| element.to_str().ok())
        {
            attributes.set(tag, text.into_owned());
        }
    }
    Ok(attributes)
}
