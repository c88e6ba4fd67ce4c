//! The report's steps in the database: each one reads the study within the
//! caller's scope, checks that the caller is its reader and that the step
//! is allowed ([`lifecycle::check`]), writes, and commits with its audit
//! record, in one transaction. Signing the final takes the study out of
//! its reader's open load.

use super::lifecycle::{self, Illegal, Interop, Step};
use super::templates::{self, Content, ContentError, MAX_TEXT_CHARS, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use telerad_lang::{Lang, Said, said};
use telerad_router::assignment::{self, AssignmentState};
use telerad_router::service::Router as RouterService;
use telerad_store::audit::{self, AuditRecord};
use telerad_store::reports::{self, NewVersion, ReportError, ReportRow, Status, VersionKind};
use telerad_store::{Database, Scope, StudyId, study_rows};

type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("{0}")]
    NotFound(Said),
    #[error("{0}")]
    Conflict(Said),
    #[error(transparent)]
    Illegal(#[from] Illegal),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("corrupt report: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ReportError> for DeskError {
    fn from(e: ReportError) -> DeskError {
        match e {
            ReportError::Changed => DeskError::Conflict(Said::new(
                e.to_string(),
                "le compte rendu a changé entre-temps : rechargez-le",
            )),
            ReportError::Database(e) => DeskError::Database(e),
        }
    }
}

/// The radiologist writing, as the policy scoped them.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub radiologist: &'a str,
    pub login: &'a str,
    pub scope: &'a Scope,
    /// The report's language: what telerad writes into it (the critical
    /// results' statements) is in it.
    pub lang: Lang,
}

/// An addendum: text appended after the final.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddendumContent {
    pub text: String,
    /// The communication statements of the study's critical results as
    /// they stand when the addendum is signed (written by telerad).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communications: Vec<String>,
}

// The shape of `VersionView::content` (a JSON value) for the API
// description only: nothing builds one.
/// What an issued version holds: a report's content for a preliminary or a
/// final, an addendum's for an addendum.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum VersionContent {
    Report(Content),
    Addendum(AddendumContent),
}

/// One issued version, as answered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub number: i64,
    pub kind: VersionKind,
    /// The text issued: a report's content for a preliminary or a final,
    /// an addendum's (`text`, `communications`) for an addendum.
    #[schema(value_type = VersionContent)]
    pub content: Value,
    /// SHA-256 of the stored content, hex: what was signed.
    pub content_hash: String,
    pub radiologist: String,
    pub signed_by: String,
    #[serde(serialize_with = "telerad_store::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// The working copy of a report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DraftView {
    #[schema(value_type = Content)]
    pub content: Value,
    /// SHA-256 of the draft as stored: what a signer quotes (`read_hash`)
    /// to sign exactly the text they read.
    pub content_hash: String,
    pub author: Option<String>,
    #[serde(serialize_with = "telerad_store::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub saved_at: Option<i64>,
}

/// A report as one reader may see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub study_instance_uid: String,
    pub status: Status,
    pub interop: Interop,
    pub template: String,
    /// Issued versions, oldest first.
    pub versions: Vec<VersionView>,
    /// The working copy, for its author only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft: Option<DraftView>,
    /// Fields of the template's `warn` rule left empty in what was just
    /// signed or saved.
    pub empty_fields_to_check: Vec<String>,
}

pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

pub(crate) async fn study_in(
    tx: &mut Tx,
    uid: &str,
    scope: &Scope,
) -> Result<study_rows::StudyRef, DeskError> {
    study_rows::by_uid(tx, uid, scope)
        .await?
        .ok_or_else(|| DeskError::NotFound(said!("no study {uid}", "aucun examen {uid}")))
}

