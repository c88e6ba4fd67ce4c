//! Delivery of images to radiologists' workstations, and of storage
//! commitment reports to the requesters that take them on an association
//! of their own.
//!
//! The router queues a study's instances in the store's outbox
//! (`telerad_store::outbox`) when it assigns the study; this crate is the
//! sender that drains it by C-STORE with telerad's SCU, with retries and
//! crash recovery. It is kept apart so that deciding who reads a study
//! (`telerad-router`) does not depend on the DICOM network code. It is not
//! for receiving images nor for deciding where they go.

pub mod commitment;
pub mod forwarder;
