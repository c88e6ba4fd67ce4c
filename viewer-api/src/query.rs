//! A QIDO-RS query string (PS3.18 §8.3.4) read into the index's searches:
//! attributes by keyword or by tag (`PatientID` or `00100020`), `limit`
//! and `offset`; `includefield` and `fuzzymatching` are accepted and
//! ignored (every answer carries the attributes telerad indexes, and
//! names are always matched ignoring case). An attribute telerad cannot
//! match on is named back in a `Warning` header rather than refused, as
//! PS3.18 allows, so a viewer's usual query still gets its answer.

use telerad_http::ApiError;
use telerad_store::qido::{DateRange, InstanceSearch, SeriesSearch, StudySearch, Text};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// The longest matching value accepted (a list of UIDs included).
const MAX_VALUE_CHARS: usize = 4096;

/// What the query asked for and what it asked that is ignored.
#[derive(Debug, Default)]
pub struct Parsed<T> {
    pub search: T,
    pub unsupported: Vec<String>,
}

/// The pairs of a query string, each value checked for length.
fn checked(pairs: &[(String, String)]) -> Result<(), ApiError> {
    for (key, value) in pairs {
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::BadRequest(format!(
                "{key}: at most {MAX_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// `limit` and `offset`, checked.
fn paging(key: &str, value: &str, limit: &mut i64, offset: &mut i64) -> Result<bool, ApiError> {
    match key {
        "limit" => {
            *limit = value
                .parse()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("limit {value:?}: expected 1 to {MAX_LIMIT}"))
                })?;
            Ok(true)
        }
        "offset" => {
            *offset = value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::BadRequest(format!("offset {value:?}: expected 0 or more"))
            })?;
            Ok(true)
        }
        "includefield" | "fuzzymatching" => Ok(true),
        _ => Ok(false),
    }
}

/// UIDs, given as a comma-separated list or repeated, each checked.
fn uids(into: &mut Vec<String>, key: &str, value: &str) -> Result<(), ApiError> {
    for uid in value.split(['\\', ',']).filter(|u| !u.is_empty()) {
        let uid = telerad_dicom::uid::validate_uid(uid)
            .map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))?;
        into.push(uid.to_string());
    }
    Ok(())
}

fn integer(key: &str, value: &str) -> Result<i64, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{key} {value:?}: expected an integer")))
}

/// A DA value or range: `YYYYMMDD`, `A-B`, `-B`, `A-`.
fn date_range(key: &str, value: &str) -> Result<DateRange, ApiError> {
    DateRange::parse(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{key} {value:?}: expected YYYYMMDD or a range YYYYMMDD-YYYYMMDD"
        ))
    })
}

fn text(value: &str) -> Option<Text> {
    let value = value.trim();
    (!value.is_empty() && value != "*").then(|| Text::parse(value))
}

/// The pairs read into `search` (whose `limit` and `offset` `paging`
/// gives), each other key by `key`, which says whether it knew it.
fn parse<T>(
    pairs: &[(String, String)],
    mut search: T,
    paging_of: fn(&mut T) -> (&mut i64, &mut i64),
    key: fn(&mut T, &str, &str) -> Result<bool, ApiError>,
) -> Result<Parsed<T>, ApiError> {
    checked(pairs)?;
    let mut unsupported = Vec::new();
    for (name, value) in pairs {
        // A viewer token, which the caller's extractor has read already.
        if name == "access_token" {
            continue;
        }
        let (limit, offset) = paging_of(&mut search);
        if paging(name, value, limit, offset)? || key(&mut search, name, value)? {
            continue;
        }
        unsupported.push(name.clone());
    }
    Ok(Parsed {
        search,
        unsupported,
    })
}

