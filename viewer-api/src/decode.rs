//! One frame of a stored instance, decoded for rendering: greyscale as
//! modality values (Rescale Slope and Intercept applied, signed pixels
//! read as signed), colour as 8-bit RGB.
//!
//! Decompression is dicom-pixeldata's (JPEG through jpeg-decoder, RLE,
//! JPEG 2000 through OpenJPEG); what it leaves to its caller is done here:
//! planar colour put back pixel by pixel, native YCbCr turned to RGB
//! (PS3.3 §C.7.6.3.1.2), MONOCHROME1 noted for inversion after the window.

use crate::window::Window;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{
    PhotometricInterpretation, PixelDecoder, PixelRepresentation, PlanarConfiguration,
};
use std::path::Path;
use telerad_dicom::frames::StoredPixels;
use telerad_dicom::transfer_syntax::is_encapsulated;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the stored file: {0}")]
    Read(String),
    #[error("frame {asked} does not exist: the instance has {frames} frame(s)")]
    OutOfRange { asked: u32, frames: u32 },
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("cannot decode the pixel data: {0}")]
    Decode(String),
    #[error("{0} is not rendered")]
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Modality values, row by row.
    Grey(Vec<f32>),
    /// R, G, B per pixel, row by row.
    Rgb(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub pixels: Pixels,
    /// The first window the modality stored (Window Center and Width).
    pub stored_window: Option<Window>,
    /// Shown inverted: low values bright (PS3.3 §C.7.6.3.1.2).
    pub monochrome1: bool,
    pub modality: String,
}

impl Decoded {
    /// What the frame's pixels take in memory.
    pub fn bytes(&self) -> usize {
        match &self.pixels {
            Pixels::Grey(values) => std::mem::size_of_val(values.as_slice()),
            Pixels::Rgb(rgb) => rgb.len(),
        }
    }
}

fn text(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string()
        })
}

fn first_number(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_float64().ok())
        .and_then(|v| v.first().copied())
}

/// The stored instance at `path` and its number of frames, once checked
/// that it has pixel data and frames `numbers` (from 1).
fn open_frames(path: &Path, numbers: &[u32]) -> Result<(DefaultDicomObject, u32), DecodeError> {
    let object = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| DecodeError::Read(e.to_string()))?;
    if object
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .is_none()
    {
        return Err(DecodeError::NoPixelData);
    }
    let syntax = object.meta().transfer_syntax().trim_end_matches('\0');
    if let Some((_, name)) = NOT_DECODED.iter().find(|(uid, _)| *uid == syntax) {
        return Err(DecodeError::Unsupported(format!("{name} pixel data")));
    }
    let frames = first_number(&object, tags::NUMBER_OF_FRAMES).map_or(1, |n| n.max(1.0) as u32);
    if let Some(&asked) = numbers.iter().find(|&&n| n == 0 || n > frames) {
        return Err(DecodeError::OutOfRange { asked, frames });
    }
    Ok((object, frames))
}

/// Stored syntaxes without a decoder here: telerad's JPEG-LS decoder is
/// lossless only. Such frames are still served as stored.
const NOT_DECODED: &[(&str, &str)] = &[("1.2.840.10008.1.2.4.81", "JPEG-LS near-lossless")];

/// JPEG-LS Lossless, decoded by `telerad_dicom::jpegls` (dicom-pixeldata
/// would need CharLS, a CMake build).
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";

fn is_jpeg_ls(object: &DefaultDicomObject) -> bool {
    object.meta().transfer_syntax().trim_end_matches('\0') == JPEG_LS_LOSSLESS
}

/// Frames `numbers` (from 1) of a JPEG-LS instance already read as native
/// little-endian bytes of `bits_allocated` (8 or 16) per sample, each with
/// its size.
fn jpeg_ls_frames(
    pixels: &StoredPixels,
    numbers: &[u32],
    bits_allocated: u16,
) -> Result<Vec<(Vec<u8>, u32, u32)>, DecodeError> {
    pixels
        .frames(numbers)
        .map_err(|e| DecodeError::Read(e.to_string()))?
        .into_iter()
        .map(|served| jpeg_ls_native(&served.bytes, bits_allocated))
        .collect()
}