/// Only the reader who claimed the study writes its report. The check is
/// a guarded write on the assignment row, so that on PostgreSQL it holds
/// the row until the transaction ends: a release or a reassignment cannot
/// slip in between the check and the report's write.
pub(crate) async fn require_reader(
    tx: &mut Tx,
    study_id: StudyId,
    radiologist: &str,
) -> Result<(), DeskError> {
    if assignment::hold_for_reader(tx, study_id, radiologist).await? {
        return Ok(());
    }
    let row = assignment::by_study(tx, study_id).await?;
    let Some(row) = row else {
        return Err(DeskError::Conflict(said!(
            "the study is not assigned yet: claim it before writing its report",
            "l'examen n'est pas encore attribué : prenez-le avant d'en rédiger le compte rendu"
        )));
    };
    match (row.state, row.radiologist_id.as_deref()) {
        (AssignmentState::Acknowledged, Some(r)) if r == radiologist => Ok(()),
        (AssignmentState::Assigned, Some(r)) if r == radiologist => {
            Err(DeskError::Conflict(said!(
                "acknowledge the study before writing its report",
                "prenez l'examen avant d'en rédiger le compte rendu"
            )))
        }
        (AssignmentState::Unassigned, _) => Err(DeskError::Conflict(said!(
            "the study is unassigned: claim it before writing its report",
            "l'examen n'est attribué à personne : prenez-le avant d'en rédiger le compte rendu"
        ))),
        (_, r) => {
            let (by, par) = (r.unwrap_or("nobody"), r.unwrap_or("personne"));
            Err(DeskError::Conflict(said!(
                "the study is read by {by}, not by {radiologist}",
                "l'examen est lu par {par}, pas par {radiologist}"
            )))
        }
    }
}

fn parse(json: &str) -> Result<Value, DeskError> {
    serde_json::from_str(json).map_err(|e| DeskError::Corrupt(e.to_string()))
}

async fn view(
    tx: &mut Tx,
    uid: &str,
    report: &ReportRow,
    viewer: Option<&str>,
    empty_fields_to_check: Vec<String>,
) -> Result<ReportView, DeskError> {
    let versions = reports::versions(tx, report.id)
        .await?
        .into_iter()
        .map(|v| {
            Ok(VersionView {
                number: v.number,
                kind: v.kind,
                content: parse(&v.content)?,
                content_hash: v.content_hash,
                radiologist: v.radiologist_id,
                signed_by: v.signed_by,
                at: v.at,
            })
        })
        .collect::<Result<Vec<_>, DeskError>>()?;
    let mine = viewer.is_some() && report.draft_author.as_deref() == viewer;
    let draft = match (&report.draft, mine) {
        (Some(draft), true) => Some(DraftView {
            content: parse(draft)?,
            content_hash: content_hash(draft),
            author: report.draft_author.clone(),
            saved_at: report.draft_saved_at,
        }),
        _ => None,
    };
    Ok(ReportView {
        study_instance_uid: uid.to_string(),
        status: report.status,
        interop: lifecycle::interop(report.status),
        template: report.template.clone(),
        versions,
        draft,
        empty_fields_to_check,
    })
}

/// The report of a study within `scope`. A draft is its author's alone:
/// to anyone else a study with only a draft has no report yet.
pub async fn read(
    db: &Database,
    uid: &str,
    scope: &Scope,
    viewer: Option<&str>,
) -> Result<ReportView, DeskError> {
    let mut tx = db.begin().await?;
    let study = study_in(&mut tx, uid, scope).await?;
    let report = reports::of_study(&mut tx, study.id).await?;
    let visible = report
        .filter(|r| r.versions > 0 || (viewer.is_some() && r.draft_author.as_deref() == viewer));
    let Some(report) = visible else {
        return Err(DeskError::NotFound(said!(
            "no report issued yet for {uid}",
            "aucun compte rendu émis pour {uid}"
        )));
    };
    let view = view(&mut tx, uid, &report, viewer, Vec::new()).await?;
    tx.rollback().await?;
    Ok(view)
}

