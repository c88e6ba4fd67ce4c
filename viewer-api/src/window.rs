//! Which values of an image are shown, and how (the VOI LUT, PS3.3
//! §C.11.2.1.2): the window a viewer asks for, a named CT preset, the one
//! the modality stored, or one computed from the frame itself.
//!
//! The automatic window is telerad's own (dicom-pixeldata's picks a wrong
//! one for signed data): the 0.5th to 99.5th percentile of the frame's
//! modality values, so that a few hot pixels or the air around a head do
//! not flatten the picture. It is what MR images get, having no units.

use telerad_http::ApiError;

/// The VOI LUT functions of PS3.3 §C.11.2.1.3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Function {
    #[default]
    Linear,
    LinearExact,
    Sigmoid,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: Function,
}

/// CT presets in Hounsfield units (center, width): the usual reading
/// windows of emergency neuro- and body CT.
pub const PRESETS: &[(&str, f64, f64)] = &[
    ("brain", 40.0, 80.0),
    // Narrow, to see the early loss of grey-white contrast of an
    // ischaemic stroke.
    ("stroke", 40.0, 40.0),
    // Wide enough to tell a thin subdural collection from the bone.
    ("subdural", 75.0, 215.0),
    ("bone", 600.0, 2800.0),
    ("lung", -600.0, 1500.0),
    ("mediastinum", 50.0, 350.0),
    ("abdomen", 40.0, 400.0),
    ("liver", 60.0, 160.0),
];

impl Window {
    /// A named preset.
    pub fn preset(name: &str) -> Result<Window, ApiError> {
        PRESETS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, center, width)| Window {
                center,
                width,
                function: Function::Linear,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _, _)| *n).collect();
                ApiError::BadRequest(format!("preset {name:?}: one of {}", names.join(", ")))
            })
    }

    /// The `window` query parameter of PS3.18 §8.3.5.1.4:
    /// `center,width[,function]`.
    pub fn parse(raw: &str) -> Result<Window, ApiError> {
        let bad = || {
            ApiError::BadRequest(format!(
                "window {raw:?}: center,width[,linear|linear-exact|sigmoid], width above 0"
            ))
        };
        let mut parts = raw.split(',').map(str::trim);
        let center: f64 = parts.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
        let width: f64 = parts.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let function = match parts.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("linear") => Function::Linear,
            Some("linear-exact" | "linear_exact") => Function::LinearExact,
            Some("sigmoid") => Function::Sigmoid,
            Some(_) => return Err(bad()),
        };
        if parts.next().is_some() || !center.is_finite() || !width.is_finite() || width <= 0.0 {
            return Err(bad());
        }
        Ok(Window {
            center,
            width,
            function,
        })
    }

    /// The window of a frame's modality values: 0.5th to 99.5th
    /// percentile.
    pub fn automatic(values: &[f32]) -> Window {
        if values.is_empty() {
            return Window {
                center: 0.0,
                width: 1.0,
                function: Function::Linear,
            };
        }
        let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let at = |q: f64, sorted: &mut Vec<f32>| {
            let k = ((sorted.len() - 1) as f64 * q).round() as usize;
            let (_, v, _) = sorted.select_nth_unstable_by(k, f32::total_cmp);
            f64::from(*v)
        };
        if sorted.is_empty() {
            return Window {
                center: 0.0,
                width: 1.0,
                function: Function::Linear,
            };
        }
        let low = at(0.005, &mut sorted);
        let high = at(0.995, &mut sorted);
        Window {
            center: (low + high) / 2.0,
            width: (high - low).max(1.0),
            function: Function::Linear,
        }
    }

    /// The display value (0–255) of modality value `x`.
    pub fn apply(&self, x: f32) -> u8 {
        let (c, w, x) = (self.center, self.width, f64::from(x));
        let y = match self.function {
            // PS3.3 §C.11.2.1.2.1.
            Function::Linear => {
                let w = w.max(1.0);
                if x <= c - 0.5 - (w - 1.0) / 2.0 {
                    0.0
                } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                    1.0
                } else {
                    (x - (c - 0.5)) / (w - 1.0) + 0.5
                }
            }
            // PS3.3 §C.11.2.1.3.2.
            Function::LinearExact => ((x - c) / w + 0.5).clamp(0.0, 1.0),
            // PS3.3 §C.11.2.1.3.1.
            Function::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        };
        // `+ 0.5` and truncation rather than `round()`: the baseline x86-64
        // target has no rounding instruction, and a call per pixel cost
        // more than the rest of the window.
        (y.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_window_follows_the_standard() {
        let brain = Window::preset("Brain").expect("a preset");
        assert_eq!((brain.center, brain.width), (40.0, 80.0));
        assert_eq!(brain.apply(-1000.0), 0);
        assert_eq!(brain.apply(0.0), 0);
        assert_eq!(brain.apply(40.0), 129);
        assert_eq!(brain.apply(80.0), 255);
        assert_eq!(brain.apply(3000.0), 255);
        let sigmoid = Window::parse("40,80,sigmoid").expect("a window");
        assert_eq!(sigmoid.apply(40.0), 128);
        assert!(sigmoid.apply(0.0) > 0 && sigmoid.apply(80.0) < 255);
        let exact = Window::parse("0,100,linear-exact").expect("a window");
        assert_eq!(exact.apply(-50.0), 0);
        assert_eq!(exact.apply(0.0), 128);
        assert_eq!(exact.apply(50.0), 255);
    }

    #[test]
    fn malformed_windows_and_unknown_presets_are_refused() {
        for bad in [
            "",
            "40",
            "40,0",
            "40,-5",
            "a,b",
            "40,80,gamma",
            "40,80,linear,1",
            "NaN,80",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
        assert!(Window::preset("cardiac").is_err());
    }

    #[test]
    fn the_automatic_window_ignores_a_few_extremes() {
        // 1000 values from 0 to 999, and two hot pixels.
        let mut values: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        values.extend([1e6, -1e6]);
        let auto = Window::automatic(&values);
        assert!((auto.center - 499.5).abs() < 10.0, "{auto:?}");
        assert!((auto.width - 990.0).abs() < 15.0, "{auto:?}");
        // Signed values (a CT's air) are no different.
        let signed: Vec<f32> = (-1000..0).map(|v| v as f32).collect();
        let auto = Window::automatic(&signed);
        assert!((auto.center + 500.0).abs() < 10.0, "{auto:?}");
        assert_eq!(Window::automatic(&[5.0; 10]).width, 1.0);
    }
}
