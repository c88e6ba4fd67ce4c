//! JPEG-LS lossless (ITU-T T.87 | ISO/IEC 14495-1) for one grey-scale
//! component of 2 to 16 bits: an encoder with the default coding
//! parameters (no LSE marker needed), and a decoder that also takes preset
//! parameters (LSE type 1) as other encoders write them.
//!
//! The encoder exists so that a CT crosses a slow link in a third of its
//! bytes (DICOM PS3.5 A.4.3, transfer syntax 1.2.840.10008.1.2.4.80); the
//! decoder so that the viewer renders what modalities and PACS send in
//! JPEG-LS. The Rust bindings of CharLS build it with CMake, which a fresh
//! machine lacks, and the pure-Rust codec crates bring a second DICOM
//! toolkit with them: the lossless path of the standard is short enough to
//! hold here. The encoder's output is checked bit for bit against DCMTK's
//! decoder (`dcmdjpls`), the decoder against a CharLS-encoded sample and
//! its uncompressed original.
//!
//! This module holds the model both share: parameters, the context
//! statistics and their updates (T.87 A.2–A.7). Near-lossless coding
//! (NEAR > 0) and several components are not handled.

mod decode;
mod encode;

pub use decode::{DecodeError, decode};
pub use encode::{JpegLsError, encode};

/// T.87 A.2.1 / A.7.1: the run-length order of each run index.
const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];
const DEFAULT_RESET: i32 = 64;
/// BASIC_T1..T3 (C.2.4.1.1.1), the thresholds for 8-bit samples.
const BASIC_T1: i32 = 3;
const BASIC_T2: i32 = 7;
const BASIC_T3: i32 = 21;
/// Regular contexts 0..365, then the two run-interruption contexts.
const CONTEXTS: usize = 367;
const RUN_CONTEXT: usize = 365;
const MIN_C: i32 = -128;
const MAX_C: i32 = 127;

/// The coding parameters (T.87 A.2.1, C.2.4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parameters {
    maxval: i32,
    range: i32,
    qbpp: u32,
    limit: u32,
    t1: i32,
    t2: i32,
    t3: i32,
    reset: i32,
}

impl Parameters {
    /// The defaults for `bits` per sample.
    fn lossless(bits: u8) -> Parameters {
        Parameters::with_maxval((1i32 << bits) - 1)
    }

    /// The defaults for samples up to `maxval` (C.2.4.1.1.1, NEAR = 0).
    fn with_maxval(maxval: i32) -> Parameters {
        let range = maxval + 1;
        let qbpp = ceil_log2(range);
        let bpp = qbpp.max(2);
        // CLAMP(i, j) is j when i is outside [j, MAXVAL].
        let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
        let (t1, t2, t3) = if maxval >= 128 {
            let factor = (maxval.min(4095) + 128) / 256;
            let t1 = clamp(factor * (BASIC_T1 - 2) + 2, 1);
            let t2 = clamp(factor * (BASIC_T2 - 3) + 3, t1);
            let t3 = clamp(factor * (BASIC_T3 - 4) + 4, t2);
            (t1, t2, t3)
        } else {
            let factor = 256 / (maxval + 1);
            let t1 = clamp((BASIC_T1 / factor).max(2), 1);
            let t2 = clamp((BASIC_T2 / factor).max(3), t1);
            let t3 = clamp((BASIC_T3 / factor).max(4), t2);
            (t1, t2, t3)
        };
        Parameters {
            maxval,
            range,
            qbpp,
            limit: 2 * (bpp + bpp.max(8)),
            t1,
            t2,
            t3,
            reset: DEFAULT_RESET,
        }
    }

    fn quantize(&self, d: i32) -> i32 {
        match d {
            d if d <= -self.t3 => -4,
            d if d <= -self.t2 => -3,
            d if d <= -self.t1 => -2,
            d if d < 0 => -1,
            0 => 0,
            d if d < self.t1 => 1,
            d if d < self.t2 => 2,
            d if d < self.t3 => 3,
            _ => 4,
        }
    }

    /// A.4.5: the error reduced modulo RANGE into [-RANGE/2, RANGE/2).
    fn reduce(&self, mut error: i32) -> i32 {
        if error < 0 {
            error += self.range;
        }
        if error >= (self.range + 1) / 2 {
            error -= self.range;
        }
        error
    }

    /// The sample a prediction and an error give back, modulo RANGE.
    fn reconstruct(&self, predicted: i32, error: i32) -> i32 {
        let mut value = predicted + error;
        if value < 0 {
            value += self.range;
        } else if value > self.maxval {
            value -= self.range;
        }
        value.clamp(0, self.maxval)
    }

    /// The context of a sample in regular mode and the sign that folds it
    /// (A.3.4): a context index 1..=364 and +1 or -1.
    fn context(&self, (d1, d2, d3): (i32, i32, i32)) -> (i32, usize) {
        let q = (self.quantize(d1) * 9 + self.quantize(d2)) * 9 + self.quantize(d3);
        if q < 0 {
            (-1, (-q) as usize)
        } else {
            (1, q as usize)
        }
    }
}

/// ceil(log2(n)) for n >= 1.
fn ceil_log2(n: i32) -> u32 {
    let mut bits = 0;
    while (1i64 << bits) < i64::from(n) {
        bits += 1;
    }
    bits
}

/// A.4.1: the median edge detector.
fn predict(ra: i32, rb: i32, rc: i32) -> i32 {
    if rc >= ra.max(rb) {
        ra.min(rb)
    } else if rc <= ra.min(rb) {
        ra.max(rb)
    } else {
        ra + rb - rc
    }
}

