//! Reading and writing whole PDUs on a socket (DICOM PS3.8 §9.3).
//!
//! The 6-byte PDU header is checked before any body is read, so an oversized
//! or unknown PDU costs no memory. Negotiation PDUs are decoded by `dicom-ul`;
//! P-DATA-TF, which carries the images, is split into its PDV items here,
//! as ranges of the read buffer: `dicom-ul` would copy each 128 kB PDU twice
//! before the data reaches the file.

use crate::socket::rearm_quickack;
use crate::stream::DicomStream;
use dicom_ul::pdu::{Pdu, read_pdu, write_pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// PDUs other than P-DATA (association negotiation) are bounded by this.
const MAX_CONTROL_PDU: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("connection closed by the peer")]
    Closed,
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("unrecognised PDU type 0x{0:02X}")]
    UnknownType(u8),
    #[error("PDU of {length} bytes exceeds the limit of {limit}")]
    TooLarge { length: u32, limit: u32 },
    #[error("malformed PDU: {0}")]
    Malformed(String),
}

/// P-DATA-TF's PDU type (PS3.8 §9.3.5).
pub const P_DATA_TF: u8 = 0x04;

/// One presentation data value of a P-DATA-TF, its data at `data` in the
/// buffer the PDU was read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    pub context_id: u8,
    pub is_command: bool,
    pub is_last: bool,
    pub data: std::ops::Range<usize>,
}

/// Reads one PDU. `max_pdata` is the maximum length we announced for P-DATA.
pub async fn read<S: DicomStream + ?Sized>(
    stream: &mut S,
    max_pdata: u32,
    buf: &mut Vec<u8>,
) -> Result<Pdu, PduError> {
    read_raw(stream, max_pdata, buf).await?;
    decode(buf)
}

/// Reads one PDU into `buf`, its header included, and returns its type.
pub async fn read_raw<S: DicomStream + ?Sized>(
    stream: &mut S,
    max_pdata: u32,
    buf: &mut Vec<u8>,
) -> Result<u8, PduError> {
    read_raw_from(stream, max_pdata, buf, None).await
}

/// [`read_raw`] when the PDU's first byte was already read (`first`): a
/// wait that must stay cancel-safe reads one byte, then the rest here.
pub async fn read_raw_from<S: DicomStream + ?Sized>(
    stream: &mut S,
    max_pdata: u32,
    buf: &mut Vec<u8>,
    first: Option<u8>,
) -> Result<u8, PduError> {
    let mut header = [0u8; 6];
    let from = match first {
        Some(byte) => {
            header[0] = byte;
            1
        }
        None => 0,
    };
    match stream.read_exact(&mut header[from..]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(PduError::Closed),
        Err(e) => return Err(e.into()),
    }
    let (pdu_type, length) = check_header(&header, max_pdata)?;
    // Read into the buffer's spare capacity, which is not zeroed first: a
    // `resize` would write 128 kB of zeros per P-DATA before the socket
    // overwrites them.
    let total = 6 + length as usize;
    buf.clear();
    buf.reserve(total);
    buf.extend_from_slice(&header);
    while buf.len() < total {
        let wanted = (total - buf.len()) as u64;
        if (&mut *stream).take(wanted).read_buf(buf).await? == 0 {
            return Err(PduError::Malformed(format!(
                "PDU truncated: {length} bytes announced"
            )));
        }
    }
    rearm_quickack(stream.tcp());
    Ok(pdu_type)
}

/// The type and length of the PDU a 6-byte header announces (PS3.8 §9.3.1),
/// refused before its body is read if the type is unknown or the length
/// over our limit: `max_pdata` for P-DATA-TF, 1 MiB for the others.
pub fn check_header(header: &[u8; 6], max_pdata: u32) -> Result<(u8, u32), PduError> {
    let pdu_type = header[0];
    let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    let limit = match pdu_type {
        P_DATA_TF => max_pdata,
        0x01..=0x07 => MAX_CONTROL_PDU,
        other => return Err(PduError::UnknownType(other)),
    };
    if length > limit {
        return Err(PduError::TooLarge { length, limit });
    }
    Ok((pdu_type, length))
}

