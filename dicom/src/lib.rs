//! What telerad knows of the DICOM standard itself, held once, at the
//! bottom of the crate graph so that every crate can use it: for now the
//! syntax of UIDs (PS3.5 §9.1), which the configuration, the store, the SCP
//! and the test fixtures each checked their own way before.
//!
//! It is not a DICOM toolkit: reading, writing and transcoding data sets
//! are dicom-rs's job.

pub mod inspect;
pub mod part10;
pub mod sop_class;
pub mod transfer_syntax;
pub mod uid;
