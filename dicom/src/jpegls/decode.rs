//! The decoder: a JPEG-LS stream in, samples out. Every length and count
//! read from the stream is checked before it is used: a hostile stream
//! gives an error, never a panic; memory grows with the lines actually
//! decoded, up to the frame its header declares ([`MAX_SAMPLES`] at most).

use super::{Contexts, J, Parameters, escape_zeros, predict};

/// Why a stream cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a JPEG-LS stream: {0}")]
    Format(String),
    #[error("{0} is not decoded (only lossless, one component)")]
    Unsupported(String),
    #[error("the scan ends early or is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("a {columns}x{rows} frame is larger than the {limit} samples allowed")]
    TooLarge {
        columns: u32,
        rows: u32,
        limit: usize,
    },
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub columns: u32,
    pub rows: u32,
    /// Bits per sample (the frame header's P).
    pub bits: u8,
    /// Row by row.
    pub samples: Vec<u16>,
}

/// No frame is larger than this many samples (a 16k x 16k image): a
/// header cannot make the decoder allocate more.
pub const MAX_SAMPLES: usize = 1 << 28;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;
const SOS: u8 = 0xDA;

/// Decodes one JPEG-LS stream (one DICOM frame).
pub fn decode(stream: &[u8]) -> Result<Frame, DecodeError> {
    let mut at = match stream {
        [0xFF, SOI, ..] => 2,
        _ => return Err(DecodeError::Format("no SOI marker".into())),
    };
    let mut frame = None;
    let mut preset = None;
    loop {
        let (marker, segment, next) = segment(stream, at)?;
        at = next;
        match marker {
            SOF55 => frame = Some(frame_header(segment)?),
            LSE => preset = Some(preset_parameters(segment)?),
            SOS => {
                let (bits, columns, rows) = frame
                    .ok_or_else(|| DecodeError::Format("scan before the frame header".into()))?;
                scan_header(segment)?;
                let p = parameters(bits, preset)?;
                let samples = scan(&stream[at..], &p, columns as usize, rows as usize)?;
                return Ok(Frame {
                    columns,
                    rows,
                    bits,
                    samples,
                });
            }
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                return Err(DecodeError::Unsupported(format!(
                    "JPEG frame type {marker:02X}"
                )));
            }
            EOI => return Err(DecodeError::Format("no scan".into())),
            // APPn, COM and the like: skipped.
            _ => {}
        }
    }
}

/// The marker at `at`, its segment (after the length) and where the next
/// marker starts.
fn segment(stream: &[u8], at: usize) -> Result<(u8, &[u8], usize), DecodeError> {
    let mut at = at;
    // Fill bytes (0xFF) may precede a marker.
    while stream.get(at) == Some(&0xFF) && stream.get(at + 1) == Some(&0xFF) {
        at += 1;
    }
    let marker = match stream.get(at..at + 2) {
        Some([0xFF, m]) => *m,
        _ => return Err(DecodeError::Format(format!("no marker at byte {at}"))),
    };
    if marker == EOI {
        return Ok((marker, &[], at + 2));
    }
    let length = match stream.get(at + 2..at + 4) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(DecodeError::Format("a segment without its length".into())),
    };
    let body = stream
        .get(at + 4..at + 2 + length.max(2))
        .ok_or_else(|| DecodeError::Format(format!("segment {marker:02X} runs past the end")))?;
    Ok((marker, body, at + 2 + length.max(2)))
}

fn frame_header(segment: &[u8]) -> Result<(u8, u32, u32), DecodeError> {
    let (bits, rows, columns, components) = match segment {
        [p, y0, y1, x0, x1, nf, ..] => (
            *p,
            u32::from(u16::from_be_bytes([*y0, *y1])),
            u32::from(u16::from_be_bytes([*x0, *x1])),
            *nf,
        ),
        _ => return Err(DecodeError::Format("short frame header".into())),
    };
    if components != 1 {
        return Err(DecodeError::Unsupported(format!("{components} components")));
    }
    if !(2..=16).contains(&bits) {
        return Err(DecodeError::Format(format!("{bits} bits per sample")));
    }
    if rows == 0 || columns == 0 {
        return Err(DecodeError::Unsupported(
            "a frame whose height is given later (DNL)".into(),
        ));
    }
    let samples = rows as usize * columns as usize;
    if samples > MAX_SAMPLES {
        return Err(DecodeError::TooLarge {
            columns,
            rows,
            limit: MAX_SAMPLES,
        });
    }
    Ok((bits, columns, rows))
}