/// Decodes a PDU read by [`read_raw`].
pub fn decode(buf: &[u8]) -> Result<Pdu, PduError> {
    // The length was checked on reading against our own limit; dicom-ul's
    // check would use its own bounds, so it is not repeated (strict = false).
    match read_pdu(buf, dicom_ul::pdu::MAXIMUM_PDU_SIZE, false) {
        Ok(Some(pdu)) => Ok(pdu),
        Ok(None) => Err(PduError::Malformed("incomplete PDU".into())),
        Err(e) => Err(PduError::Malformed(e.to_string())),
    }
}

/// Splits a P-DATA-TF read by [`read_raw`] into its PDV items (PS3.8
/// §9.3.5 and Annex E.2): each a 4-byte item length, the presentation
/// context id, a message control header (bit 0: command, bit 1: last
/// fragment), then the fragment.
pub fn pdata_values(buf: &[u8]) -> Result<Vec<Pdv>, PduError> {
    let malformed = |why: String| PduError::Malformed(format!("P-DATA-TF: {why}"));
    if buf.first() != Some(&P_DATA_TF) || buf.len() < 6 {
        return Err(malformed("not a P-DATA-TF PDU".into()));
    }
    let mut values = Vec::with_capacity(1);
    let mut at = 6;
    while at < buf.len() {
        let Some(header) = buf.get(at..at + 6) else {
            return Err(malformed(format!(
                "{} bytes left, too few for a PDV item header",
                buf.len() - at
            )));
        };
        let item_length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let item_length = usize::try_from(item_length).unwrap_or(usize::MAX);
        if item_length < 2 {
            return Err(malformed(format!("PDV item length {item_length} < 2")));
        }
        let start = at + 6;
        let end = at.saturating_add(4).saturating_add(item_length);
        if end > buf.len() {
            return Err(malformed(format!(
                "PDV item of {item_length} bytes overruns the PDU"
            )));
        }
        values.push(Pdv {
            context_id: header[4],
            is_command: header[5] & 0x01 != 0,
            is_last: header[5] & 0x02 != 0,
            data: start..end,
        });
        at = end;
    }
    Ok(values)
}

/// Writes one P-DATA-TF of a single PDV: the data is copied once, into `buf`
/// behind the headers, where `dicom-ul` would copy it twice.
pub async fn write_pdata<S: DicomStream + ?Sized>(
    stream: &mut S,
    context_id: u8,
    is_command: bool,
    is_last: bool,
    data: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), PduError> {
    let too_large = || PduError::Malformed(format!("PDV of {} bytes", data.len()));
    let item_length = u32::try_from(data.len() + 2).map_err(|_| too_large())?;
    let pdu_length = item_length.checked_add(4).ok_or_else(too_large)?;
    let control = u8::from(is_command) | (u8::from(is_last) << 1);
    buf.clear();
    buf.extend_from_slice(&[P_DATA_TF, 0]);
    buf.extend_from_slice(&pdu_length.to_be_bytes());
    buf.extend_from_slice(&item_length.to_be_bytes());
    buf.extend_from_slice(&[context_id, control]);
    buf.extend_from_slice(data);
    stream.write_all(buf).await?;
    // TLS holds records back until flushed; TCP's flush does nothing.
    stream.flush().await?;
    Ok(())
}

