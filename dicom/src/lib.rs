//! What telerad knows of the DICOM standard itself, held once, at the
//! bottom of the crate graph so that the SCP, the store, the forwarder and
//! the HTTP crates (later `viewer-api`) all use the same facts and the same
//! checks rather than each its own:
//!
//! - [`uid`]: the syntax of UIDs (PS3.5 §9.1), strict for what telerad
//!   writes, tolerant of what real modalities send;
//! - [`sop_class`] and [`transfer_syntax`]: the registry of what telerad
//!   stores, with the names PS3.6 gives them;
//! - [`part10`]: the Part 10 header written in front of a received data set
//!   (PS3.10 §7.1), and telerad's implementation identity;
//! - [`inspect`]: the walk of a received data set before it is
//!   acknowledged, which refuses malformed or hostile input within bounded
//!   memory and reads out what the index keeps;
//! - [`transcode`]: re-encoding an uncompressed data set in another
//!   uncompressed syntax, for a workstation that refuses the stored one;
//! - [`jpegls`]: a JPEG-LS lossless encoder and decoder; [`compress`]:
//!   JPEG-LS encoding of the pixel data of an uncompressed data set, for
//!   the way to a workstation behind a slow link;
//! - [`metadata`]: the DICOM JSON of a stored instance without its bulk
//!   data, built once per instance, for WADO-RS `metadata`;
//! - [`frames`]: the frames and bulk data of a stored instance as stored,
//!   for WADO-RS `frames` and `bulkdata`;
//! - [`mpps`]: Modality Performed Procedure Step data sets, read and
//!   merged, and the instances a step says it produced;
//! - [`commitment`]: Storage Commitment requests read and reports written.
//! - [`query`]: Query/Retrieve (C-FIND) identifiers read, and the
//!   identifier of each match written.
//!
//! Decoding and rendering for the viewer are `telerad-viewer-api`'s (with
//! dicom-pixeldata's codecs, and the JPEG-LS decoder held here).
//!
//! It is not a DICOM toolkit: encoding and parsing are dicom-rs's job, and
//! this crate only says how telerad uses it. Nor does it know of the
//! network, the configuration, files under the storage root or the
//! database: association negotiation is `telerad-scp`'s, storage
//! `telerad-store`'s. It depends on no telerad crate.

pub mod commitment;
pub mod compress;
pub mod frames;
pub mod inspect;
pub mod jpegls;
pub mod metadata;
pub mod mpps;
pub mod part10;
pub mod query;
pub mod sop_class;
pub mod transcode;
pub mod transfer_syntax;
pub mod uid;