/// LSE type 1: MAXVAL, T1, T2, T3, RESET (C.2.4.1.1); zero means the
/// default.
fn preset_parameters(segment: &[u8]) -> Result<[u16; 5], DecodeError> {
    match segment {
        [1, rest @ ..] if rest.len() >= 10 => {
            let mut values = [0u16; 5];
            for (value, pair) in values.iter_mut().zip(rest.chunks_exact(2)) {
                *value = u16::from_be_bytes([pair[0], pair[1]]);
            }
            Ok(values)
        }
        [id, ..] => Err(DecodeError::Unsupported(format!(
            "LSE segment of type {id}"
        ))),
        [] => Err(DecodeError::Format("empty LSE segment".into())),
    }
}

fn scan_header(segment: &[u8]) -> Result<(), DecodeError> {
    match segment {
        [1, _id, _mapping, near, interleave, _transform, ..] => {
            if *near != 0 {
                return Err(DecodeError::Unsupported(format!(
                    "near-lossless coding (NEAR {near})"
                )));
            }
            if *interleave != 0 {
                return Err(DecodeError::Unsupported(format!(
                    "interleave mode {interleave}"
                )));
            }
            Ok(())
        }
        [n, ..] => Err(DecodeError::Unsupported(format!(
            "{n} components in a scan"
        ))),
        [] => Err(DecodeError::Format("empty scan header".into())),
    }
}

fn parameters(bits: u8, preset: Option<[u16; 5]>) -> Result<Parameters, DecodeError> {
    let Some([maxval, t1, t2, t3, reset]) = preset else {
        return Ok(Parameters::lossless(bits));
    };
    let full = (1i32 << bits) - 1;
    let maxval = if maxval == 0 { full } else { i32::from(maxval) };
    if maxval < 1 || maxval > full {
        return Err(DecodeError::Format(format!(
            "MAXVAL {maxval} for {bits}-bit samples"
        )));
    }
    let mut p = Parameters::with_maxval(maxval);
    let pick = |given: u16, default: i32| {
        if given == 0 {
            default
        } else {
            i32::from(given)
        }
    };
    p.t1 = pick(t1, p.t1);
    p.t2 = pick(t2, p.t2);
    p.t3 = pick(t3, p.t3);
    p.reset = pick(reset, p.reset);
    // RESET is kept small enough that the context sums fit in 32 bits
    // (the standard allows up to MAXVAL; encoders use 64).
    let ordered = 1 <= p.t1 && p.t1 <= p.t2 && p.t2 <= p.t3 && p.t3 <= maxval;
    if !ordered || !(3..=255).contains(&p.reset) {
        return Err(DecodeError::Format(
            "preset thresholds out of order or range".into(),
        ));
    }
    Ok(p)
}

/// Bits out of the scan, skipping the stuffed zero bit after each 0xFF;
/// a marker (0xFF then a byte with its top bit set) ends the data, and
/// reading past it is an error.
struct BitReader<'a> {
    data: &'a [u8],
    at: usize,
    bits: u64,
    count: u32,
}

impl BitReader<'_> {
    fn fill(&mut self) {
        while self.count <= 56 {
            let Some(&byte) = self.data.get(self.at) else {
                return;
            };
            let after_ff = self.at > 0 && self.data[self.at - 1] == 0xFF;
            if after_ff && byte & 0x80 != 0 {
                // A marker: the scan is over.
                return;
            }
            self.at += 1;
            if after_ff {
                self.bits = (self.bits << 7) | u64::from(byte & 0x7F);
                self.count += 7;
            } else {
                self.bits = (self.bits << 8) | u64::from(byte);
                self.count += 8;
            }
        }
    }

    fn read(&mut self, n: u32) -> Result<u32, DecodeError> {
        if n == 0 {
            return Ok(0);
        }
        if self.count < n {
            self.fill();
            if self.count < n {
                return Err(DecodeError::Corrupt("the data ended inside a code"));
            }
        }
        self.count -= n;
        let value = (self.bits >> self.count) & ((1u64 << n) - 1);
        self.bits &= (1u64 << self.count) - 1;
        Ok(value as u32)
    }

    fn bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read(1)? == 1)
    }

    /// The zeros before the next one, which is consumed; at most `limit`.
    fn zeros(&mut self, limit: u32) -> Result<u32, DecodeError> {
        let mut n = 0;
        while !self.bit()? {
            n += 1;
            if n > limit {
                return Err(DecodeError::Corrupt("a code longer than LIMIT"));
            }
        }
        Ok(n)
    }
}

/// LG(k, limit) read back (A.5.3).
fn golomb(r: &mut BitReader, p: &Parameters, k: u32, limit: u32) -> Result<i32, DecodeError> {
    let escape = escape_zeros(p, limit);
    let high = r.zeros(escape)?;
    let value = if high < escape {
        (high << k) | r.read(k)?
    } else {
        r.read(p.qbpp)? + 1
    };
    i32::try_from(value).map_err(|_| DecodeError::Corrupt("a code out of range"))
}

