//! Lossless compression of a stored uncompressed data set on its way to a
//! workstation behind a slow link: the pixel data re-encoded as JPEG-LS
//! Lossless (DICOM PS3.5 A.4.3, 1.2.840.10008.1.2.4.80), one fragment per
//! frame, everything else as it was. The stored file never changes.
//!
//! Only what comes back bit for bit is compressed: grey-scale images
//! (Samples per Pixel 1) of 8 or 16 bits allocated whose samples fit in
//! Bits Stored. Anything else is [`CompressError::NotEligible`], and the
//! caller sends the data set as stored.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::jpegls;
use crate::transfer_syntax::{
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};

/// JPEG-LS Lossless Image Compression.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";

/// The stored syntaxes whose pixel data this module compresses: native
/// little-endian pixel data.
pub fn can_compress_from(transfer_syntax_uid: &str) -> bool {
    matches!(
        transfer_syntax_uid,
        IMPLICIT_VR_LITTLE_ENDIAN | EXPLICIT_VR_LITTLE_ENDIAN | DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )
}

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// The data set is sent as stored: nothing is wrong with it.
    #[error("not compressed: {0}")]
    NotEligible(String),
    #[error("cannot read the stored data set: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot parse the stored data set: {0}")]
    Read(String),
    #[error("cannot write the data set: {0}")]
    Write(String),
}

fn not_eligible(why: impl Into<String>) -> CompressError {
    CompressError::NotEligible(why.into())
}

/// Reads the data set at `offset` of the file at `path`, stored in `from`,
/// and returns it with JPEG-LS Lossless pixel data, encoded as the
/// transfer syntax requires (explicit VR little endian, encapsulated pixel
/// data). The frames are encoded one after the other: a caller that wants
/// several instances at once runs several calls.
pub fn to_jpeg_ls_lossless(path: &Path, offset: u64, from: &str) -> Result<Vec<u8>, CompressError> {
    if !can_compress_from(from) {
        return Err(not_eligible(format!("stored in {from}")));
    }
    let from_ts = TransferSyntaxRegistry
        .get(from)
        .ok_or_else(|| not_eligible(format!("transfer syntax {from} is not known")))?;
    let to_ts = TransferSyntaxRegistry
        .get(EXPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| CompressError::Write("explicit VR little endian is not known".into()))?;
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut object = InMemDicomObject::read_dataset_with_ts(BufReader::new(file), from_ts)
        .map_err(|e| CompressError::Read(e.to_string()))?;
    let image = Image::of(&object)?;
    let pixels = object
        .element(tags::PIXEL_DATA)
        .map_err(|_| not_eligible("no pixel data"))?
        .to_bytes()
        .map_err(|_| not_eligible("pixel data is not native"))?;
    let fragments = image.encode_frames(&pixels)?;
    drop(pixels);
    crate::transcode::drop_group_lengths(&mut object);
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::from(PixelFragmentSequence::new_fragments(fragments)),
    ));
    let mut out = Vec::new();
    object
        .write_dataset_with_ts(&mut out, to_ts)
        .map_err(|e| CompressError::Write(e.to_string()))?;
    Ok(out)
}

/// The pixel module attributes the encoding needs.
#[derive(Debug, Clone, Copy)]
struct Image {
    rows: u16,
    columns: u16,
    frames: u32,
    bits_allocated: u16,
    bits_stored: u8,
    signed: bool,
}

impl Image {
    fn of(object: &InMemDicomObject) -> Result<Image, CompressError> {
        let int = |tag: Tag, name: &str| -> Result<u32, CompressError> {
            object
                .element(tag)
                .map_err(|_| not_eligible(format!("no {name}")))?
                .to_int::<u32>()
                .map_err(|_| not_eligible(format!("{name} is not a number")))
        };
        if int(tags::SAMPLES_PER_PIXEL, "Samples per Pixel")? != 1 {
            return Err(not_eligible("colour images are sent as stored"));
        }
        let frames = match object.element_opt(tags::NUMBER_OF_FRAMES) {
            Ok(Some(_)) => int(tags::NUMBER_OF_FRAMES, "Number of Frames")?.max(1),
            _ => 1,
        };
        let bits_allocated = int(tags::BITS_ALLOCATED, "Bits Allocated")?;
        let bits_stored = int(tags::BITS_STORED, "Bits Stored")?;
        if !matches!(bits_allocated, 8 | 16) || !(2..=bits_allocated).contains(&bits_stored) {
            return Err(not_eligible(format!(
                "{bits_stored} bits stored in {bits_allocated} allocated"
            )));
        }
        let rows = int(tags::ROWS, "Rows")?;
        let columns = int(tags::COLUMNS, "Columns")?;
        let (Ok(rows), Ok(columns)) = (u16::try_from(rows), u16::try_from(columns)) else {
            return Err(not_eligible(format!("{columns}x{rows} frame")));
        };
        Ok(Image {
            rows,
            columns,
            frames,
            bits_allocated: bits_allocated as u16,
            bits_stored: bits_stored as u8,
            signed: int(tags::PIXEL_REPRESENTATION, "Pixel Representation")? == 1,
        })
    }

