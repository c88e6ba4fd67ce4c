//! Durable storage of received DICOM instances and the study index.
//!
//! This crate owns the storage folder (Part 10 files under
//! `studies/STUDY/SERIES/`) and the index database (SQLite or PostgreSQL):
//! sites, studies, series, instances and the study events the router
//! consumes. It knows nothing of the network: the SCP hands it data set
//! bytes and asks for a commit; HTTP crates query it.

pub mod accounts;
pub mod archive;
pub mod audit;
pub mod audit_spool;
pub mod board;
pub mod clock;
pub mod commitment;
pub mod commitment_reports;
pub mod completion;
pub mod consults;
pub mod critical;
pub mod db;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod flag;
pub mod forms;
pub mod ids;
pub mod index;
pub mod layout;
pub mod messages;
mod metadata_writer;
pub mod notices;
pub mod outbox;
pub mod performed_steps;
pub mod process_lock;
pub mod qido;
pub mod reports;
pub mod scope;
pub mod study_pages;
pub mod study_rows;
pub mod time;
pub mod timers;
pub mod turnaround;
pub mod worklist;
pub mod writeback;

pub use archive::{Archive, OpenError, PendingInstance, Stored};
pub use clock::{Clock, DatabaseClock, ManualClock, OffsetClock, SystemClock};
pub use db::{Backend, Database};
pub use error::{StoreError, StoreFailure};
pub use ids::{AssignmentId, CredentialId, EventId, ForwardJobId, StudyId, UserId};
pub use index::StudyIndex;
pub use scope::Scope;
pub use study_pages::{StudyCursor, StudyPage, StudyPageQuery};
/// What [`Archive::begin`] is given; its callers need not name the crate
/// it comes from.
pub use telerad_dicom::part10::InstanceHeader;