/// Saves the author's working copy (autosave): any number of times before
/// the final.
pub async fn save_draft(
    db: &Database,
    author: &Author<'_>,
    uid: &str,
    content: &Content,
    record: &AuditRecord,
) -> Result<ReportView, DeskError> {
    let template = templates::check(content)?;
    let mut tx = db.begin_write().await?;
    let study = study_in(&mut tx, uid, author.scope).await?;
    require_reader(&mut tx, study.id, author.radiologist).await?;
    let existing = reports::of_study(&mut tx, study.id).await?;
    lifecycle::check(
        existing.as_ref().map(|r| r.status),
        existing.as_ref().is_some_and(|r| r.draft.is_some()),
        Step::SaveDraft,
    )?;
    let own = Content {
        communications: Vec::new(),
        ..content.clone()
    };
    let json = serde_json::to_string(&own).map_err(|e| DeskError::Corrupt(e.to_string()))?;
    let now = record.at;
    let report = reports::save_draft(
        &mut tx,
        study.id,
        &template.id,
        &json,
        author.radiologist,
        now,
    )
    .await?
    .ok_or_else(|| {
        DeskError::Conflict(said!(
            "the report was signed meanwhile: write an addendum",
            "le compte rendu a été signé entre-temps : rédigez un addendum"
        ))
    })?;
    audit::append(&mut tx, record).await?;
    let warn = owned(template.unfilled(content, Rule::Warn));
    let view = view(&mut tx, uid, &report, Some(author.radiologist), warn).await?;
    tx.commit().await?;
    Ok(view)
}

fn owned(ids: Vec<&str>) -> Vec<String> {
    ids.into_iter().map(str::to_string).collect()
}

/// Issues the working copy as a preliminary, or signs the final (the
/// working copy, else the preliminary as issued), with the communication
/// statements of the study's critical results in the site's time. The
/// caller has checked the password for a final.
/// Issues a version of the report. `read_hash`, when given, is the
/// SHA-256 of the text the signer read (the draft's `content_hash`, or the
/// preliminary's when signing it unchanged): a text changed since (another
/// tab's autosave, say) is not signed.
pub async fn issue(
    db: &Database,
    zones: &RouterService,
    author: &Author<'_>,
    uid: &str,
    kind: VersionKind,
    read_hash: Option<&str>,
    record: &AuditRecord,
) -> Result<ReportView, DeskError> {
    let mut tx = db.begin_write().await?;
    let study = study_in(&mut tx, uid, author.scope).await?;
    require_reader(&mut tx, study.id, author.radiologist).await?;
    let report = reports::of_study(&mut tx, study.id).await?;
    // Only the caller's own working copy is theirs to issue: another
    // reader's (left when the study changed hands) is never signed unseen.
    let own_draft = report.as_ref().and_then(|r| {
        r.draft
            .clone()
            .filter(|_| r.draft_author.as_deref() == Some(author.radiologist))
    });
    lifecycle::check(
        report.as_ref().map(|r| r.status),
        own_draft.is_some(),
        Step::Issue(kind),
    )?;
    let Some(report) = report else {
        return Err(DeskError::Corrupt(
            "a report passed its checks without a row".into(),
        ));
    };
    let text = match own_draft {
        Some(draft) => draft,
        None => reports::versions(&mut tx, report.id)
            .await?
            .into_iter()
            .rev()
            .find(|v| v.kind == VersionKind::Preliminary)
            .map(|v| v.content)
            .ok_or_else(|| DeskError::Corrupt("a preliminary report without its text".into()))?,
    };
    if let Some(read) = read_hash
        && !read.eq_ignore_ascii_case(&content_hash(&text))
    {
        let hash = content_hash(&text);
        return Err(DeskError::Conflict(said!(
            "the text changed since you read it (read_hash {read} is not the text's \
             {hash}): read it again before signing",
            "le texte a changé depuis votre lecture (read_hash {read} n'est pas celui du \
             texte, {hash}) : relisez-le avant de signer"
        )));
    }
    let mut content: Content =
        serde_json::from_str(&text).map_err(|e| DeskError::Corrupt(e.to_string()))?;
    let template = templates::check(&content).map_err(|e| DeskError::Corrupt(e.to_string()))?;
    // What was said to whom, as of this version.
    let zone = zones
        .site_time_zone(&study.site)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC);
    content.communications =
        crate::critical::statements(&mut tx, study.id, &zone, author.lang).await?;
    let text = serde_json::to_string(&content).map_err(|e| DeskError::Corrupt(e.to_string()))?;
    // The site acts on a preliminary at once: it answers the same
    // required fields as the final.
    let missing = template.unfilled(&content, Rule::Required);
    if !missing.is_empty() {
        let fields = missing
            .iter()
            .map(|f| format!("fields.{f}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (kind, genre) = match kind {
            VersionKind::Preliminary => ("preliminary", "d'émettre le compte rendu préliminaire"),
            VersionKind::Final => ("final", "de signer le compte rendu définitif"),
            VersionKind::Addendum => ("addendum", "de signer l'addendum"),
        };
        return Err(DeskError::Conflict(said!(
            "cannot issue the {kind}: required fields are empty: {fields}",
            "impossible {genre} : des champs obligatoires sont vides : {fields}"
        )));
    }
    let now = record.at;
    reports::issue(
        &mut tx,
        &report,
        &NewVersion {
            kind,
            content: &text,
            content_hash: &content_hash(&text),
            radiologist_id: author.radiologist,
            signed_by: author.login,
        },
        now,
    )
    .await?;
    if kind == VersionKind::Final {
        assignment::mark_reported(&mut tx, study.id, now).await?;
    }
    audit::append(&mut tx, record).await?;
    let issued = reports::of_study(&mut tx, study.id)
        .await?
        .ok_or_else(|| DeskError::Corrupt("the report vanished".into()))?;
    let warn = owned(template.unfilled(&content, Rule::Warn));
    let view = view(&mut tx, uid, &issued, Some(author.radiologist), warn).await?;
    tx.commit().await?;
    Ok(view)
}

