//! What `pdu_io` does with bytes from the network: the header check, then
//! the P-DATA-TF split into PDV items or dicom-ul's decoding of the other
//! PDUs, and the command set of each command PDV.

#![no_main]

use libfuzzer_sys::fuzz_target;
use telerad_scp::{dimse, pdu_io};

/// What telerad announces by default (`[dicom] max_pdu_length`).
const MAX_PDATA: u32 = 131_072;

fuzz_target!(|data: &[u8]| {
    let Some(header) = data.first_chunk::<6>() else {
        return;
    };
    let Ok((pdu_type, length)) = pdu_io::check_header(header, MAX_PDATA) else {
        return;
    };
    // `read_raw` hands on exactly the header and the announced body.
    let Some(pdu) = data.get(..6 + length as usize) else {
        return;
    };
    if pdu_type == pdu_io::P_DATA_TF {
        if let Ok(values) = pdu_io::pdata_values(pdu) {
            for value in values.iter().filter(|v| v.is_command) {
                let _ = dimse::decode(&pdu[value.data.clone()]);
            }
        }
    } else {
        let _ = pdu_io::decode(pdu);
    }
});
