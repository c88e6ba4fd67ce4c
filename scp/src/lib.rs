//! The DICOM network side of telerad: associations, DIMSE commands, the
//! storage SCP (C-ECHO, C-STORE), the Modality Performed Procedure Step
//! SCP (N-CREATE, N-SET), the Storage Commitment Push Model SCP (N-ACTION,
//! N-EVENT-REPORT), the Study Root C-FIND SCP for workstations and sites,
//! the Study Root C-MOVE SCP for workstations, and telerad's own SCU.
//!
//! PDUs are encoded and decoded by `dicom-ul`; this crate owns what it does
//! not: association policy (which AE titles, from where, which SOP classes),
//! the DIMSE layer, streaming of data sets to the archive and the limits
//! (PDU size, timeouts, number of associations). It does not store or index
//! anything itself: that is `telerad-store`'s job.

pub mod association;
pub mod commitment;
pub mod dimse;
pub mod find;
pub mod mpps;
pub mod negotiation;
pub mod pdu_io;
pub mod release;
pub mod retrieve;
pub mod scu;
pub mod server;
pub mod socket;
pub mod stream;
pub mod tls;

pub use association::AssociationContext;
pub use negotiation::Policy;
pub use scu::{ClientAssociation, Destination, FileToSend, ScuError, StoreResponse};
pub use server::Scp;
