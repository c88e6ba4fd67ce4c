//! The encoder: samples in, a JPEG-LS stream (SOI to EOI) out.

use super::{Contexts, J, Parameters, escape_zeros, predict};

/// Why a frame cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JpegLsError {
    #[error("JPEG-LS takes 2 to 16 bits per sample, not {0}")]
    Precision(u8),
    #[error("a {columns}x{rows} frame cannot be encoded (each side must be 1 to 65535)")]
    Size { columns: u32, rows: u32 },
    #[error("{samples} samples for a {columns}x{rows} frame")]
    SampleCount {
        samples: usize,
        columns: u32,
        rows: u32,
    },
    #[error("sample {value} at index {index} does not fit in {bits} bits")]
    SampleRange { index: usize, value: u16, bits: u8 },
}

/// Bits into bytes, with a zero bit stuffed after every 0xFF byte so that
/// no marker appears in the scan (T.87 A.1).
struct BitWriter {
    out: Vec<u8>,
    /// Bits not yet written, left-aligned in the low `count` bits.
    pending: u64,
    count: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1 << bits) - 1
        };
        self.pending = (self.pending << bits) | u64::from(value & mask);
        self.count += bits;
        self.drain();
    }

    fn zeros(&mut self, mut bits: u32) {
        while bits > 0 {
            let now = bits.min(32);
            self.put(0, now);
            bits -= now;
        }
    }

    /// Writes whole bytes while enough bits are pending: 8 per byte, 7
    /// after a 0xFF (its top bit is the stuffed zero).
    fn drain(&mut self) {
        loop {
            let width = if self.out.last() == Some(&0xFF) { 7 } else { 8 };
            if self.count < width {
                return;
            }
            let byte = (self.pending >> (self.count - width)) as u8 & ((1u16 << width) - 1) as u8;
            self.count -= width;
            self.pending &= (1u64 << self.count) - 1;
            self.out.push(byte);
        }
    }

    /// Pads the last byte with zeros; a trailing 0xFF gets its stuffed
    /// zero byte so that the marker after the scan reads as one.
    fn finish(mut self) -> Vec<u8> {
        let width = if self.out.last() == Some(&0xFF) { 7 } else { 8 };
        if self.count > 0 {
            let fill = width - self.count;
            self.put(0, fill);
        }
        if self.out.last() == Some(&0xFF) {
            self.out.push(0);
        }
        self.out
    }
}

/// Encodes one frame of `columns` x `rows` samples, each of `bits` bits
/// (the values must fit: a caller with signed data passes the bit
/// patterns masked to `bits`). Returns a complete JPEG-LS stream, SOI to
/// EOI, as one DICOM fragment holds it.
pub fn encode(samples: &[u16], columns: u32, rows: u32, bits: u8) -> Result<Vec<u8>, JpegLsError> {
    if !(2..=16).contains(&bits) {
        return Err(JpegLsError::Precision(bits));
    }
    let (width, height) = match (u16::try_from(columns), u16::try_from(rows)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(JpegLsError::Size { columns, rows }),
    };
    let expected = usize::from(width) * usize::from(height);
    if samples.len() != expected {
        return Err(JpegLsError::SampleCount {
            samples: samples.len(),
            columns,
            rows,
        });
    }
    let too_wide = |v: &u16| bits < 16 && *v >> bits != 0;
    if let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| too_wide(v)) {
        return Err(JpegLsError::SampleRange { index, value, bits });
    }
    let p = Parameters::lossless(bits);
    let mut out = Vec::with_capacity(expected + 64);
    header(&mut out, width, height, bits);
    let mut writer = BitWriter {
        out,
        pending: 0,
        count: 0,
    };
    scan(&mut writer, &p, samples, usize::from(width));
    let mut out = writer.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// SOI, SOF55 (JPEG-LS frame), SOS with NEAR = 0 and no interleave.
fn header(out: &mut Vec<u8>, width: u16, height: u16, bits: u8) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    out.extend_from_slice(&[0xFF, 0xF7, 0x00, 0x0B, bits]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    // one component, id 1, sampling 1x1, no quantisation table
    out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    // SOS: one component (id 1, no mapping table), NEAR 0, ILV 0, no point
    // transform
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00]);
}

/// The scan, line by line (T.87 A.2–A.7). Each line buffer carries one
/// sample before the first column and one after the last: the edge
/// neighbours A.2.1 defines.
fn scan(w: &mut BitWriter, p: &Parameters, samples: &[u16], width: usize) {
    let mut ctx = Contexts::new(p);
    let mut previous = vec![0i32; width + 2];
    let mut current = vec![0i32; width + 2];
    for line in samples.chunks_exact(width) {
        for (slot, &s) in current[1..=width].iter_mut().zip(line) {
            *slot = i32::from(s);
        }
        previous[width + 1] = previous[width];
        current[0] = previous[1];
        encode_line(w, p, &mut ctx, &previous, &current, width);
        std::mem::swap(&mut previous, &mut current);
    }
}

fn encode_line(
    w: &mut BitWriter,
    p: &Parameters,
    ctx: &mut Contexts,
    prev: &[i32],
    cur: &[i32],
    width: usize,
) {
    // Sample x of the line is at index x + 1 of the buffers.
    let mut x = 1;
    while x <= width {
        let ra = cur[x - 1];
        let rb = prev[x];
        let rc = prev[x - 1];
        let rd = prev[x + 1];
        let (d1, d2, d3) = (rd - rb, rb - rc, rc - ra);
        if d1 == 0 && d2 == 0 && d3 == 0 {
            x = run_mode(w, p, ctx, prev, cur, x, width);
        } else {
            regular(w, p, ctx, cur[x], ra, rb, rc, (d1, d2, d3));
            x += 1;
        }
    }
}

