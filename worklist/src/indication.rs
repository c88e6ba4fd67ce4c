//! `POST /api/studies/{uid}/indication` `{"decision": "accepted" |
//! "more_information", "note": "..."}`: the reader who claimed the study
//! checks the request's indication (the justification an examination with
//! ionising radiation needs). Asking for more information posts the
//! question in the study's thread, so the site sees it on its board and
//! answers there or corrects the form (which clears the check). Optional:
//! the report does not wait for it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_lang::said;
use telerad_store::audit::{self, Outcome};
use telerad_store::forms::{self, Indication};
use telerad_store::{messages, study_rows};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::forms::text;
use crate::reports::desk::{DeskError, require_reader};
use crate::study_uid;

pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new().routes(routes!(decide))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Decision {
    decision: Indication,
    /// At most 2000 characters; required when asking for more
    /// information (it is the question posted to the site).
    #[serde(default)]
    note: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Checked {
    study_instance_uid: String,
    /// The form's id.
    form: i64,
    indication: Indication,
    note: String,
    /// The message posted to the site, when more information is asked.
    message: Option<i64>,
}

/// Checks the request's indication.
///
/// By the reader who claimed the study; asking for more information posts
/// the question in the study's thread.
#[utoipa::path(
    post,
    path = "/api/studies/{study_uid}/indication",
    tag = "forms",
    params(("study_uid" = String, Path, description = "Study Instance UID", pattern = r"^[0-9]+(\.[0-9]+)*$", max_length = 64)),
    request_body = Decision,
    responses(
        (status = 200, description = "The check, and the message posted to the site if any", body = Checked),
        (status = 409, description = "The caller is not the study's reader (not claimed, someone else's), the study has no form, or the site corrected the form meanwhile", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn decide(
    caller: Caller,
    Path(raw_uid): Path<String>,
    json: Result<Json<Decision>, JsonRejection>,
) -> Result<Json<Checked>, ApiError> {
    let scope = caller.allow(Action::WriteReport).await?;
    let Some(radiologist) = caller.principal().user.radiologist_id.clone() else {
        return Err(ApiError::said(
            ApiError::Forbidden,
            said!(
                "only the study's radiologist checks its indication",
                "seul le radiologue de l'examen vérifie son indication"
            ),
        ));
    };
    let uid = study_uid(&raw_uid)?;
    let Json(body) = json.map_err(|e| {
        ApiError::from_json_rejection(
            &e,
            "expected {\"decision\": \"accepted\" or \"more_information\", \"note\": \"...\"}",
        )
    })?;
    let record = caller.study_record("form.indication", uid, None);
    let required = body.decision == Indication::MoreInformation;
    if let Err(error) = text("note", &body.note, 2_000, required) {
        return Err(caller.not_done(record, Outcome::Failed, error).await);
    }
    let note = body.note.trim().to_string();
    let db = caller.access().database();
    let mut tx = db.begin_write().await?;
    let checked = async {
        let study = study_rows::by_uid(&mut tx, uid, &scope)
            .await?
            .ok_or_else(|| DeskError::NotFound(said!("no study {uid}", "aucun examen {uid}")))?;
        require_reader(&mut tx, study.id, &radiologist).await?;
        let form = forms::of_study(&mut tx, study.id).await?.ok_or_else(|| {
            DeskError::Conflict(said!(
                "the study has no request form (form missing): ask the site in its messages",
                "l'examen n'a pas de demande d'examen : demandez-la au site dans ses messages"
            ))
        })?;
        let checked = forms::check_indication(
            &mut tx,
            &form,
            body.decision,
            &radiologist,
            &note,
            record.at,
        )
        .await?;
        if !checked {
            return Err(DeskError::Conflict(said!(
                "the site corrected the form meanwhile: read it again",
                "le site a corrigé la demande entre-temps : relisez-la"
            )));
        }
        let message = match body.decision {
            Indication::Accepted => None,
            Indication::MoreInformation => Some(
                messages::post(
                    &mut tx,
                    study.id,
                    caller.principal().user.id,
                    &format!("Indication: more information needed. {note}"),
                    record.at,
                )
                .await?,
            ),
        };
        Ok::<_, DeskError>((form, message))
    }
    .await;
    match checked {
        Ok((form, message)) => {
            let mut record = record;
            record.patient_id = Some(form.patient_id.clone());
            record.detail = serde_json::json!({ "decision": body.decision }).to_string();
            audit::append(&mut tx, &record).await?;
            tx.commit().await?;
            Ok(Json(Checked {
                study_instance_uid: uid.to_string(),
                form: form.id,
                indication: body.decision,
                note,
                message,
            }))
        }
        Err(e) => {
            tx.rollback().await?;
            let error = match e {
                DeskError::NotFound(m) => ApiError::said(ApiError::NotFound, m),
                DeskError::Conflict(m) => ApiError::said(ApiError::Conflict, m),
                DeskError::Illegal(e) => ApiError::said(ApiError::Conflict, e.said()),
                DeskError::Database(e) => ApiError::Database(e),
                other => ApiError::Conflict(other.to_string()),
            };
            Err(caller.not_done(record, Outcome::Failed, error).await)
        }
    }
}
