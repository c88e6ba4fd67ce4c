//! Reading and writing whole PDUs on a socket (DICOM PS3.8 §9.3).
//!
//! The 6-byte PDU header is checked before any body is read, so an oversized
//! or unknown PDU costs no memory; the body is then decoded by `dicom-ul`.

use crate::socket::rearm_quickack;
use dicom_ul::pdu::{Pdu, read_pdu, write_pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Reads one PDU. `max_pdata` is the maximum length we announced for P-DATA.
pub async fn read(
    stream: &mut TcpStream,
    max_pdata: u32,
    buf: &mut Vec<u8>,
) -> Result<Pdu, PduError> {
    let mut header = [0u8; 6];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(PduError::Closed),
        Err(e) => return Err(e.into()),
    }
    let pdu_type = header[0];
    let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    let limit = match pdu_type {
        0x04 => max_pdata,
        0x01..=0x07 => MAX_CONTROL_PDU,
        other => return Err(PduError::UnknownType(other)),
    };
    if length > limit {
        return Err(PduError::TooLarge { length, limit });
    }
    buf.clear();
    buf.extend_from_slice(&header);
    buf.resize(6 + length as usize, 0);
    stream.read_exact(&mut buf[6..]).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            PduError::Malformed(format!("PDU truncated: {length} bytes announced"))
        } else {
            PduError::Io(e)
        }
    })?;
    rearm_quickack(stream);
    // The length was checked above against our own limit; dicom-ul's check
    // would use its own bounds, so it is not repeated (strict = false).
    match read_pdu(&buf[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false) {
        Ok(Some(pdu)) => Ok(pdu),
        Ok(None) => Err(PduError::Malformed("incomplete PDU".into())),
        Err(e) => Err(PduError::Malformed(e.to_string())),
    }
}

pub async fn write(stream: &mut TcpStream, pdu: &Pdu, buf: &mut Vec<u8>) -> Result<(), PduError> {
    buf.clear();
    write_pdu(buf, pdu).map_err(|e| PduError::Malformed(e.to_string()))?;
    stream.write_all(buf).await?;
    Ok(())
}