fn jpeg_ls_native(bytes: &[u8], bits_allocated: u16) -> Result<(Vec<u8>, u32, u32), DecodeError> {
    let decoded =
        telerad_dicom::jpegls::decode(bytes).map_err(|e| DecodeError::Decode(e.to_string()))?;
    let data = match bits_allocated {
        8 if decoded.bits <= 8 => decoded.samples.iter().map(|&v| v as u8).collect(),
        16 => decoded
            .samples
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        other => {
            return Err(DecodeError::Unsupported(format!(
                "JPEG-LS of {} bits in {other} bits allocated",
                decoded.bits
            )));
        }
    };
    Ok((data, decoded.columns, decoded.rows))
}

fn int(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<u16> {
    object
        .element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u16>().ok())
}

/// A grey-scale JPEG-LS frame as modality values.
fn decode_jpeg_ls(pixels: &StoredPixels, frame: u32) -> Result<Decoded, DecodeError> {
    let object = pixels.object();
    if int(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1) != 1 {
        return Err(DecodeError::Unsupported("colour JPEG-LS".into()));
    }
    let bits_allocated = int(object, tags::BITS_ALLOCATED).unwrap_or(16);
    let (data, width, height) = jpeg_ls_frames(pixels, &[frame], bits_allocated)?
        .pop()
        .ok_or(DecodeError::NoPixelData)?;
    let (rows, columns) = (int(object, tags::ROWS), int(object, tags::COLUMNS));
    if (rows.map(u32::from), columns.map(u32::from)) != (Some(height), Some(width)) {
        return Err(DecodeError::Decode(format!(
            "a {width} × {height} JPEG-LS frame in a {columns:?} × {rows:?} image"
        )));
    }
    let stored = StoredValues {
        bits_allocated,
        bits_stored: int(object, tags::BITS_STORED).unwrap_or(bits_allocated),
        signed: int(object, tags::PIXEL_REPRESENTATION) == Some(1),
    };
    let values = stored
        .modality_values(&data, rescale(object))
        .ok_or_else(|| DecodeError::Unsupported(format!("{bits_allocated} bits allocated")))?;
    let interpretation = text(object, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    Ok(Decoded {
        width,
        height,
        pixels: Pixels::Grey(values),
        stored_window: stored_window(object),
        monochrome1: interpretation == "MONOCHROME1",
        modality: text(object, tags::MODALITY).unwrap_or_default(),
    })
}

/// Frame `frame` (from 1) of the instance stored at `path`.
pub fn decode(path: &Path, frame: u32) -> Result<Decoded, DecodeError> {
    let (object, _) = open_frames(path, &[frame])?;
    if is_jpeg_ls(&object) {
        return decode_jpeg_ls(&StoredPixels::of(object), frame);
    }
    let encapsulated = is_encapsulated(object.meta().transfer_syntax());
    let decoded = object
        .decode_pixel_data_frame(frame - 1)
        .map_err(|e| DecodeError::Decode(e.to_string()))?;
    let (width, height) = (decoded.columns(), decoded.rows());
    let pixel_count = width as usize * height as usize;
    let interpretation = decoded.photometric_interpretation().clone();
    let pixels = if decoded.samples_per_pixel() == 1 {
        let data = decoded
            .frame_data(0)
            .map_err(|e| DecodeError::Decode(e.to_string()))?;
        let stored = StoredValues {
            bits_allocated: decoded.bits_allocated(),
            bits_stored: decoded.bits_stored(),
            signed: decoded.pixel_representation() == PixelRepresentation::Signed,
        };
        let values = match stored.modality_values(data, rescale(&object)) {
            Some(values) => values,
            // 32-bit and other rare layouts: dicom-pixeldata's own
            // conversion, slower but general.
            None => decoded
                .to_vec_frame(0)
                .map_err(|e| DecodeError::Decode(e.to_string()))?,
        };
        Pixels::Grey(values)
    } else {
        if decoded.bits_allocated() != 8 {
            return Err(DecodeError::Unsupported(format!(
                "colour of {} bits per sample",
                decoded.bits_allocated()
            )));
        }
        let data = decoded
            .frame_data(0)
            .map_err(|e| DecodeError::Decode(e.to_string()))?;
        let mut rgb = if decoded.planar_configuration() == PlanarConfiguration::PixelFirst {
            // RRR…GGG…BBB: one plane per colour.
            let (r, rest) = data.split_at(pixel_count.min(data.len()));
            let (g, b) = rest.split_at(pixel_count.min(rest.len()));
            (0..pixel_count.min(b.len()))
                .flat_map(|i| [r[i], g[i], b[i]])
                .collect()
        } else {
            data.to_vec()
        };
        // Decoders give RGB (PS3.5 §8.2: what the codec reconstructs); only
        // native YCbCr is converted here.
        match (&interpretation, encapsulated) {
            (PhotometricInterpretation::YbrFull, false) => ybr_full_to_rgb(&mut rgb),
            (PhotometricInterpretation::YbrFull422, false) => {
                return Err(DecodeError::Unsupported(
                    "native YBR_FULL_422 (subsampled) pixel data".into(),
                ));
            }
            _ => {}
        }
        Pixels::Rgb(rgb)
    };
    let expected = match &pixels {
        Pixels::Grey(v) => v.len(),
        Pixels::Rgb(v) => v.len() / 3,
    };
    if expected != pixel_count {
        return Err(DecodeError::Decode(format!(
            "{expected} pixels decoded for a {width} × {height} frame"
        )));
    }
    Ok(Decoded {
        width,
        height,
        pixels,
        stored_window: stored_window(&object),
        monochrome1: interpretation == PhotometricInterpretation::Monochrome1,
        modality: text(&object, tags::MODALITY).unwrap_or_default(),
    })
}

/// The first window the modality stored (Window Center and Width).
fn stored_window(object: &DefaultDicomObject) -> Option<Window> {
    match (
        first_number(object, tags::WINDOW_CENTER),
        first_number(object, tags::WINDOW_WIDTH),
    ) {
        (Some(center), Some(width)) if width > 0.0 => Some(Window {
            center,
            width,
            function: crate::window::Function::Linear,
        }),
        _ => None,
    }
}

/// Rescale Slope and Intercept (PS3.3 §C.11.1.1.2), or the identity.
fn rescale(object: &DefaultDicomObject) -> (f64, f64) {
    (
        first_number(object, tags::RESCALE_SLOPE).unwrap_or(1.0),
        first_number(object, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    )
}

/// How stored pixel values are laid out (PS3.5 §8.1.1).
struct StoredValues {
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
}

impl StoredValues {
    /// The modality values of a frame's native little-endian bytes: only
    /// the stored bits kept (the others may hold overlays), sign extended,
    /// rescaled. `None` for a layout other than 8 or 16 bits allocated.
    fn modality_values(&self, data: &[u8], (slope, intercept): (f64, f64)) -> Option<Vec<f32>> {
        if !matches!(self.bits_allocated, 8 | 16) {
            return None;
        }
        let bits = u32::from(self.bits_stored.clamp(1, self.bits_allocated));
        let mask = (1usize << bits) - 1;
        // One entry per stored value (4096 for 12 bits): a table lookup
        // per pixel instead of the arithmetic.
        let table: Vec<f32> = (0..=mask)
            .map(|masked| {
                let stored = if self.signed && masked & (1 << (bits - 1)) != 0 {
                    masked as i64 - (1i64 << bits)
                } else {
                    masked as i64
                };
                (stored as f64 * slope + intercept) as f32
            })
            .collect();
        Some(match self.bits_allocated {
            8 => data.iter().map(|&b| table[usize::from(b) & mask]).collect(),
            _ => data
                .chunks_exact(2)
                .map(|p| table[usize::from(u16::from_le_bytes([p[0], p[1]])) & mask])
                .collect(),
        })
    }
}

/// Frames `numbers` (from 1; all of them when `None`) decompressed to
/// native pixel data, little endian (Explicit VR Little Endian's pixels),
/// colour as RGB pixel by pixel: what a client that cannot decode asks
/// for.
pub fn native_frames(path: &Path, numbers: Option<&[u32]>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let (object, frames) = open_frames(path, numbers.unwrap_or(&[]))?;
    let all: Vec<u32> = (1..=frames).collect();
    let numbers = numbers.unwrap_or(&all);
    if is_jpeg_ls(&object) {
        let bits_allocated = int(&object, tags::BITS_ALLOCATED).unwrap_or(16);
        return Ok(
            jpeg_ls_frames(&StoredPixels::of(object), numbers, bits_allocated)?
                .into_iter()
                .map(|(data, _, _)| data)
                .collect(),
        );
    }
    numbers
        .iter()
        .map(|&n| {
            let decoded = object
                .decode_pixel_data_frame(n - 1)
                .map_err(|e| DecodeError::Decode(e.to_string()))?;
            decoded
                .frame_data(0)
                .map(<[u8]>::to_vec)
                .map_err(|e| DecodeError::Decode(e.to_string()))
        })
        .collect()
}

/// YCbCr full range to RGB (PS3.3 §C.7.6.3.1.2, ITU-R BT.601).
fn ybr_full_to_rgb(pixels: &mut [u8]) {
    for p in pixels.chunks_exact_mut(3) {
        let (y, cb, cr) = (
            f32::from(p[0]),
            f32::from(p[1]) - 128.0,
            f32::from(p[2]) - 128.0,
        );
        p[0] = (y + 1.402 * cr).round().clamp(0.0, 255.0) as u8;
        p[1] = (y - 0.344_136 * cb - 0.714_136 * cr)
            .round()
            .clamp(0.0, 255.0) as u8;
        p[2] = (y + 1.772 * cb).round().clamp(0.0, 255.0) as u8;
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
    fn compressed_copies_decode_to_the_uncompressed_pixels() {
        let original = decode(&sample("MR_small.dcm"), 1).expect("the original");
        assert_eq!((original.width, original.height), (64, 64));
        for copy in [
            "MR_small_RLE.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_implicit.dcm",
            // Encoded by CharLS (pydicom's test file): telerad's decoder.
            "MR_small_jpeg_ls_lossless.dcm",
        ] {
            let decoded = decode(&sample(copy), 1).expect(copy);
            assert_eq!(decoded.pixels, original.pixels, "{copy}");
        }
        assert!(matches!(
            decode(&sample("MR_small.dcm"), 2),
            Err(DecodeError::OutOfRange {
                asked: 2,
                frames: 1
            })
        ));
        let native = native_frames(&sample("MR_small_jpeg_ls_lossless.dcm"), None)
            .expect("the JPEG-LS frame, decompressed");
        let stored = telerad_dicom::frames::StoredPixels::open(&sample("MR_small.dcm"))
            .and_then(|pixels| pixels.frames(&[1]))
            .expect("the original's frame");
        assert!(native == [stored[0].bytes.clone()], "bit for bit");
    }

    /// The samples OpenJPEG's own `opj_decompress` makes of a frame's
    /// code stream, against dicom-pixeldata's decoding of the same frame
    /// (both as stored, before any rescale): the same, bit for bit.
    #[test]
    fn jpeg_2000_decodes_as_openjpeg_decodes_it() {
        for name in ["MR_small_jp2klossless.dcm", "JPEG2000.dcm"] {
            let path = sample(name);
            let stored = telerad_dicom::frames::StoredPixels::open(&path).expect(name);
            let code_stream = stored.frames(&[1]).expect("frame 1").remove(0).bytes;
            let dir = tempfile::tempdir().expect("a temp dir");
            let (input, output) = (dir.path().join("frame.j2k"), dir.path().join("frame.rawl"));
            std::fs::write(&input, &code_stream).expect("write");
            let theirs = opj_decompress(&input, &output);
            let object = dicom_object::open_file(&path).expect(name);
            let decoded = object.decode_pixel_data_frame(0).expect("decoded");
            let ours = decoded.frame_data(0).expect("frame data");
            assert_eq!(ours.len(), theirs.len(), "{name}");
            assert!(ours == &theirs[..], "{name}: the samples differ");
        }
    }

    /// DCMTK's JPEG-LS encoder (`dcmcjpls`, CharLS inside) on an
    /// uncompressed CT: telerad's decoder gives back its pixels bit for bit.
    #[test]
    fn jpeg_ls_from_dcmtk_decodes_to_the_original_pixels() {
        let tool = Path::new("/usr/bin/dcmcjpls");
        let banner = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .expect("run dcmcjpls (apt-get install dcmtk)");
        assert!(
            String::from_utf8_lossy(&banner.stdout).contains("$dcmtk:"),
            "{} is not DCMTK's",
            tool.display()
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        let original = sample("CT_small.dcm");
        let compressed = dir.path().join("ct-jls.dcm");
        let out = std::process::Command::new(tool)
            .arg(&original)
            .arg(&compressed)
            .output()
            .expect("run dcmcjpls");
        assert!(out.status.success(), "{out:?}");
        let ours = native_frames(&compressed, None).expect("decoded");
        let stored = telerad_dicom::frames::StoredPixels::open(&original)
            .and_then(|pixels| pixels.frames(&[1]))
            .expect("the original's frame");
        assert_eq!(ours.len(), 1);
        assert!(ours[0] == stored[0].bytes, "the pixels differ");
        let rendered = decode(&compressed, 1).expect("rendered");
        assert_eq!(
            rendered.pixels,
            decode(&original, 1).expect("original").pixels
        );
    }

    /// OpenJPH's HTJ2K encoder (`ojph_compress`, reversible) on the
    /// uncompressed CT's samples (declared signed; this sample's values are
    /// all positive, and OpenJPH 0.9 reads raw input as unsigned, so the
    /// sign itself is not exercised), stored as High-Throughput JPEG 2000
    /// Image Compression (Lossless Only), PS3.5 §A.4.11,
    /// 1.2.840.10008.1.2.4.201 (the stream has no TLM markers, which the
    /// RPCL Options syntax .202 asks for): telerad decodes it to the
    /// original pixels bit for bit, and so does OpenJPEG's own
    /// `opj_decompress`.
    #[test]
    fn htj2k_from_openjph_decodes_to_the_original_pixels() {
        use dicom_core::value::{PixelFragmentSequence, Value};
        use dicom_core::{DataElement, VR};
        let original = sample("CT_small.dcm");
        let stored = telerad_dicom::frames::StoredPixels::open(&original)
            .and_then(|pixels| pixels.frames(&[1]))
            .expect("the original's frame")
            .remove(0)
            .bytes;
        let dir = tempfile::tempdir().expect("a temp dir");
        let (raw, code_stream) = (dir.path().join("ct.raw"), dir.path().join("ct.j2c"));
        std::fs::write(&raw, &stored).expect("write the samples");
        // 128 × 128 signed 16-bit samples, little endian, one component.
        let out = std::process::Command::new("/usr/bin/ojph_compress")
            .arg("-i")
            .arg(&raw)
            .arg("-o")
            .arg(&code_stream)
            .args([
                "-reversible",
                "true",
                "-dims",
                "{128,128}",
                "-num_comps",
                "1",
            ])
            .args(["-signed", "true", "-bit_depth", "16", "-downsamp", "{1,1}"])
            .output()
            .expect("run ojph_compress (apt-get install openjph-tools)");
        assert!(out.status.success(), "{out:?}");
        let encoded = std::fs::read(&code_stream).expect("the code stream");
        // The SIZ marker's capabilities (Rsiz) say HTJ2K (ISO/IEC 15444-15):
        // this is not a Part 1 stream by another name.
        assert_eq!(&encoded[..4], &[0xFF, 0x4F, 0xFF, 0x51]);
        assert_ne!(encoded[6] & 0x40, 0, "Rsiz has no HT bit");

        let mut object = dicom_object::open_file(&original).expect("the CT");
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(vec![], vec![encoded])),
        ));
        object.update_meta(|meta| meta.transfer_syntax = "1.2.840.10008.1.2.4.201".into());
        let htj2k = dir.path().join("ct-htj2k.dcm");
        object.write_to_file(&htj2k).expect("write the HTJ2K copy");

        let decoded = decode(&htj2k, 1).expect("the HTJ2K copy decoded");
        assert_eq!(
            decoded.pixels,
            decode(&original, 1).expect("original").pixels
        );
        let reopened = dicom_object::open_file(&htj2k).expect("reopened");
        let frame = reopened
            .decode_pixel_data_frame(0)
            .expect("decoded as stored");
        assert!(
            frame.frame_data(0).expect("samples") == &stored[..],
            "bit for bit"
        );

        let theirs = opj_decompress(&code_stream, &dir.path().join("theirs.rawl"));
        assert!(theirs == stored, "opj_decompress: the samples differ");
    }

    /// The samples OpenJPEG's `opj_decompress` decodes from the code
    /// stream in `input`, by way of the raw file `output` (`.rawl`: little
    /// endian).
    fn opj_decompress(input: &Path, output: &Path) -> Vec<u8> {
        let out = std::process::Command::new("/usr/bin/opj_decompress")
            .arg("-i")
            .arg(input)
            .arg("-o")
            .arg(output)
            .output()
            .expect("run opj_decompress (apt-get install libopenjp2-tools)");
        assert!(out.status.success(), "{}: {out:?}", input.display());
        std::fs::read(output).expect("their samples")
    }

    #[test]
    fn stored_bits_are_masked_sign_extended_and_rescaled() {
        let twelve_signed = StoredValues {
            bits_allocated: 16,
            bits_stored: 12,
            signed: true,
        };
        // 0x0FFF is -1 in 12 bits; 0xF001 has overlay bits above bit 11.
        let data = [0xFF, 0x0F, 0x01, 0xF0, 0x00, 0x08];
        assert_eq!(
            twelve_signed.modality_values(&data, (1.0, 0.0)),
            Some(vec![-1.0, 1.0, -2048.0])
        );
        let unsigned = StoredValues {
            bits_allocated: 16,
            bits_stored: 16,
            signed: false,
        };
        assert_eq!(
            unsigned.modality_values(&[0x00, 0x04], (2.0, -1024.0)),
            Some(vec![1024.0])
        );
        let eight = StoredValues {
            bits_allocated: 8,
            bits_stored: 8,
            signed: false,
        };
        assert_eq!(eight.modality_values(&[255], (1.0, 0.0)), Some(vec![255.0]));
        let wide = StoredValues {
            bits_allocated: 32,
            bits_stored: 32,
            signed: false,
        };
        assert_eq!(wide.modality_values(&[0; 4], (1.0, 0.0)), None);
    }

    #[test]
    fn ct_values_are_hounsfield_units() {
        let ct = decode(&sample("CT_small.dcm"), 1).expect("the CT");
        let Pixels::Grey(values) = &ct.pixels else {
            panic!("a grey image")
        };
        // Rescale Intercept -1024: air is near -1000 HU, nothing below
        // -2048.
        let min = values.iter().copied().fold(f32::MAX, f32::min);
        assert!((-2048.0..-500.0).contains(&min), "{min}");
        assert_eq!(ct.modality, "CT");
    }

    #[test]
    fn colour_images_come_out_as_rgb() {
        for name in ["SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm"] {
            let decoded = decode(&sample(name), 1).expect(name);
            let Pixels::Rgb(rgb) = &decoded.pixels else {
                panic!("{name}: a colour image")
            };
            assert_eq!(
                rgb.len(),
                decoded.width as usize * decoded.height as usize * 3,
                "{name}"
            );
        }
    }
}