fn scan(data: &[u8], p: &Parameters, width: usize, height: usize) -> Result<Vec<u16>, DecodeError> {
    let mut r = BitReader {
        data,
        at: 0,
        bits: 0,
        count: 0,
    };
    let mut ctx = Contexts::new(p);
    let mut previous = vec![0i32; width + 2];
    let mut current = vec![0i32; width + 2];
    // Grown line by line: a corrupt stream that claims a large frame
    // fails before its memory is taken.
    let mut samples = Vec::with_capacity(width * height.min(64));
    for _ in 0..height {
        previous[width + 1] = previous[width];
        current[0] = previous[1];
        decode_line(&mut r, p, &mut ctx, &previous, &mut current, width)?;
        samples.extend(current[1..=width].iter().map(|&v| v as u16));
        std::mem::swap(&mut previous, &mut current);
    }
    Ok(samples)
}

fn decode_line(
    r: &mut BitReader,
    p: &Parameters,
    ctx: &mut Contexts,
    prev: &[i32],
    cur: &mut [i32],
    width: usize,
) -> Result<(), DecodeError> {
    let mut x = 1;
    while x <= width {
        let ra = cur[x - 1];
        let rb = prev[x];
        let rc = prev[x - 1];
        let rd = prev[x + 1];
        let gradients = (rd - rb, rb - rc, rc - ra);
        if gradients == (0, 0, 0) {
            x = run_mode(r, p, ctx, prev, cur, x, width)?;
        } else {
            let (sign, q) = p.context(gradients);
            let px = ctx.corrected(p, q, sign, predict(ra, rb, rc));
            let k = ctx.k(q);
            let mapped = golomb(r, p, k, p.limit)?;
            let error = if ctx.inverted_mapping(q, k) {
                if mapped % 2 == 1 {
                    (mapped - 1) / 2
                } else {
                    -(mapped / 2) - 1
                }
            } else if mapped % 2 == 0 {
                mapped / 2
            } else {
                -((mapped + 1) / 2)
            };
            if error.abs() > p.range {
                return Err(DecodeError::Corrupt("an error larger than the range"));
            }
            ctx.update(p, q, error);
            cur[x] = p.reconstruct(px, sign * error);
            x += 1;
        }
    }
    Ok(())
}

/// Run mode from sample `start` (A.7): returns the index after the last
/// sample decoded.
fn run_mode(
    r: &mut BitReader,
    p: &Parameters,
    ctx: &mut Contexts,
    prev: &[i32],
    cur: &mut [i32],
    start: usize,
    width: usize,
) -> Result<usize, DecodeError> {
    let run_value = cur[start - 1];
    let remaining = (width + 1 - start) as u32;
    let mut run = 0u32;
    let mut interrupted = true;
    while r.bit()? {
        let chunk = ctx.run_chunk();
        let count = chunk.min(remaining - run);
        run += count;
        if count == chunk {
            ctx.run_grew();
        }
        if run == remaining {
            interrupted = false;
            break;
        }
    }
    if interrupted {
        run += r.read(J[ctx.run_index])?;
        if run >= remaining {
            return Err(DecodeError::Corrupt("a run past the end of the line"));
        }
    }
    let end = start + run as usize;
    cur[start..end].fill(run_value);
    if !interrupted {
        return Ok(end);
    }
    let (ra, rb) = (run_value, prev[end]);
    let ri_type = i32::from(ra == rb);
    let k = ctx.interruption_k(ri_type);
    let mapped = golomb(r, p, k, p.limit - J[ctx.run_index] - 1)?;
    let t = mapped + ri_type;
    let map = t & 1;
    let magnitude = (t + map) / 2;
    let error = if ctx.interruption_favours_negative(ri_type, k) == (map == 1) {
        -magnitude
    } else {
        magnitude
    };
    ctx.update_interruption(p, ri_type, error, mapped);
    let (px, sign) = if ri_type == 1 {
        (ra, 1)
    } else if ra > rb {
        (rb, -1)
    } else {
        (rb, 1)
    };
    cur[end] = p.reconstruct(px, sign * error);
    ctx.run_interrupted();
    Ok(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_streams_are_refused_without_panic() {
        let good = super::super::encode(&[1, 2, 3, 4, 5, 6], 3, 2, 8).expect("encodes");
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        let mut huge = good.clone();
        // 65535 rows of 65535 columns: four billion samples.
        huge[7..11].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(decode(&huge), Err(DecodeError::TooLarge { .. })));
        assert!(decode(b"not jpeg").is_err());
        let mut flipped = good.clone();
        for i in 25..flipped.len() - 2 {
            flipped[i] ^= 0x55;
            let _ = decode(&flipped);
        }
    }
}