pub async fn write<S: DicomStream + ?Sized>(
    stream: &mut S,
    pdu: &Pdu,
    buf: &mut Vec<u8>,
) -> Result<(), PduError> {
    buf.clear();
    write_pdu(buf, pdu).map_err(|e| PduError::Malformed(e.to_string()))?;
    stream.write_all(buf).await?;
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::{PDataValue, PDataValueType, write_pdu};

    fn encoded(values: Vec<PDataValue>) -> Vec<u8> {
        let mut buf = Vec::new();
        write_pdu(&mut buf, &Pdu::PData { data: values }).expect("encode");
        buf
    }

    #[test]
    fn pdv_items_match_dicom_ul_decoding() {
        let values = vec![
            PDataValue {
                presentation_context_id: 1,
                value_type: PDataValueType::Command,
                is_last: true,
                data: vec![1, 2, 3],
            },
            PDataValue {
                presentation_context_id: 3,
                value_type: PDataValueType::Data,
                is_last: false,
                data: vec![9; 1000],
            },
            PDataValue {
                presentation_context_id: 3,
                value_type: PDataValueType::Data,
                is_last: true,
                data: Vec::new(),
            },
        ];
        let buf = encoded(values.clone());
        let parsed = pdata_values(&buf).expect("parse");
        assert_eq!(parsed.len(), values.len());
        for (pdv, value) in parsed.iter().zip(&values) {
            assert_eq!(pdv.context_id, value.presentation_context_id);
            assert_eq!(pdv.is_command, value.value_type == PDataValueType::Command);
            assert_eq!(pdv.is_last, value.is_last);
            assert_eq!(&buf[pdv.data.clone()], &value.data[..]);
        }
    }

    #[test]
    fn broken_items_are_refused() {
        let good = encoded(vec![PDataValue {
            presentation_context_id: 1,
            value_type: PDataValueType::Data,
            is_last: true,
            data: vec![7; 10],
        }]);
        // Item length 1: no room for its own context id and header.
        let mut short_item = good.clone();
        short_item[6..10].copy_from_slice(&1u32.to_be_bytes());
        // Item length past the end of the PDU.
        let mut overrun = good.clone();
        overrun[6..10].copy_from_slice(&100u32.to_be_bytes());
        // A trailing fragment of an item header.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        for (name, buf) in [
            ("short item", short_item),
            ("overrun", overrun),
            ("trailing", trailing),
        ] {
            assert!(
                matches!(pdata_values(&buf), Err(PduError::Malformed(_))),
                "{name} accepted"
            );
        }
        assert!(pdata_values(&good).is_ok());
    }

    /// An A-ASSOCIATE-RQ (PS3.8 §9.3.2) whose last variable item is
    /// `user_information`, framed with a correct PDU length.
    fn association_rq(user_information: &[u8]) -> Vec<u8> {
        let mut body = vec![0, 1, 0, 0];
        body.extend_from_slice(b"TELERAD         SITE_A          ");
        body.extend_from_slice(&[0; 32]);
        let context = b"1.2.840.10008.3.1.1.1";
        body.extend_from_slice(&[0x10, 0]);
        body.extend_from_slice(&(context.len() as u16).to_be_bytes());
        body.extend_from_slice(context);
        body.extend_from_slice(user_information);
        let mut pdu = vec![0x01, 0];
        pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
        pdu.extend_from_slice(&body);
        pdu
    }

    #[test]
    fn negotiation_items_claiming_more_than_the_pdu_holds_are_refused() {
        // dicom-ul's item lengths are 16-bit and checked against the bytes
        // left before anything is copied: these cost at most the PDU, which
        // `read_raw` bounded to MAX_CONTROL_PDU.
        let cases: Vec<(&str, Vec<u8>)> = vec![
            // User Information item claiming 64 kB, with 8 bytes present.
            ("user information", vec![0x50, 0, 0xFF, 0xFF, 0x51, 0, 0, 4]),
            // Its Implementation Class UID sub-item claiming 64 kB.
            (
                "sub-item",
                vec![0x50, 0, 0, 8, 0x52, 0, 0xFF, 0xFF, b'1', b'.', b'2', b'3'],
            ),
            // A SOP Class Extended Negotiation sub-item whose UID length
            // is longer than the sub-item.
            (
                "extended negotiation",
                vec![0x50, 0, 0, 10, 0x56, 0, 0, 1, 0, 4, b'1', b'.', b'2', b'3'],
            ),
            // A Maximum Length sub-item cut short.
            ("maximum length", vec![0x50, 0, 0, 6, 0x51, 0, 0, 4, 0, 0]),
        ];
        for (name, user_information) in cases {
            let pdu = association_rq(&user_information);
            let decoded = decode(&pdu);
            assert!(
                matches!(decoded, Err(PduError::Malformed(_))),
                "{name}: {decoded:?}"
            );
        }
        // The PDU length itself saying more than was read.
        let mut short = association_rq(&[0x50, 0, 0, 0]);
        short[2..6].copy_from_slice(&(1u32 << 20).to_be_bytes());
        assert!(matches!(decode(&short), Err(PduError::Malformed(_))));
    }
}
