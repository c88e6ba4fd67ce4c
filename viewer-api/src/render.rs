//! A decoded frame made into a picture: windowed to 8 bits (or kept as
//! RGB), inverted for MONOCHROME1, fitted into the viewport, encoded as
//! JPEG (jpeg-encoder, SIMD) or PNG (image).

use crate::decode::{Decoded, Pixels};
use crate::window::Window;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{ExtendedColorType, ImageEncoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// The JPEG quality when none is asked for.
pub const DEFAULT_QUALITY: u8 = 90;

#[derive(Debug, Clone, Copy)]
pub struct Rendering {
    /// Asked for (a window or a preset); else the stored one, else
    /// computed.
    pub window: Option<Window>,
    /// The largest picture wanted, width × height; the frame's aspect is
    /// kept.
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality, 1–100.
    pub quality: u8,
    pub format: Format,
}

impl Rendering {
    /// What `/rendered` without parameters gives: JPEG, the stored (or
    /// computed) window, full size.
    pub const DEFAULT: Rendering = Rendering {
        window: None,
        viewport: None,
        quality: DEFAULT_QUALITY,
        format: Format::Jpeg,
    };
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode the picture: {0}")]
pub struct RenderError(String);

/// The window a frame is shown with when none is asked for: MR has no
/// units, so its stored window is often a guess of the scanner's and the
/// frame's own values say more; other modalities' stored window is the
/// one their protocol chose.
pub fn default_window(decoded: &Decoded, values: &[f32]) -> Window {
    match decoded.stored_window {
        Some(stored) if decoded.modality != "MR" => stored,
        _ => Window::automatic(values),
    }
}

/// The encoded picture.
pub fn render(decoded: &Decoded, rendering: &Rendering) -> Result<Vec<u8>, RenderError> {
    let (width, height) = (decoded.width, decoded.height);
    let (bytes, colour) = match &decoded.pixels {
        Pixels::Grey(values) => {
            let window = rendering
                .window
                .unwrap_or_else(|| default_window(decoded, values));
            let invert = decoded.monochrome1;
            let grey: Vec<u8> = values
                .iter()
                .map(|&v| {
                    let shown = window.apply(v);
                    if invert { 255 - shown } else { shown }
                })
                .collect();
            (grey, ExtendedColorType::L8)
        }
        Pixels::Rgb(rgb) => (rgb.clone(), ExtendedColorType::Rgb8),
    };
    let (bytes, width, height) = match rendering.viewport {
        Some(viewport) => fit(bytes, colour, (width, height), viewport)?,
        None => (bytes, width, height),
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 + 1024);
    match rendering.format {
        Format::Jpeg => {
            let (w, h) = match (u16::try_from(width), u16::try_from(height)) {
                (Ok(w), Ok(h)) => (w, h),
                _ => {
                    return Err(RenderError(format!(
                        "{width} × {height} is too large for JPEG"
                    )));
                }
            };
            let colour = match colour {
                ExtendedColorType::Rgb8 => jpeg_encoder::ColorType::Rgb,
                _ => jpeg_encoder::ColorType::Luma,
            };
            jpeg_encoder::Encoder::new(&mut out, rendering.quality.clamp(1, 100))
                .encode(&bytes, w, h, colour)
                .map_err(|e| RenderError(e.to_string()))?;
        }
        Format::Png => PngEncoder::new(&mut out)
            .write_image(&bytes, width, height, colour)
            .map_err(|e| RenderError(e.to_string()))?,
    }
    Ok(out)
}

/// Resized to fit in `viewport`, aspect kept, at least one pixel a side.
fn fit(
    bytes: Vec<u8>,
    colour: ExtendedColorType,
    (width, height): (u32, u32),
    (max_width, max_height): (u32, u32),
) -> Result<(Vec<u8>, u32, u32), RenderError> {
    let scale =
        (f64::from(max_width) / f64::from(width)).min(f64::from(max_height) / f64::from(height));
    let new_width = ((f64::from(width) * scale).round() as u32).max(1);
    let new_height = ((f64::from(height) * scale).round() as u32).max(1);
    if (new_width, new_height) == (width, height) {
        return Ok((bytes, width, height));
    }
    let wrong = || RenderError("the pixels do not fill the frame".into());
    let resized = match colour {
        ExtendedColorType::Rgb8 => {
            let picture = image::RgbImage::from_raw(width, height, bytes).ok_or_else(wrong)?;
            image::imageops::resize(&picture, new_width, new_height, FilterType::Triangle)
                .into_raw()
        }
        _ => {
            let picture = image::GrayImage::from_raw(width, height, bytes).ok_or_else(wrong)?;
            image::imageops::resize(&picture, new_width, new_height, FilterType::Triangle)
                .into_raw()
        }
    };
    Ok((resized, new_width, new_height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Function;

    fn ramp(monochrome1: bool) -> Decoded {
        Decoded {
            width: 4,
            height: 2,
            pixels: Pixels::Grey(vec![-100.0, 0.0, 50.0, 100.0, 200.0, 300.0, 400.0, 1000.0]),
            stored_window: Some(Window {
                center: 50.0,
                width: 100.0,
                function: Function::Linear,
            }),
            monochrome1,
            modality: "CT".into(),
        }
    }

    fn png_pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let picture = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("a PNG")
            .to_luma8();
        (picture.width(), picture.height(), picture.into_raw())
    }

    #[test]
    fn grey_frames_are_windowed_and_inverted_for_monochrome1() {
        let png = Rendering {
            window: None,
            viewport: None,
            quality: 90,
            format: Format::Png,
        };
        let (w, h, shown) = png_pixels(&render(&ramp(false), &png).expect("a PNG"));
        assert_eq!((w, h), (4, 2));
        assert_eq!(shown, [0, 0, 129, 255, 255, 255, 255, 255]);
        let (_, _, inverted) = png_pixels(&render(&ramp(true), &png).expect("a PNG"));
        assert_eq!(inverted, [255, 255, 126, 0, 0, 0, 0, 0]);
        let wide = Rendering {
            window: Some(Window::parse("450,1100").expect("a window")),
            ..png
        };
        let (_, _, shown) = png_pixels(&render(&ramp(false), &wide).expect("a PNG"));
        assert!(shown.windows(2).all(|p| p[0] < p[1]), "{shown:?}");
    }

    /// DCMTK's `dcm2pnm` is the reference: the same frames with the same
    /// windows (PS3.3 §C.11.2.1.2) give the same grey levels, within one
    /// level of rounding.
    #[test]
    fn renderings_match_dcmtk_within_one_grey_level() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/samples");
        for (name, window, function) in [
            ("CT_small.dcm", (40.0, 400.0), "+Wfl"),
            ("CT_small.dcm", (600.0, 2800.0), "+Wfl"),
            ("CT_small.dcm", (40.0, 80.0), "+Wfs"),
            ("MR_small.dcm", (600.0, 1200.0), "+Wfl"),
            ("MR_small_RLE.dcm", (600.0, 1200.0), "+Wfl"),
        ] {
            let path = samples.join(name);
            let dir = tempfile::tempdir().expect("a temp dir");
            let reference = dir.path().join("reference.png");
            let out = std::process::Command::new("/usr/bin/dcm2pnm")
                .args([
                    "+on",
                    "+Ww",
                    &window.0.to_string(),
                    &window.1.to_string(),
                    function,
                ])
                .arg(&path)
                .arg(&reference)
                .output()
                .expect("run dcm2pnm (DCMTK)");
            assert!(out.status.success(), "{name}: {out:?}");
            let (rw, rh, theirs) = png_pixels(&std::fs::read(&reference).expect("read"));
            let decoded = crate::decode::decode(&path, 1).expect(name);
            let rendering = Rendering {
                window: Some(Window {
                    center: window.0,
                    width: window.1,
                    function: if function == "+Wfs" {
                        Function::Sigmoid
                    } else {
                        Function::Linear
                    },
                }),
                viewport: None,
                quality: 90,
                format: Format::Png,
            };
            let (w, h, ours) = png_pixels(&render(&decoded, &rendering).expect("a PNG"));
            assert_eq!((w, h), (rw, rh), "{name}");
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            assert!(
                worst <= 1,
                "{name} {window:?} {function}: {worst} grey levels apart"
            );
            // Not a blank picture on either side.
            assert!(
                theirs.iter().any(|&v| v != theirs[0]),
                "{name}: a flat reference"
            );
        }
    }

    #[test]
    fn the_viewport_keeps_the_aspect() {
        let small = Rendering {
            window: None,
            viewport: Some((2, 2)),
            quality: 90,
            format: Format::Png,
        };
        let (w, h, _) = png_pixels(&render(&ramp(false), &small).expect("a PNG"));
        assert_eq!((w, h), (2, 1));
        let jpeg = Rendering {
            format: Format::Jpeg,
            viewport: None,
            ..small
        };
        let bytes = render(&ramp(false), &jpeg).expect("a JPEG");
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "SOI");
    }
}
