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

/// The identifier of a final C-MOVE or C-GET response whose
/// sub-operations did not all succeed: the Failed SOP Instance UID List
/// (0008,0058; PS3.4 C.4.2.1.4.1, C.4.3.1.3.1). A UI value holds at most
/// 64 KiB in explicit VR, so a longer list is cut there (the counts still
/// say how many failed). `None` when nothing failed.
pub fn failed_identifier(failed: &[String]) -> Option<dicom_object::InMemDicomObject> {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    const MAX_VALUE: usize = 0xFFFE;
    let mut listed = Vec::new();
    let mut length = 0;
    for uid in failed {
        let added = uid.len() + usize::from(!listed.is_empty());
        if length + added > MAX_VALUE {
            break;
        }
        length += added;
        listed.push(uid.clone());
    }
    if listed.is_empty() {
        return None;
    }
    let mut identifier = dicom_object::InMemDicomObject::new_empty();
    identifier.put(DataElement::new(
        dicom_dictionary_std::tags::FAILED_SOP_INSTANCE_UID_LIST,
        VR::UI,
        PrimitiveValue::Strs(listed.into()),
    ));
    Some(identifier)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_list_names_what_fits_in_one_ui_value() {
        assert!(failed_identifier(&[]).is_none());
        let uid = |i: usize| format!("1.2.826.0.1.3680043.10.1.{i:039}");
        let many: Vec<String> = (0..2_000).map(uid).collect();
        let set = failed_identifier(&many).expect("a list");
        let listed = set
            .element(dicom_dictionary_std::tags::FAILED_SOP_INSTANCE_UID_LIST)
            .expect("the list")
            .strings()
            .expect("UIDs")
            .len();
        // 64 characters each and a backslash between: 1,008 fit in 64 KiB.
        assert_eq!(listed, (0xFFFE + 1) / 65);
        assert_eq!(uid(0).len(), 64);
    }
}
