//! The Study Root C-MOVE and C-GET SCP (DICOM PS3.4 C.4.2, C.4.3): a
//! radiologist's workstation asks for studies, series or images it found
//! with C-FIND. A C-GET receives them on its own association (for a
//! workstation that cannot accept connections); a C-MOVE has them sent to
//! its own storage SCP. The images of a C-MOVE go through the outbox,
//! as every delivery to a workstation does (retries, DICOM TLS, lossless
//! compression on the way, several associations, surviving a restart);
//! the C-MOVE reports the jobs' progress as its sub-operations.

use std::collections::BTreeMap;
use telerad_dicom::query::{Identifier, Level};
use telerad_store::StudyIndex;
use telerad_store::outbox::RetrievalProgress;
use telerad_store::qido::{InstanceHit, InstanceSearch};
use telerad_store::scope::Scope;

/// Instances one C-MOVE may ask for at most (a few large studies).
pub const MAX_INSTANCES: i64 = 20_000;

/// The instances a C-MOVE names, by study, within the caller's scope.
pub type Wanted = BTreeMap<String, Vec<String>>;

/// The search a C-MOVE identifier names: the unique keys of its level
/// and those above it (PS3.4 C.4.2.2.1), never a match on other keys.
pub fn search_of(query: &Identifier) -> Result<InstanceSearch, String> {
    use dicom_dictionary_std::tags;
    let search = InstanceSearch {
        study_instance_uids: query.list(tags::STUDY_INSTANCE_UID),
        series_instance_uids: match query.level {
            Level::Study => Vec::new(),
            _ => query.list(tags::SERIES_INSTANCE_UID),
        },
        sop_instance_uids: match query.level {
            Level::Image => query.list(tags::SOP_INSTANCE_UID),
            _ => Vec::new(),
        },
        limit: MAX_INSTANCES + 1,
        ..InstanceSearch::default()
    };
    let named = match query.level {
        Level::Study => &search.study_instance_uids,
        Level::Series => &search.series_instance_uids,
        Level::Image => &search.sop_instance_uids,
    };
    if named.is_empty() {
        return Err(format!(
            "a {} level C-MOVE names the {} it wants by their UIDs",
            query.level.as_str(),
            match query.level {
                Level::Study => "studies",
                Level::Series => "series",
                Level::Image => "images",
            }
        ));
    }
    Ok(search)
}

/// The instances `search` finds within `scope` (the newest version of
/// each), in study, series and instance order.
pub async fn instances(
    index: &StudyIndex,
    search: &InstanceSearch,
    scope: &Scope,
) -> Result<Vec<InstanceHit>, String> {
    let hits = index
        .search_instances(search, scope)
        .await
        .map_err(|e| e.to_string())?;
    if hits.len() as i64 > MAX_INSTANCES {
        return Err(format!(
            "more than {MAX_INSTANCES} images asked at once: ask for fewer studies"
        ));
    }
    Ok(hits)
}

/// [`instances`] by study: what a C-MOVE puts in the outbox.
pub fn by_study(hits: Vec<InstanceHit>) -> Wanted {
    let mut wanted = Wanted::new();
    for hit in hits {
        wanted
            .entry(hit.study_instance_uid)
            .or_default()
            .push(hit.sop_instance_uid);
    }
    wanted
}

/// The sub-operations' counts of a progress (PS3.7 §9.3.4.2 has them
/// as US: a C-MOVE is bounded far below).
pub fn sub_operations(progress: RetrievalProgress) -> crate::dimse::SubOperations {
    let count = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
    crate::dimse::SubOperations {
        remaining: count(progress.remaining),
        completed: count(progress.sent),
        failed: count(progress.failed),
        warning: 0,
    }
}
