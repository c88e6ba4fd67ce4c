//! The Study Root C-FIND SCP (DICOM PS3.4 C.4.1, C.6.2): a workstation or a
//! site's system queries studies, series or images. The identifier's
//! matching keys become the index's searches (the same as QIDO-RS's:
//! wildcards, date ranges, UID lists), run within the caller's scope and
//! never by opening files; each match is answered with the keys asked.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use telerad_dicom::query::{Identifier, Level};
use telerad_store::StudyIndex;
use telerad_store::qido::{
    DateRange, InstanceHit, InstanceSearch, SeriesHit, SeriesSearch, StudyHit, StudySearch, Text,
};
use telerad_store::scope::Scope;

/// Matches answered to one query at most: past it the query ends with
/// Out of Resources, saying so, rather than holding an unbounded answer.
pub const MAX_MATCHES: i64 = 5_000;

/// An identifier read into one of the index's searches.
#[derive(Debug, Clone)]
pub enum Search {
    Studies(StudySearch),
    Series(SeriesSearch),
    Instances(InstanceSearch),
}

/// The matches of a query (at most [`MAX_MATCHES`]), and whether there
/// were more. Each match's identifier is built when it is sent, so that
/// no more than one is held at a time.
pub struct Found {
    hits: Hits,
    pub truncated: bool,
}

enum Hits {
    Studies(Vec<StudyHit>),
    Series(Vec<SeriesHit>),
    Instances(Vec<InstanceHit>),
}

fn text(query: &Identifier, tag: Tag) -> Option<Text> {
    query.matching(tag).map(|v| Text::parse(&v))
}

fn number(query: &Identifier, tag: Tag, name: &str) -> Result<Option<i64>, String> {
    query
        .matching(tag)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{name} {v:?}: expected an integer"))
        })
        .transpose()
}

/// The search an identifier asks for. Study Root is hierarchical: below
/// the study level only the unique keys above the level narrow it.
pub fn search_of(query: &Identifier) -> Result<Search, String> {
    let limit = MAX_MATCHES + 1;
    let studies = query.list(tags::STUDY_INSTANCE_UID);
    Ok(match query.level {
        Level::Study => Search::Studies(StudySearch {
            study_instance_uids: studies,
            patient_id: text(query, tags::PATIENT_ID),
            patient_name: text(query, tags::PATIENT_NAME),
            accession_number: text(query, tags::ACCESSION_NUMBER),
            study_date: query
                .matching(tags::STUDY_DATE)
                .map(|v| {
                    DateRange::parse(&v)
                        .ok_or_else(|| format!("StudyDate {v:?}: expected YYYYMMDD or a range"))
                })
                .transpose()?,
            modality: query.matching(tags::MODALITIES_IN_STUDY),
            limit,
            offset: 0,
        }),
        Level::Series => Search::Series(SeriesSearch {
            study_instance_uids: studies,
            series_instance_uids: query.list(tags::SERIES_INSTANCE_UID),
            modality: query.matching(tags::MODALITY),
            series_number: number(query, tags::SERIES_NUMBER, "SeriesNumber")?,
            limit,
            offset: 0,
        }),
        Level::Image => Search::Instances(InstanceSearch {
            study_instance_uids: studies,
            series_instance_uids: query.list(tags::SERIES_INSTANCE_UID),
            sop_instance_uids: query.list(tags::SOP_INSTANCE_UID),
            sop_class_uid: query.matching(tags::SOP_CLASS_UID),
            instance_number: number(query, tags::INSTANCE_NUMBER, "InstanceNumber")?,
            limit,
            offset: 0,
        }),
    })
}