/// The limited-length Golomb code LG(k, limit) of `value` (A.5.3).
fn golomb(w: &mut BitWriter, p: &Parameters, value: i32, k: u32, limit: u32) {
    let value = value as u32;
    let high = value >> k;
    let escape = escape_zeros(p, limit);
    if high < escape {
        w.zeros(high);
        w.put(1, 1);
        w.put(value, k);
    } else {
        w.zeros(escape);
        w.put(1, 1);
        w.put(value - 1, p.qbpp);
    }
}

#[allow(clippy::too_many_arguments)]
fn regular(
    w: &mut BitWriter,
    p: &Parameters,
    ctx: &mut Contexts,
    ix: i32,
    ra: i32,
    rb: i32,
    rc: i32,
    gradients: (i32, i32, i32),
) {
    let (sign, q) = p.context(gradients);
    let px = ctx.corrected(p, q, sign, predict(ra, rb, rc));
    let error = p.reduce(sign * (ix - px));
    let k = ctx.k(q);
    // A.5.2: the error mapped to a non-negative value.
    let mapped = if ctx.inverted_mapping(q, k) {
        if error >= 0 {
            2 * error + 1
        } else {
            -2 * (error + 1)
        }
    } else if error >= 0 {
        2 * error
    } else {
        -2 * error - 1
    };
    golomb(w, p, mapped, k, p.limit);
    ctx.update(p, q, error);
}

/// Run mode from sample `x` (A.7): the run of samples equal to the one on
/// their left, then the sample that interrupts it, if the line goes on.
/// Returns the index after the last sample coded.
fn run_mode(
    w: &mut BitWriter,
    p: &Parameters,
    ctx: &mut Contexts,
    prev: &[i32],
    cur: &[i32],
    start: usize,
    width: usize,
) -> usize {
    let run_value = cur[start - 1];
    let mut x = start;
    while x <= width && cur[x] == run_value {
        x += 1;
    }
    let mut run = (x - start) as u32;
    while run >= ctx.run_chunk() {
        w.put(1, 1);
        run -= ctx.run_chunk();
        ctx.run_grew();
    }
    if x > width {
        if run > 0 {
            w.put(1, 1);
        }
        return x;
    }
    w.put(0, 1);
    w.put(run, J[ctx.run_index]);
    interruption(w, p, ctx, cur[x], run_value, prev[x]);
    ctx.run_interrupted();
    x + 1
}

/// The sample that ends a run before the end of the line (A.7.2).
fn interruption(w: &mut BitWriter, p: &Parameters, ctx: &mut Contexts, ix: i32, ra: i32, rb: i32) {
    let ri_type = i32::from(ra == rb);
    let px = if ri_type == 1 { ra } else { rb };
    let mut error = ix - px;
    if ri_type == 0 && ra > rb {
        error = -error;
    }
    let error = p.reduce(error);
    let k = ctx.interruption_k(ri_type);
    let favours_negative = ctx.interruption_favours_negative(ri_type, k);
    let map =
        i32::from((k == 0 && error > 0 && !favours_negative) || (error < 0 && favours_negative));
    let mapped = 2 * error.abs() - ri_type - map;
    golomb(w, p, mapped, k, p.limit - J[ctx.run_index] - 1);
    ctx.update_interruption(p, ri_type, error, mapped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_frame_is_a_few_bytes_and_noise_is_not_expanded() {
        let flat = encode(&[1024; 512 * 512], 512, 512, 16).expect("encodes");
        assert!(flat.len() < 1024, "{} bytes", flat.len());
        assert_eq!(&flat[..2], &[0xFF, 0xD8]);
        assert_eq!(&flat[flat.len() - 2..], &[0xFF, 0xD9]);
        let mut seed = 1u32;
        let noisy: Vec<u16> = (0..256 * 256)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                1000 + ((seed >> 16) % 16) as u16
            })
            .collect();
        let coded = encode(&noisy, 256, 256, 16).expect("encodes");
        // 4 bits of noise per sample: well under the 16 bits stored.
        assert!(coded.len() < 256 * 256 * 6 / 8, "{} bytes", coded.len());
    }

    #[test]
    fn no_marker_appears_inside_the_scan() {
        let samples: Vec<u16> = (0..64 * 64).map(|i| ((i * 7919) % 65536) as u16).collect();
        let coded = encode(&samples, 64, 64, 16).expect("encodes");
        let scan = &coded[25..coded.len() - 2];
        for pair in scan.windows(2) {
            assert!(
                !(pair[0] == 0xFF && pair[1] & 0x80 != 0),
                "marker-like pair {pair:02X?} in the scan"
            );
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        assert_eq!(encode(&[0; 4], 2, 2, 1), Err(JpegLsError::Precision(1)));
        assert_eq!(
            encode(&[0; 3], 2, 2, 8),
            Err(JpegLsError::SampleCount {
                samples: 3,
                columns: 2,
                rows: 2
            })
        );
        assert_eq!(
            encode(&[0, 300, 0, 0], 2, 2, 8),
            Err(JpegLsError::SampleRange {
                index: 1,
                value: 300,
                bits: 8
            })
        );
        assert!(matches!(
            encode(&[], 0, 2, 8),
            Err(JpegLsError::Size { .. })
        ));
    }
}
