//! QIDO-RS (PS3.18 §10.6): `GET /dicom-web/studies`,
//! `/dicom-web/studies/{study}/series`,
//! `/dicom-web/studies/{study}/series/{series}/instances` and the flat
//! `/dicom-web/series` and `/dicom-web/instances`, answered in
//! DICOM JSON from the index within the caller's scope. A study or series
//! outside it is not found (404), as everywhere in telerad; each search is
//! audited.

use crate::dicom_json::DataSet;
use crate::query::{self, Parsed};
use crate::uid;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, WARNING};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_store::Archive;
use telerad_store::audit::Outcome;
use telerad_store::qido::{InstanceHit, SeriesHit, StudyHit};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(studies))
        .routes(routes!(series))
        .routes(routes!(instances))
        .routes(routes!(all_series))
        .routes(routes!(all_instances))
}

const DICOM_JSON: &str = "application/dicom+json";

/// A search's query string as key/value pairs (keys may repeat).
type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn pairs(query: Pairs) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// A client that accepts neither DICOM JSON nor JSON is told so (406)
/// rather than sent what it cannot read.
pub(crate) fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim();
        matches!(
            media.to_ascii_lowercase().as_str(),
            "application/dicom+json" | "application/json" | "application/*" | "*/*"
        )
    });
    if acceptable {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(format!(
            "Accept {accept:?}: the answer is {DICOM_JSON}"
        )))
    }
}

/// The answer: the data sets, and a `Warning` (PS3.18 §8.3.4.6) for the
/// keys not matched on and for a page that may not be the last.
fn answer(items: Vec<Value>, unsupported: &[String], limit: i64) -> Response {
    let full_page = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
    let mut response = (
        [(CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON))],
        Value::Array(items).to_string(),
    )
        .into_response();
    let mut warnings = Vec::new();
    if !unsupported.is_empty() {
        warnings.push(format!(
            "299 telerad \"The following attributes are not supported for matching: {}\"",
            unsupported.join(", ")
        ));
    }
    if full_page {
        warnings
            .push("299 telerad \"There are additional results that can be requested\"".to_string());
    }
    for warning in warnings {
        if let Ok(value) = HeaderValue::from_str(&warning) {
            response.headers_mut().append(WARNING, value);
        }
    }
    response
}

/// A search across studies, audited with what it returned, then
/// [`answer`]ed.
async fn audited_answer(
    caller: &Caller,
    object: &str,
    items: Vec<Value>,
    unsupported: &[String],
    limit: i64,
) -> Result<Response, ApiError> {
    let mut record = caller.record("dicomweb.search", object.into());
    record.detail = serde_json::json!({ "returned": items.len() }).to_string();
    caller.audit(&record).await?;
    Ok(answer(items, unsupported, limit))
}

fn study_set(hit: &StudyHit) -> Value {
    let s = &hit.study;
    DataSet::new()
        .text("00080020", "DA", &s.study_date)
        .text("00080030", "TM", &s.study_time)
        .text("00080050", "SH", &s.accession_number)
        .text("00080056", "CS", "ONLINE")
        .text("00080061", "CS", &s.modalities)
        .person("00080090", &s.referring_physician_name)
        .text("00081030", "LO", &s.study_description)
        .person("00100010", &s.patient_name)
        .text("00100020", "LO", &s.patient_id)
        .text("00100030", "DA", &s.patient_birth_date)
        .text("00100040", "CS", &s.patient_sex)
        .text("0020000D", "UI", &s.study_instance_uid)
        .number("00201206", "IS", Some(hit.series_count))
        .number("00201208", "IS", Some(s.instance_count))
        .into_value()
}

fn series_set(hit: &SeriesHit) -> Value {
    let s = &hit.series;
    DataSet::new()
        .text("00080056", "CS", "ONLINE")
        .text("00080060", "CS", &s.modality)
        .text("0008103E", "LO", &s.series_description)
        .text("00180015", "CS", &s.body_part_examined)
        .text("0020000D", "UI", &hit.study_instance_uid)
        .text("0020000E", "UI", &s.series_instance_uid)
        .number("00200011", "IS", s.series_number)
        .number("00201209", "IS", Some(s.instance_count))
        .into_value()
}

fn instance_set(hit: &InstanceHit) -> Value {
    DataSet::new()
        .text("00080016", "UI", &hit.sop_class_uid)
        .text("00080018", "UI", &hit.sop_instance_uid)
        .text("00080056", "CS", "ONLINE")
        .text("00083002", "UI", &hit.transfer_syntax_uid)
        .text("0020000D", "UI", &hit.study_instance_uid)
        .text("0020000E", "UI", &hit.series_instance_uid)
        .number("00200013", "IS", hit.instance_number)
        .into_value()
}