    fn samples_per_frame(&self) -> usize {
        usize::from(self.rows) * usize::from(self.columns)
    }

    /// One JPEG-LS stream per frame, each padded to an even length as a
    /// fragment must be (PS3.5 A.4).
    fn encode_frames(&self, pixels: &[u8]) -> Result<Vec<Vec<u8>>, CompressError> {
        let bytes_per_sample = usize::from(self.bits_allocated / 8);
        let frame_bytes = self.samples_per_frame() * bytes_per_sample;
        let needed = frame_bytes
            .checked_mul(self.frames as usize)
            .ok_or_else(|| not_eligible("frame count overflows"))?;
        if frame_bytes == 0 || pixels.len() < needed {
            return Err(not_eligible(format!(
                "{} bytes of pixel data for {} frames of {frame_bytes}",
                pixels.len(),
                self.frames
            )));
        }
        let mut fragments = Vec::with_capacity(self.frames as usize);
        let mut samples = Vec::with_capacity(self.samples_per_frame());
        for frame in pixels[..needed].chunks_exact(frame_bytes) {
            samples.clear();
            if bytes_per_sample == 1 {
                samples.extend(frame.iter().map(|&b| u16::from(b)));
            } else {
                samples.extend(
                    frame
                        .chunks_exact(2)
                        .map(|pair| u16::from_le_bytes([pair[0], pair[1]])),
                );
            }
            self.fit_to_bits_stored(&mut samples)?;
            let mut fragment = jpegls::encode(
                &samples,
                u32::from(self.columns),
                u32::from(self.rows),
                self.bits_stored,
            )
            .map_err(|e| not_eligible(e.to_string()))?;
            if fragment.len() % 2 == 1 {
                fragment.push(0);
            }
            fragments.push(fragment);
        }
        Ok(fragments)
    }

    /// Masks each sample to Bits Stored, refusing data where that would
    /// lose something: bits above Bits Stored must be zero (unsigned) or
    /// the sign's extension (signed), or the decoded image would differ.
    fn fit_to_bits_stored(&self, samples: &mut [u16]) -> Result<(), CompressError> {
        let bits = u32::from(self.bits_stored);
        if bits >= 16 {
            return Ok(());
        }
        let mask = (1u16 << bits) - 1;
        for (index, sample) in samples.iter_mut().enumerate() {
            let low = *sample & mask;
            let restored = if self.signed && low >> (bits - 1) == 1 {
                low | !mask
            } else {
                low
            };
            let original = if self.bits_allocated == 8 {
                *sample
                    | if self.signed && *sample & 0x80 != 0 {
                        0xFF00
                    } else {
                        0
                    }
            } else {
                *sample
            };
            if restored != original {
                return Err(not_eligible(format!(
                    "sample {index} uses bits above Bits Stored ({bits})"
                )));
            }
            *sample = low;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bits_stored: u8, signed: bool) -> Image {
        Image {
            rows: 1,
            columns: 3,
            frames: 1,
            bits_allocated: 16,
            bits_stored,
            signed,
        }
    }

    #[test]
    fn signed_samples_are_masked_to_bits_stored_when_nothing_is_lost() {
        let mut samples = [0x0005, 0xFFFF, 0xF800];
        image(12, true)
            .fit_to_bits_stored(&mut samples)
            .expect("sign extension only above bit 12");
        assert_eq!(samples, [0x0005, 0x0FFF, 0x0800]);
    }

    #[test]
    fn bits_above_bits_stored_refuse_compression() {
        let mut overlay_bit = [0x0005, 0x1005, 0x0000];
        assert!(matches!(
            image(12, false).fit_to_bits_stored(&mut overlay_bit),
            Err(CompressError::NotEligible(_))
        ));
        let mut not_extended = [0x0800, 0, 0];
        assert!(
            image(12, true)
                .fit_to_bits_stored(&mut not_extended)
                .is_err()
        );
    }

    #[test]
    fn compressed_syntaxes_are_not_compressed_again() {
        let refused = to_jpeg_ls_lossless(Path::new("/nonexistent"), 0, "1.2.840.10008.1.2.4.90");
        assert!(matches!(refused, Err(CompressError::NotEligible(_))));
    }
}
