//! The frames of a stored instance's pixel data, as stored: for WADO-RS
//! `frames` and `bulkdata` (PS3.18 §10.4.1.1.3, §10.4.1.1.5).
//!
//! Native pixel data is cut into frames by the image's geometry (PS3.5
//! §8.1.1) and given in little-endian byte order whatever the stored
//! syntax (Explicit VR Little Endian's pixels). Encapsulated pixel data
//! (PS3.5 §A.4) is given frame by frame as its compressed bit stream: one
//! fragment per frame, or all fragments of a single-frame image, or the
//! fragments the Basic Offset Table assigns to each frame.

use crate::transfer_syntax::{EXPLICIT_VR_LITTLE_ENDIAN, is_encapsulated};
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot read the stored file: {0}")]
    Read(String),
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("frame {asked} does not exist: the instance has {frames} frame(s)")]
    OutOfRange { asked: u32, frames: u32 },
    #[error("the instance has no attribute {0}")]
    NoSuchAttribute(Tag),
    #[error("attribute {0} has no binary value to serve")]
    NotBulkData(Tag),
    #[error("the pixel data does not match the image's geometry: {0}")]
    Inconsistent(String),
}

/// A stored instance, read once for its frames or bulk data.
pub struct StoredPixels {
    object: DefaultDicomObject,
    transfer_syntax: String,
}

/// A frame, or bulk data, as it is served: its bytes and the syntax they
/// are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub bytes: Vec<u8>,
    pub transfer_syntax: String,
}

impl StoredPixels {
    /// Reads the whole file (it is bounded by the largest instance
    /// accepted).
    pub fn open(path: &Path) -> Result<Self, FrameError> {
        let object = OpenFileOptions::new()
            .open_file(path)
            .map_err(|e| FrameError::Read(e.to_string()))?;
        Ok(StoredPixels::of(object))
    }

    /// An instance a caller has already read.
    pub fn of(object: DefaultDicomObject) -> Self {
        let transfer_syntax = object
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_string();
        StoredPixels {
            object,
            transfer_syntax,
        }
    }

    /// The instance, for its other attributes.
    pub fn object(&self) -> &DefaultDicomObject {
        &self.object
    }

    /// The syntax the frames are served in: the stored one when
    /// encapsulated, else Explicit VR Little Endian.
    pub fn frame_syntax(&self) -> &str {
        if is_encapsulated(&self.transfer_syntax) {
            &self.transfer_syntax
        } else {
            EXPLICIT_VR_LITTLE_ENDIAN
        }
    }

