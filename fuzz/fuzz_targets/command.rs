//! DIMSE command sets as a peer may send them (PS3.7 §6.3.1, §E).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = telerad_scp::dimse::decode(data) {
        // What the SCP answers must encode whatever the request held.
        let _ = telerad_scp::dimse::response(&command, 0, Some(&command.error_comment));
    }
});
