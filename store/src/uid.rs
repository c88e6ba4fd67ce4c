//! DICOM UIDs that are safe to use as file and directory names.
//!
//! A UID from the network becomes part of a path under the storage root, so
//! anything but the syntax of DICOM PS3.5 §9.1 (digits and dots, at most 64
//! characters) is refused before it reaches the file system. The rules live
//! in `telerad_dicom::uid`; received UIDs may keep leading zeros in a
//! component (real modalities emit them, and they are harmless in a path).

pub use telerad_dicom::uid::{UidError, trim_uid, validate_uid};
