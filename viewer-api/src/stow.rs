//! STOW-RS (DICOM PS3.18 §10.5): a hospital that cannot open a DICOM port
//! pushes its images over HTTPS. Each part of the `multipart/related;
//! type="application/dicom"` body is a Part 10 file, streamed to the
//! archive as the DIMSE receiver streams a C-STORE (never the whole body
//! in memory), committed with the same durability, checks and index
//! updates, for the caller's site. The answer lists the instances stored
//! and those that failed, with their failure reason (PS3.18 Table
//! 10.5.3-2).

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_dicom::part10::InstanceHeader;
use telerad_dicom::uid::{trim_uid, validate_uid};
use telerad_http::ApiError;
use telerad_store::{Archive, PendingInstance, Scope, Stored};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The Part 10 header of a part, read before its data set streams: the
/// preamble, `DICM` and the File Meta Information (a few hundred bytes;
/// more than this is not a header).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Failure Reason (0008,1197) values, PS3.4 B.2.3 and PS3.18 10.5.3.
const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
const OUT_OF_RESOURCES: u16 = 0xA700;
const CANNOT_UNDERSTAND: u16 = 0xC000;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Archive>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(store_studies))
        .routes(routes!(store_study))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StoreQuery {
    /// The site the images are of; needed only by an account that acts for
    /// several sites.
    site: Option<String>,
}

