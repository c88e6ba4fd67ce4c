//! The router tests' harness: the shared async test helpers of
//! `telerad-fixtures`, and two telerad "processes" on one database
//! ([`nodes`]).

#![allow(dead_code)]

pub mod nodes;

// Each test binary compiles this module; not all of them use every name.
#[allow(unused_imports)]
pub use telerad_fixtures::database::{Backend, POSTGRES_URL_VAR, PgDatabase};
#[allow(unused_imports)]
pub use telerad_fixtures::harness::{dataset_bytes, runtime};

/// Stores a Part 10 file through `archive` as site A's instance: its data
/// set bytes through `Archive::begin` and `commit`, as the SCP does.
pub async fn store(
    archive: &telerad_store::Archive,
    path: &std::path::Path,
) -> Result<telerad_store::Stored, telerad_store::StoreError> {
    let file = telerad_scp::FileToSend::read(path).expect("a DICOM file");
    let mut pending = archive.begin(telerad_store::InstanceHeader {
        sop_class_uid: file.sop_class_uid.clone(),
        sop_instance_uid: file.sop_instance_uid.clone(),
        transfer_syntax_uid: file.transfer_syntax_uid.clone(),
        calling_ae_title: "SITE_A".into(),
    })?;
    pending.write(&dataset_bytes(path));
    archive.commit(pending, "site-a").await
}