fn some(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// Runs `search` within `scope`.
pub async fn run(index: &StudyIndex, search: &Search, scope: &Scope) -> Result<Found, String> {
    let mut hits = match search {
        Search::Studies(search) => Hits::Studies(
            index
                .search_studies(search, scope)
                .await
                .map_err(|e| e.to_string())?,
        ),
        Search::Series(search) => Hits::Series(
            index
                .search_series(search, scope)
                .await
                .map_err(|e| e.to_string())?,
        ),
        Search::Instances(search) => Hits::Instances(
            index
                .search_instances(search, scope)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    let limit = MAX_MATCHES as usize;
    let truncated = match &mut hits {
        Hits::Studies(h) => cut(h, limit),
        Hits::Series(h) => cut(h, limit),
        Hits::Instances(h) => cut(h, limit),
    };
    Ok(Found { hits, truncated })
}

/// Keeps the first `limit`; whether there were more.
fn cut<T>(hits: &mut Vec<T>, limit: usize) -> bool {
    let more = hits.len() > limit;
    hits.truncate(limit);
    more
}

impl Found {
    pub fn len(&self) -> usize {
        match &self.hits {
            Hits::Studies(h) => h.len(),
            Hits::Series(h) => h.len(),
            Hits::Instances(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identifier of match `i`, with the keys `query` asked.
    pub fn answer(
        &self,
        i: usize,
        query: &Identifier,
        retrieve_ae_title: &str,
    ) -> Option<InMemDicomObject> {
        Some(match &self.hits {
            Hits::Studies(hits) => {
                let hit = hits.get(i)?;
                let s = &hit.study;
                query.answer(
                    |tag| match tag {
                        tags::STUDY_INSTANCE_UID => some(&s.study_instance_uid),
                        tags::PATIENT_NAME => some(&s.patient_name),
                        tags::PATIENT_ID => some(&s.patient_id),
                        tags::PATIENT_BIRTH_DATE => some(&s.patient_birth_date),
                        tags::PATIENT_SEX => some(&s.patient_sex),
                        tags::ACCESSION_NUMBER => some(&s.accession_number),
                        tags::STUDY_DATE => some(&s.study_date),
                        tags::STUDY_TIME => some(&s.study_time),
                        tags::STUDY_DESCRIPTION => some(&s.study_description),
                        tags::REFERRING_PHYSICIAN_NAME => some(&s.referring_physician_name),
                        tags::MODALITIES_IN_STUDY => some(&s.modalities),
                        tags::NUMBER_OF_STUDY_RELATED_SERIES => Some(hit.series_count.to_string()),
                        tags::NUMBER_OF_STUDY_RELATED_INSTANCES => {
                            Some(s.instance_count.to_string())
                        }
                        _ => None,
                    },
                    retrieve_ae_title,
                )
            }
            Hits::Series(hits) => {
                let hit = hits.get(i)?;
                let s = &hit.series;
                query.answer(
                    |tag| match tag {
                        tags::STUDY_INSTANCE_UID => some(&hit.study_instance_uid),
                        tags::SERIES_INSTANCE_UID => some(&s.series_instance_uid),
                        tags::MODALITY => some(&s.modality),
                        tags::SERIES_NUMBER => s.series_number.map(|n| n.to_string()),
                        tags::SERIES_DESCRIPTION => some(&s.series_description),
                        tags::BODY_PART_EXAMINED => some(&s.body_part_examined),
                        tags::NUMBER_OF_SERIES_RELATED_INSTANCES => {
                            Some(s.instance_count.to_string())
                        }
                        _ => None,
                    },
                    retrieve_ae_title,
                )
            }
            Hits::Instances(hits) => {
                let hit = hits.get(i)?;
                query.answer(
                    |tag| match tag {
                        tags::STUDY_INSTANCE_UID => some(&hit.study_instance_uid),
                        tags::SERIES_INSTANCE_UID => some(&hit.series_instance_uid),
                        tags::SOP_INSTANCE_UID => some(&hit.sop_instance_uid),
                        tags::SOP_CLASS_UID => some(&hit.sop_class_uid),
                        tags::INSTANCE_NUMBER => hit.instance_number.map(|n| n.to_string()),
                        _ => None,
                    },
                    retrieve_ae_title,
                )
            }
        })
    }
}