/// Stores instances (STOW-RS).
///
/// A `multipart/related; type="application/dicom"` body of Part 10 files,
/// each stored durably for the caller's site before it is listed as
/// stored. 200 when all were stored, 202 when some failed, 409 when none
/// was.
#[utoipa::path(
    post,
    path = "/dicom-web/studies",
    tag = "dicomweb",
    params(StoreQuery),
    request_body(content_type = "multipart/related", content = String),
    responses(
        (status = 200, description = "Every instance stored", content_type = "application/dicom+json", body = Object),
        (status = 202, description = "Some instances failed (FailedSOPSequence)", content_type = "application/dicom+json", body = Object),
        (status = 409, description = "No instance stored", content_type = "application/dicom+json", body = Object),
        (status = 415, description = "Not multipart/related of application/dicom", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn store_studies(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    query: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    store(&caller, &archive, query, &headers, body, None).await
}

/// Stores instances of one study (STOW-RS).
///
/// As `POST /dicom-web/studies`; an instance of another study fails
/// (A900).
#[utoipa::path(
    post,
    path = "/dicom-web/studies/{study}",
    tag = "dicomweb",
    params(
        ("study" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64),
        StoreQuery
    ),
    request_body(content_type = "multipart/related", content = String),
    responses(
        (status = 200, description = "Every instance stored", content_type = "application/dicom+json", body = Object),
        (status = 202, description = "Some instances failed (FailedSOPSequence)", content_type = "application/dicom+json", body = Object),
        (status = 409, description = "No instance stored", content_type = "application/dicom+json", body = Object),
        (status = 415, description = "Not multipart/related of application/dicom", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn store_study(
    caller: Caller,
    State(archive): State<Arc<Archive>>,
    Path(study): Path<String>,
    query: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let study = validate_uid(&study)
        .map_err(|e| ApiError::BadRequest(format!("study: {e}")))?
        .to_string();
    store(&caller, &archive, query, &headers, body, Some(study)).await
}

/// The site the caller stores for: the one asked, if its scope covers it,
/// else its only site.
fn site_of(scope: &Scope, caller: &Caller, asked: Option<String>) -> Result<String, ApiError> {
    match asked {
        Some(site) if scope.covers_site(&site) => Ok(site),
        Some(site) => Err(ApiError::Forbidden(format!(
            "this account does not send images for site {site:?}"
        ))),
        None => match caller.principal().user.sites.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(ApiError::BadRequest(
                "site: this account acts for several sites (or all): say which".into(),
            )),
        },
    }
}

/// The boundary of a `multipart/related` body of `application/dicom`.
fn boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    let unsupported = || {
        ApiError::UnsupportedMediaType(
            "expected multipart/related; type=\"application/dicom\"; boundary=…".into(),
        )
    };
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mime: mime::Mime = value.parse().map_err(|_| unsupported())?;
    if mime.essence_str() != "multipart/related" {
        return Err(unsupported());
    }
    if let Some(kind) = mime.get_param("type")
        && !kind.as_str().eq_ignore_ascii_case("application/dicom")
    {
        return Err(unsupported());
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_string())
        .ok_or_else(unsupported)
}

/// One part's outcome.
enum Outcome {
    Stored {
        class: String,
        instance: String,
        study: Option<String>,
    },
    Failed {
        class: String,
        instance: String,
        reason: u16,
        why: String,
    },
}

async fn store(
    caller: &Caller,
    archive: &Archive,
    query: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
    body: Body,
    study: Option<String>,
) -> Result<Response, ApiError> {
    let scope = caller.allow(Action::StoreImages).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let site = site_of(&scope, caller, query.site)?;
    let boundary = boundary(headers)?;
    // Each part is bounded by the archive's limit on one instance; the
    // body as a whole only by what it holds, stored one part at a time.
    let limit = archive.max_instance_bytes() + MAX_HEADER_BYTES as u64;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().per_field(limit));
    let mut parts =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut outcomes = Vec::new();
    loop {
        // A body that breaks off after some parts were stored is answered
        // with those (they are durable) and the break as a failure.
        let read = match parts.next_field().await {
            Ok(Some(part)) => receive(archive, part, &site, study.as_deref()).await,
            Ok(None) => break,
            Err(e) => Err(e),
        };
        let outcome = match read {
            Ok(outcome) => outcome,
            Err(e) if outcomes.is_empty() => {
                return Err(ApiError::BadRequest(format!(
                    "the multipart body could not be read: {e}"
                )));
            }
            Err(e) => {
                let too_large = matches!(e, multer::Error::FieldSizeExceeded { .. });
                outcomes.push(Outcome::Failed {
                    class: String::new(),
                    instance: String::new(),
                    reason: if too_large {
                        OUT_OF_RESOURCES
                    } else {
                        CANNOT_UNDERSTAND
                    },
                    why: format!("the multipart body could not be read further: {e}"),
                });
                break;
            }
        };
        if let Outcome::Failed { instance, why, .. } = &outcome {
            tracing::warn!(sop_instance_uid = %instance, "STOW-RS: instance refused: {why}");
        }
        outcomes.push(outcome);
    }
    if outcomes.is_empty() {
        return Err(ApiError::BadRequest(
            "the multipart body holds no instance".into(),
        ));
    }
    audit(caller, &outcomes).await?;
    Ok(answer(&outcomes, study.as_deref()))
}

/// Reads one part: its Part 10 header, then its data set streamed to a
/// pending instance, committed at its end. A part that is not a stored
/// instance is a failure, not an error: the other parts go on.
async fn receive(
    archive: &Archive,
    mut part: multer::Field<'static>,
    site: &str,
    study: Option<&str>,
) -> Result<Outcome, multer::Error> {
    let failed = |class: &str, instance: &str, reason: u16, why: String| Outcome::Failed {
        class: class.to_string(),
        instance: instance.to_string(),
        reason,
        why,
    };
    let dicom = part
        .content_type()
        .is_none_or(|m| m.essence_str() == "application/dicom");
    let mut head: Vec<u8> = Vec::new();
    let mut pending: Option<PendingInstance> = None;
    let mut refusal: Option<Outcome> = (!dicom).then(|| {
        failed(
            "",
            "",
            CANNOT_UNDERSTAND,
            "a part that is not application/dicom".into(),
        )
    });
    while let Some(chunk) = part.chunk().await? {
        if refusal.is_some() {
            continue;
        }
        if let Some(pending) = pending.as_mut() {
            pending.write(&chunk);
            continue;
        }
        head.extend_from_slice(&chunk);
        match header_of(&head) {
            Ok(None) if head.len() <= MAX_HEADER_BYTES => {}
            Ok(None) => {
                refusal = Some(failed(
                    "",
                    "",
                    CANNOT_UNDERSTAND,
                    "no Part 10 header".into(),
                ));
            }
            Err(why) => refusal = Some(failed("", "", CANNOT_UNDERSTAND, why)),
            // What the DICOM receiver accepts, and nothing else: a class
            // it stores, in a syntax it reads.
            Ok(Some((header, _))) if !archive.stores_sop_class(&header.sop_class_uid) => {
                refusal = Some(failed(
                    &header.sop_class_uid,
                    &header.sop_instance_uid,
                    SOP_CLASS_NOT_SUPPORTED,
                    format!("SOP class {} is not stored here", header.sop_class_uid),
                ));
            }
            Ok(Some((header, _)))
                if !telerad_dicom::transfer_syntax::is_supported(&header.transfer_syntax_uid) =>
            {
                refusal = Some(failed(
                    &header.sop_class_uid,
                    &header.sop_instance_uid,
                    CANNOT_UNDERSTAND,
                    format!(
                        "transfer syntax {} is not read here",
                        header.transfer_syntax_uid
                    ),
                ));
            }
            Ok(Some((header, offset))) => {
                let (class, instance) = (
                    header.sop_class_uid.clone(),
                    header.sop_instance_uid.clone(),
                );
                match archive.begin(header) {
                    Ok(mut started) => {
                        if let Some(study) = study {
                            started.expect_study(study);
                        }
                        started.write(&head[offset..]);
                        pending = Some(started);
                    }
                    Err(e) => {
                        refusal = Some(failed(&class, &instance, e.failure.status(), e.message))
                    }
                }
            }
        }
    }
    if let Some(refusal) = refusal {
        return Ok(refusal);
    }
    let Some(pending) = pending else {
        return Ok(failed(
            "",
            "",
            CANNOT_UNDERSTAND,
            "not a DICOM Part 10 file".into(),
        ));
    };
    let (class, instance) = (
        pending.header().sop_class_uid.clone(),
        pending.header().sop_instance_uid.clone(),
    );
    Ok(match archive.commit(pending, site).await {
        Ok(stored) => Outcome::Stored {
            class,
            instance,
            study: match &stored {
                Stored::New { path, .. } => {
                    telerad_store::layout::Layout::study_of(path).map(str::to_string)
                }
                Stored::Duplicate { .. } => None,
            },
        },
        Err(e) => failed(&class, &instance, e.failure.status(), e.message),
    })
}

/// The Part 10 header at the start of `head`, once all of it is there:
/// the instance's header and where its data set starts. `Ok(None)`: more
/// bytes are needed.
fn header_of(head: &[u8]) -> Result<Option<(InstanceHeader, usize)>, String> {
    // Preamble (128), "DICM", then (0002,0000) UL 4 bytes: the length of
    // the rest of the group (PS3.10 7.1).
    const START: usize = 132;
    if head.len() < START + 12 {
        return Ok(None);
    }
    if &head[128..132] != b"DICM" {
        return Err("not a DICOM Part 10 file (no DICM prefix)".into());
    }
    let group = &head[START..START + 12];
    if group[0..4] != [0x02, 0x00, 0x00, 0x00] || &group[4..6] != b"UL" {
        return Err("the File Meta Information does not start with its group length".into());
    }
    let rest = u32::from_le_bytes([group[8], group[9], group[10], group[11]]) as usize;
    let end = START + 12 + rest;
    if end > MAX_HEADER_BYTES {
        return Err(format!("a File Meta Information of {rest} bytes"));
    }
    if head.len() < end {
        return Ok(None);
    }
    let meta = dicom_object::meta::FileMetaTable::from_reader(&head[128..end])
        .map_err(|e| format!("unreadable File Meta Information: {e}"))?;
    let uid = |name: &str, value: &str| -> Result<String, String> {
        validate_uid(trim_uid(value))
            .map(str::to_string)
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Some((
        InstanceHeader {
            sop_class_uid: uid(
                "Media Storage SOP Class UID",
                meta.media_storage_sop_class_uid(),
            )?,
            sop_instance_uid: uid(
                "Media Storage SOP Instance UID",
                meta.media_storage_sop_instance_uid(),
            )?,
            transfer_syntax_uid: uid("Transfer Syntax UID", meta.transfer_syntax())?,
            calling_ae_title: "STOW_RS".into(),
        },
        end,
    )))
}

/// One audit record per request: what was stored, for which studies.
async fn audit(caller: &Caller, outcomes: &[Outcome]) -> Result<(), ApiError> {
    let mut studies: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Stored { study, .. } => study.as_deref(),
            Outcome::Failed { .. } => None,
        })
        .collect();
    studies.sort_unstable();
    studies.dedup();
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Stored { .. }))
        .count();
    let object = match studies.as_slice() {
        [one] => format!("study/{one}"),
        _ => "studies".into(),
    };
    let mut record = caller.record("study.store", object);
    record.study_uid = (studies.len() == 1).then(|| studies[0].to_string());
    record.detail = json!({
        "studies": studies,
        "stored": stored,
        "failed": outcomes.len() - stored,
    })
    .to_string();
    caller.audit(&record).await
}