/// The adaptive state of the coder (T.87 A.2.2).
struct Contexts {
    a: [i32; CONTEXTS],
    b: [i32; CONTEXTS],
    c: [i32; CONTEXTS],
    n: [i32; CONTEXTS],
    nn: [i32; 2],
    run_index: usize,
}

impl Contexts {
    fn new(p: &Parameters) -> Contexts {
        Contexts {
            a: [((p.range + 32) / 64).max(2); CONTEXTS],
            b: [0; CONTEXTS],
            c: [0; CONTEXTS],
            n: [1; CONTEXTS],
            nn: [0; 2],
            run_index: 0,
        }
    }

    /// The prediction corrected by the context's bias (A.4.2).
    fn corrected(&self, p: &Parameters, q: usize, sign: i32, predicted: i32) -> i32 {
        (predicted + sign * self.c[q]).clamp(0, p.maxval)
    }

    /// The Golomb parameter of a regular context (A.5.1).
    fn k(&self, q: usize) -> u32 {
        let mut k = 0;
        while (self.n[q] << k) < self.a[q] {
            k += 1;
        }
        k
    }

    /// Whether the error mapping is inverted (A.5.2: k = 0 and a negative
    /// bias).
    fn inverted_mapping(&self, q: usize, k: u32) -> bool {
        k == 0 && 2 * self.b[q] <= -self.n[q]
    }

    /// A.6: the context's statistics after a regular-mode error.
    fn update(&mut self, p: &Parameters, q: usize, error: i32) {
        self.b[q] += error;
        self.a[q] += error.abs();
        if self.n[q] == p.reset {
            self.a[q] >>= 1;
            self.b[q] = if self.b[q] >= 0 {
                self.b[q] >> 1
            } else {
                -((1 - self.b[q]) >> 1)
            };
            self.n[q] >>= 1;
        }
        self.n[q] += 1;
        if self.b[q] <= -self.n[q] {
            self.b[q] += self.n[q];
            if self.c[q] > MIN_C {
                self.c[q] -= 1;
            }
            if self.b[q] <= -self.n[q] {
                self.b[q] = -self.n[q] + 1;
            }
        } else if self.b[q] > 0 {
            self.b[q] -= self.n[q];
            if self.c[q] < MAX_C {
                self.c[q] += 1;
            }
            if self.b[q] > 0 {
                self.b[q] = 0;
            }
        }
    }

    /// The run length one `1` bit stands for at the current run index.
    fn run_chunk(&self) -> u32 {
        1 << J[self.run_index]
    }

    fn run_grew(&mut self) {
        if self.run_index < 31 {
            self.run_index += 1;
        }
    }

    fn run_interrupted(&mut self) {
        if self.run_index > 0 {
            self.run_index -= 1;
        }
    }

    /// The Golomb parameter of a run-interruption context (A.7.2.1).
    fn interruption_k(&self, ri_type: i32) -> u32 {
        let q = RUN_CONTEXT + ri_type as usize;
        let temp = if ri_type == 0 {
            self.a[q]
        } else {
            self.a[q] + (self.n[q] >> 1)
        };
        let mut k = 0;
        while (self.n[q] << k) < temp {
            k += 1;
        }
        k
    }

    /// Whether negative interruption errors map to the lower codes
    /// (A.7.2.1's `map` test, shared by both directions).
    fn interruption_favours_negative(&self, ri_type: i32, k: u32) -> bool {
        let q = RUN_CONTEXT + ri_type as usize;
        k != 0 || 2 * self.nn[ri_type as usize] >= self.n[q]
    }

    /// A.7.2.2: the interruption context after an error and its code.
    fn update_interruption(&mut self, p: &Parameters, ri_type: i32, error: i32, mapped: i32) {
        let q = RUN_CONTEXT + ri_type as usize;
        let nn = &mut self.nn[ri_type as usize];
        if error < 0 {
            *nn += 1;
        }
        self.a[q] += (mapped + 1 - ri_type) >> 1;
        if self.n[q] == p.reset {
            self.a[q] >>= 1;
            self.n[q] >>= 1;
            *nn >>= 1;
        }
        self.n[q] += 1;
    }
}

/// The escape of the limited-length Golomb code: this many zeros, then a
/// one, then the value less one in `qbpp` bits (A.5.3).
fn escape_zeros(p: &Parameters, limit: u32) -> u32 {
    limit - p.qbpp - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_thresholds_follow_the_standard() {
        let p = Parameters::lossless(8);
        assert_eq!((p.t1, p.t2, p.t3, p.limit), (3, 7, 21, 32));
        let p = Parameters::lossless(12);
        assert_eq!((p.t1, p.t2, p.t3, p.limit), (18, 67, 276, 48));
        let p = Parameters::lossless(16);
        assert_eq!((p.t1, p.t2, p.t3, p.limit), (18, 67, 276, 64));
    }

    #[test]
    fn frames_come_back_as_they_were_encoded() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            seed >> 16
        };
        for (bits, width, height) in [(16u8, 97u32, 61u32), (12, 64, 64), (8, 33, 7), (2, 5, 3)] {
            let max = (1u32 << bits) - 1;
            // Flat areas (runs), edges and noise, so that every mode is used.
            let samples: Vec<u16> = (0..width * height)
                .map(|i| {
                    let (x, y) = (i % width, i / width);
                    let base = if x < width / 3 { max / 4 } else { max / 2 + y };
                    let noise = if x > 2 * width / 3 { next() % 9 } else { 0 };
                    (base + noise).min(max) as u16
                })
                .collect();
            let coded = encode(&samples, width, height, bits).expect("encodes");
            let frame = decode(&coded).expect("decodes");
            assert_eq!(
                (frame.columns, frame.rows, frame.bits),
                (width, height, bits)
            );
            assert!(frame.samples == samples, "{bits} bits, {width}x{height}");
        }
    }
}
