//! The walk of a received data set before it is acknowledged. The first
//! byte picks the transfer syntax, the rest is the data set.

#![no_main]

use libfuzzer_sys::fuzz_target;

const TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2",      // implicit VR little endian
    "1.2.840.10008.1.2.1",    // explicit VR little endian
    "1.2.840.10008.1.2.2",    // explicit VR big endian
    "1.2.840.10008.1.2.1.99", // deflated explicit VR little endian
    "1.2.840.10008.1.2.4.50", // JPEG baseline: encapsulated pixel data
    "1.2.840.10008.1.2.5",    // RLE lossless: encapsulated pixel data
];

/// A limit on the inflated size far below the rss limit the fuzzer runs
/// with, so that only an allocation the limit fails to bound is a finding.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data_set)) = data.split_first() else {
        return;
    };
    let ts = TRANSFER_SYNTAXES[usize::from(selector) % TRANSFER_SYNTAXES.len()];
    let _ = telerad_dicom::inspect::inspect_bytes(data_set, ts, MAX_INFLATED);
});