pub fn studies(pairs: &[(String, String)]) -> Result<Parsed<StudySearch>, ApiError> {
    let search = StudySearch {
        limit: DEFAULT_LIMIT,
        ..StudySearch::default()
    };
    parse(
        pairs,
        search,
        |s| (&mut s.limit, &mut s.offset),
        |s, key, value| {
            match key {
                "StudyInstanceUID" | "0020000D" => uids(&mut s.study_instance_uids, key, value)?,
                "PatientID" | "00100020" => s.patient_id = text(value),
                "PatientName" | "00100010" => s.patient_name = text(value),
                "AccessionNumber" | "00080050" => s.accession_number = text(value),
                "StudyDate" | "00080020" => s.study_date = Some(date_range(key, value)?),
                "ModalitiesInStudy" | "00080061" => s.modality = code(value),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )
}

pub fn series(pairs: &[(String, String)]) -> Result<Parsed<SeriesSearch>, ApiError> {
    let search = SeriesSearch {
        limit: DEFAULT_LIMIT,
        ..SeriesSearch::default()
    };
    parse(
        pairs,
        search,
        |s| (&mut s.limit, &mut s.offset),
        |s, key, value| {
            match key {
                "SeriesInstanceUID" | "0020000E" => uids(&mut s.series_instance_uids, key, value)?,
                "StudyInstanceUID" | "0020000D" => uids(&mut s.study_instance_uids, key, value)?,
                "Modality" | "00080060" => s.modality = code(value),
                "SeriesNumber" | "00200011" => s.series_number = Some(integer(key, value)?),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )
}

pub fn instances(pairs: &[(String, String)]) -> Result<Parsed<InstanceSearch>, ApiError> {
    let search = InstanceSearch {
        limit: DEFAULT_LIMIT,
        ..InstanceSearch::default()
    };
    parse(
        pairs,
        search,
        |s| (&mut s.limit, &mut s.offset),
        |s, key, value| {
            match key {
                "SOPInstanceUID" | "00080018" => uids(&mut s.sop_instance_uids, key, value)?,
                "StudyInstanceUID" | "0020000D" => uids(&mut s.study_instance_uids, key, value)?,
                "SeriesInstanceUID" | "0020000E" => uids(&mut s.series_instance_uids, key, value)?,
                "SOPClassUID" | "00080016" => {
                    let mut class = Vec::new();
                    uids(&mut class, key, value)?;
                    s.sop_class_uid = class.into_iter().next();
                }
                "InstanceNumber" | "00200013" => s.instance_number = Some(integer(key, value)?),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )
}

/// A code string (a modality): trimmed, none when empty.
fn code(value: &str) -> Option<String> {
    Some(value.trim().to_string()).filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn study_keys_by_keyword_or_tag() {
        let parsed = studies(&pairs(&[
            ("PatientID", "P-1"),
            ("00100010", "doe*"),
            ("StudyDate", "20261101-"),
            ("StudyInstanceUID", "1.2.3,1.2.4"),
            ("limit", "5"),
            ("offset", "10"),
            ("includefield", "all"),
            ("StudyDescription", "head"),
        ]))
        .expect("valid");
        let s = parsed.search;
        assert_eq!(s.patient_id, Some(Text::Exact("P-1".into())));
        assert_eq!(s.patient_name, Some(Text::Wildcard("doe*".into())));
        assert_eq!(
            s.study_date,
            Some(DateRange {
                from: Some("20261101".into()),
                to: None
            })
        );
        assert_eq!(s.study_instance_uids, ["1.2.3", "1.2.4"]);
        assert_eq!((s.limit, s.offset), (5, 10));
        assert_eq!(parsed.unsupported, ["StudyDescription"]);
    }

    #[test]
    fn bad_values_are_refused_naming_their_key() {
        for (key, value) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("offset", "-1"),
            ("StudyDate", "2026-11-01"),
            ("StudyDate", "yesterday"),
            ("StudyInstanceUID", "1.2.x"),
        ] {
            let Err(ApiError::BadRequest(message)) = studies(&pairs(&[(key, value)])) else {
                panic!("{key}={value} accepted");
            };
            assert!(message.contains(key), "{message}");
        }
        assert!(series(&pairs(&[("SeriesNumber", "two")])).is_err());
    }
}