/// Appends a signed addendum to a final report. The caller has checked
/// the password.
pub async fn add_addendum(
    db: &Database,
    zones: &RouterService,
    author: &Author<'_>,
    uid: &str,
    addendum: &AddendumContent,
    record: &AuditRecord,
) -> Result<ReportView, DeskError> {
    if addendum.text.trim().is_empty() {
        return Err(ContentError(said!(
            "text: an addendum says something",
            "texte : un addendum ne peut pas être vide"
        ))
        .into());
    }
    if addendum.text.chars().count() > MAX_TEXT_CHARS {
        return Err(ContentError(said!(
            "text: at most {MAX_TEXT_CHARS} characters",
            "texte : au plus {MAX_TEXT_CHARS} caractères"
        ))
        .into());
    }
    let mut tx = db.begin_write().await?;
    let study = study_in(&mut tx, uid, author.scope).await?;
    require_reader(&mut tx, study.id, author.radiologist).await?;
    let report = reports::of_study(&mut tx, study.id).await?;
    lifecycle::check(
        report.as_ref().map(|r| r.status),
        false,
        Step::Issue(VersionKind::Addendum),
    )?;
    let Some(report) = report else {
        return Err(DeskError::Corrupt(
            "a report passed its checks without a row".into(),
        ));
    };
    let zone = zones
        .site_time_zone(&study.site)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let signed = AddendumContent {
        text: addendum.text.clone(),
        communications: crate::critical::statements(&mut tx, study.id, &zone, author.lang).await?,
    };
    let text = serde_json::to_string(&signed).map_err(|e| DeskError::Corrupt(e.to_string()))?;
    reports::issue(
        &mut tx,
        &report,
        &NewVersion {
            kind: VersionKind::Addendum,
            content: &text,
            content_hash: &content_hash(&text),
            radiologist_id: author.radiologist,
            signed_by: author.login,
        },
        record.at,
    )
    .await?;
    audit::append(&mut tx, record).await?;
    let issued = reports::of_study(&mut tx, study.id)
        .await?
        .ok_or_else(|| DeskError::Corrupt("the report vanished".into()))?;
    let view = view(&mut tx, uid, &issued, Some(author.radiologist), Vec::new()).await?;
    tx.commit().await?;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_is_sha256_hex() {
        assert_eq!(
            content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