/// The response data set (PS3.18 Table 10.5.3-2) in DICOM JSON.
fn answer(outcomes: &[Outcome], study: Option<&str>) -> Response {
    let text = |vr: &str, value: &str| json!({ "vr": vr, "Value": [value] });
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Stored {
                class, instance, ..
            } => referenced.push(json!({
                "00081150": text("UI", class),
                "00081155": text("UI", instance),
            })),
            Outcome::Failed {
                class,
                instance,
                reason,
                ..
            } => {
                let mut item = json!({ "00081197": { "vr": "US", "Value": [reason] } });
                if !class.is_empty() {
                    item["00081150"] = text("UI", class);
                }
                if !instance.is_empty() {
                    item["00081155"] = text("UI", instance);
                }
                failed.push(item);
            }
        }
    }
    let status = match (referenced.is_empty(), failed.is_empty()) {
        (_, true) => StatusCode::OK,
        (true, false) => StatusCode::CONFLICT,
        (false, false) => StatusCode::ACCEPTED,
    };
    let mut set = serde_json::Map::new();
    if let Some(study) = study {
        set.insert(
            "00081190".into(),
            text("UR", &format!("/dicom-web/studies/{study}")),
        );
    }
    if !referenced.is_empty() {
        set.insert(
            "00081199".into(),
            json!({ "vr": "SQ", "Value": referenced }),
        );
    }
    if !failed.is_empty() {
        set.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Json(Value::Object(set)),
    )
        .into_response()
}