    fn int(&self, tag: Tag) -> Option<u32> {
        self.object
            .element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u32>().ok())
    }

    /// Number of Frames (0028,0008), 1 when absent.
    pub fn frame_count(&self) -> u32 {
        self.int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1)
    }

    /// Frames `numbers` (from 1), in the order asked.
    pub fn frames(&self, numbers: &[u32]) -> Result<Vec<Served>, FrameError> {
        let count = self.frame_count();
        if let Some(&asked) = numbers.iter().find(|&&n| n == 0 || n > count) {
            return Err(FrameError::OutOfRange {
                asked,
                frames: count,
            });
        }
        let pixel_data = self
            .object
            .element_opt(tags::PIXEL_DATA)
            .ok()
            .flatten()
            .ok_or(FrameError::NoPixelData)?;
        let cut: Vec<Vec<u8>> = match pixel_data.value() {
            Value::PixelSequence(sequence) => {
                let frames =
                    encapsulated_frames(sequence.fragments(), sequence.offset_table(), count)?;
                numbers
                    .iter()
                    .map(|&n| frames[n as usize - 1].clone())
                    .collect()
            }
            Value::Primitive(value) => {
                let bytes = value.to_bytes();
                let size = self.native_frame_size()?;
                numbers
                    .iter()
                    .map(|&n| {
                        let start = (n as usize - 1) * size;
                        bytes
                            .get(start..start + size)
                            .map(<[u8]>::to_vec)
                            .ok_or_else(|| {
                                FrameError::Inconsistent(format!(
                                    "{} bytes of pixel data hold no frame {n} of {size} bytes",
                                    bytes.len()
                                ))
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
            Value::Sequence(_) => {
                return Err(FrameError::Inconsistent(
                    "Pixel Data is a sequence of items".into(),
                ));
            }
        };
        let syntax = self.frame_syntax().to_string();
        Ok(cut
            .into_iter()
            .map(|bytes| Served {
                bytes,
                transfer_syntax: syntax.clone(),
            })
            .collect())
    }

    /// Bytes of one native frame (PS3.5 §8.1.1: frames are contiguous,
    /// single-bit frames packed).
    fn native_frame_size(&self) -> Result<usize, FrameError> {
        let rows = self
            .int(tags::ROWS)
            .ok_or(FrameError::NoSuchAttribute(tags::ROWS))?;
        let columns = self
            .int(tags::COLUMNS)
            .ok_or(FrameError::NoSuchAttribute(tags::COLUMNS))?;
        let samples = self.int(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let bits = self
            .int(tags::BITS_ALLOCATED)
            .ok_or(FrameError::NoSuchAttribute(tags::BITS_ALLOCATED))?;
        let total_bits =
            u64::from(rows) * u64::from(columns) * u64::from(samples) * u64::from(bits);
        if total_bits == 0 || total_bits % 8 != 0 {
            return Err(FrameError::Inconsistent(format!(
                "a frame of {rows} × {columns} × {samples} samples of {bits} bits is not a whole \
                 number of bytes"
            )));
        }
        usize::try_from(total_bits / 8).map_err(|e| FrameError::Inconsistent(e.to_string()))
    }

    /// The value of top-level attribute `tag`, for `bulkdata`:
    /// encapsulated Pixel Data as its frames, any other binary value whole.
    pub fn bulk_data(&self, tag: Tag) -> Result<Vec<Served>, FrameError> {
        if tag == tags::PIXEL_DATA && is_encapsulated(&self.transfer_syntax) {
            let all: Vec<u32> = (1..=self.frame_count()).collect();
            return self.frames(&all);
        }
        let element = self
            .object
            .element_opt(tag)
            .ok()
            .flatten()
            .ok_or(FrameError::NoSuchAttribute(tag))?;
        match element.value() {
            Value::Primitive(value) if is_binary(element.vr()) => {
                let bytes = value.to_bytes().into_owned();
                Ok(vec![Served {
                    bytes,
                    transfer_syntax: EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
                }])
            }
            _ => Err(FrameError::NotBulkData(tag)),
        }
    }
}

/// The VRs of values served as bulk data (PS3.18 §F.2.7).
fn is_binary(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
    )
}

/// The compressed bit stream of each frame.
fn encapsulated_frames(
    fragments: &[Vec<u8>],
    offsets: &[u32],
    count: u32,
) -> Result<Vec<Vec<u8>>, FrameError> {
    let count = count as usize;
    if fragments.len() == count {
        return Ok(fragments.to_vec());
    }
    if count == 1 {
        return Ok(vec![fragments.concat()]);
    }
    if offsets.len() != count {
        return Err(FrameError::Inconsistent(format!(
            "{} fragments for {count} frames and no offset table to tell them apart",
            fragments.len()
        )));
    }
    // Offsets count from the first fragment's item tag: each item is an
    // 8-byte header and its value (PS3.5 §A.4).
    let mut starts = Vec::with_capacity(fragments.len());
    let mut at = 0u64;
    for fragment in fragments {
        starts.push(at);
        at += 8 + fragment.len() as u64;
    }
    let mut frames = Vec::with_capacity(count);
    for (n, &offset) in offsets.iter().enumerate() {
        let first = starts
            .iter()
            .position(|&s| s == u64::from(offset))
            .ok_or_else(|| {
                FrameError::Inconsistent(format!(
                    "offset {offset} of frame {} starts no fragment",
                    n + 1
                ))
            })?;
        let end = offsets.get(n + 1).map_or(fragments.len(), |&next| {
            starts
                .iter()
                .position(|&s| s == u64::from(next))
                .unwrap_or(fragments.len())
        });
        if end <= first {
            return Err(FrameError::Inconsistent(format!(
                "the offset table does not increase at frame {}",
                n + 1
            )));
        }
        frames.push(fragments[first..end].concat());
    }
    Ok(frames)
}

/// The media type of a frame in `transfer_syntax` (PS3.18 Table 8.7.3-5).
pub fn media_type(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/samples")
            .join(name)
    }

    #[test]
    fn a_native_frame_is_the_image_in_little_endian_order() {
        let stored = StoredPixels::open(&sample("CT_small.dcm")).expect("open");
        assert_eq!(stored.frame_count(), 1);
        let frames = stored.frames(&[1]).expect("frame 1");
        assert_eq!(frames[0].transfer_syntax, EXPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(frames[0].bytes.len(), 128 * 128 * 2);
        // The big-endian copy of the MR gives the same bytes as the
        // little-endian one.
        let little = StoredPixels::open(&sample("MR_small.dcm")).expect("open");
        let big = StoredPixels::open(&sample("MR_small_bigendian.dcm")).expect("open");
        assert_eq!(
            little.frames(&[1]).expect("frame"),
            big.frames(&[1]).expect("frame")
        );
        assert!(matches!(
            stored.frames(&[2]),
            Err(FrameError::OutOfRange {
                asked: 2,
                frames: 1
            })
        ));
        assert!(matches!(
            stored.frames(&[0]),
            Err(FrameError::OutOfRange { asked: 0, .. })
        ));
    }

    #[test]
    fn an_encapsulated_frame_is_its_bit_stream() {
        let stored = StoredPixels::open(&sample("MR_small_jp2klossless.dcm")).expect("open");
        let frames = stored.frames(&[1]).expect("frame 1");
        assert_eq!(frames[0].transfer_syntax, "1.2.840.10008.1.2.4.90");
        // A JPEG 2000 codestream starts with SOC, SIZ (ISO/IEC 15444-1
        // A.4.1).
        assert_eq!(&frames[0].bytes[..4], &[0xFF, 0x4F, 0xFF, 0x51]);
        assert_eq!(media_type(&frames[0].transfer_syntax), "image/jp2");
    }

    #[test]
    fn the_offset_table_tells_frames_apart() {
        let fragments = vec![vec![1u8; 4], vec![2u8; 6], vec![3u8; 2]];
        // Frame 1: fragments 1 and 2 (offset 0); frame 2: fragment 3
        // (offset 8 + 4 + 8 + 6).
        let frames = encapsulated_frames(&fragments, &[0, 26], 2).expect("frames");
        assert_eq!(
            frames,
            vec![[vec![1u8; 4], vec![2u8; 6]].concat(), vec![3u8; 2]]
        );
        assert!(encapsulated_frames(&fragments, &[], 2).is_err());
        assert!(encapsulated_frames(&fragments, &[0, 5], 2).is_err());
        assert!(encapsulated_frames(&fragments, &[26, 0], 2).is_err());
    }
}