/// Searches the studies the caller may see.
#[utoipa::path(
    get,
    path = "/dicom-web/studies",
    tag = "dicomweb",
    params(
        ("PatientID" = Option<String>, Query, description = "Exact, or with * and ? wildcards"),
        ("PatientName" = Option<String>, Query, description = "Ignoring case; * and ? wildcards"),
        ("AccessionNumber" = Option<String>, Query, description = "Exact, or with wildcards"),
        ("StudyDate" = Option<String>, Query, description = "YYYYMMDD, or a range YYYYMMDD-YYYYMMDD (either end open)"),
        ("ModalitiesInStudy" = Option<String>, Query, description = "A modality, e.g. CT"),
        ("StudyInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "The matching studies (DICOM JSON, PS3.18 F.2); tags may also be given as eight hex digits", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn studies(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    check_accept(&headers)?;
    let Parsed {
        search,
        unsupported,
    } = query::studies(&pairs(query)?)?;
    let hits = archive.index().search_studies(&search, &scope).await?;
    let items = hits.iter().map(study_set).collect();
    audited_answer(&caller, "studies", items, &unsupported, search.limit).await
}

/// Searches the series of one study.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("Modality" = Option<String>, Query),
        ("SeriesNumber" = Option<i64>, Query),
        ("SeriesInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "The matching series (DICOM JSON)", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn series(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path(raw_study): Path<String>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    check_accept(&headers)?;
    let study = uid(&raw_study, "study")?;
    let Parsed {
        mut search,
        unsupported,
    } = query::series(&pairs(query)?)?;
    // The path names the study; a StudyInstanceUID key cannot widen it.
    search.study_instance_uids = vec![study.to_string()];
    let index = archive.index();
    let record = caller.study_record("dicomweb.search_series", study, None);
    let Some(summary) = index.study(study, &scope).await? else {
        let error = ApiError::NotFound(format!("no study {study}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let hits = index.search_series(&search, &scope).await?;
    let record = caller.study_record("dicomweb.search_series", study, Some(&summary.patient_id));
    caller.audit(&record).await?;
    Ok(answer(
        hits.iter().map(series_set).collect(),
        &unsupported,
        search.limit,
    ))
}

/// Searches the instances of one series.
#[utoipa::path(
    get,
    path = "/dicom-web/studies/{study}/series/{series}/instances",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("series" = String, Path, description = "Series Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        ("SOPClassUID" = Option<String>, Query),
        ("InstanceNumber" = Option<i64>, Query),
        ("SOPInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "The matching instances, the newest version of each (DICOM JSON)", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn instances(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path((raw_study, raw_series)): Path<(String, String)>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    check_accept(&headers)?;
    let study = uid(&raw_study, "study")?;
    let series = uid(&raw_series, "series")?;
    let Parsed {
        mut search,
        unsupported,
    } = query::instances(&pairs(query)?)?;
    search.study_instance_uids = vec![study.to_string()];
    search.series_instance_uids = vec![series.to_string()];
    let index = archive.index();
    let record = caller.study_record("dicomweb.search_instances", study, None);
    let Some(summary) = index.study(study, &scope).await? else {
        let error = ApiError::NotFound(format!("no study {study}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    };
    let known = index
        .search_series(
            &telerad_store::qido::SeriesSearch {
                study_instance_uids: vec![study.to_string()],
                series_instance_uids: vec![series.to_string()],
                limit: 1,
                ..Default::default()
            },
            &scope,
        )
        .await?;
    if known.is_empty() {
        let error = ApiError::NotFound(format!("no series {series} in study {study}"));
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    let hits = index.search_instances(&search, &scope).await?;
    let record = caller.study_record(
        "dicomweb.search_instances",
        study,
        Some(&summary.patient_id),
    );
    caller.audit(&record).await?;
    Ok(answer(
        hits.iter().map(instance_set).collect(),
        &unsupported,
        search.limit,
    ))
}

/// Searches series across the studies the caller may see.
#[utoipa::path(
    get,
    path = "/dicom-web/series",
    tag = "dicomweb",
    params(
        ("StudyInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("Modality" = Option<String>, Query),
        ("SeriesNumber" = Option<i64>, Query),
        ("SeriesInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "The matching series (DICOM JSON)", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn all_series(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    check_accept(&headers)?;
    let Parsed {
        search,
        unsupported,
    } = query::series(&pairs(query)?)?;
    let hits = archive.index().search_series(&search, &scope).await?;
    let items = hits.iter().map(series_set).collect();
    audited_answer(&caller, "series", items, &unsupported, search.limit).await
}

/// Searches instances across the studies the caller may see.
#[utoipa::path(
    get,
    path = "/dicom-web/instances",
    tag = "dicomweb",
    params(
        ("StudyInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("SeriesInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("SOPClassUID" = Option<String>, Query),
        ("InstanceNumber" = Option<i64>, Query),
        ("SOPInstanceUID" = Option<String>, Query, description = "One UID or a comma-separated list"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<i64>, Query, minimum = 0),
    ),
    responses(
        (status = 200, description = "The matching instances, the newest version of each (DICOM JSON)", content_type = "application/dicom+json", body = Vec<Object>),
        (status = 406, description = "The Accept header allows no JSON", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn all_instances(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::ReadStudies).await?;
    check_accept(&headers)?;
    let Parsed {
        search,
        unsupported,
    } = query::instances(&pairs(query)?)?;
    let hits = archive.index().search_instances(&search, &scope).await?;
    let items = hits.iter().map(instance_set).collect();
    audited_answer(&caller, "instances", items, &unsupported, search.limit).await
}
