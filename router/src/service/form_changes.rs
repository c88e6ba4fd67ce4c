//! The site corrects or calls off its request forms: an amendment keeps
//! the text it replaces, may match a waiting form to its study (the
//! accession number was mistyped) and, if it raises the urgency, the study's
//! priority ([`Router::apply_form`]); a form is amended until the report
//! is signed. A form still waiting for its images can be cancelled. Each in
//! one transaction with its audit record.

use super::{Acting, FiledForm, Reprioritised, Router, RouterError, study_has_form};
use telerad_lang::said;
use telerad_store::forms::{self, Amendment, FormError, Revision, StoredForm};
use telerad_store::{Backend, Scope, audit, reports, study_rows};

impl Router {
    /// The form `id`, locked, if `scope` covers its site; another site's
    /// form is not found.
    async fn form_in(
        &self,
        tx: &mut telerad_store::events::Tx<'_>,
        id: i64,
        scope: &Scope,
    ) -> Result<StoredForm, RouterError> {
        let postgres = self.db().backend == Backend::Postgres;
        match forms::by_id_for_update(tx, id, postgres).await? {
            Some(form) if scope.covers_site(&form.site) => Ok(form),
            _ => Err(RouterError::NotFound(said!(
                "no request form {id}",
                "aucune demande d'examen {id}"
            ))),
        }
    }

    /// Replaces the text of form `id` (its site unchanged).
    pub async fn amend_form(
        &self,
        id: i64,
        amendment: &Amendment<'_>,
        acting: &Acting<'_>,
    ) -> Result<FiledForm, RouterError> {
        let mut tx = self.db().begin_write().await?;
        let current = self.form_in(&mut tx, id, acting.scope).await?;
        if current.cancelled_at.is_some() {
            return Err(RouterError::Conflict(said!(
                "request form {id} was cancelled: file a new one",
                "la demande d'examen {id} a été annulée : déposez-en une nouvelle"
            )));
        }
        // The report's row is locked (on PostgreSQL) before its status is
        // read: a signature committing meanwhile is seen, not overtaken.
        if let Some(study_id) = current.study_id
            && reports::status_for_update(&mut tx, study_id, self.db().backend == Backend::Postgres)
                .await?
                .is_some_and(|status| status.is_signed())
        {
            return Err(RouterError::Conflict(said!(
                "the report is signed: the form can no longer change (ask for an addendum)",
                "le compte rendu est signé : la demande ne peut plus changer (demandez un addendum)"
            )));
        }
        let study_id = forms::amend(&mut tx, &current, amendment)
            .await
            .map_err(|e| match e {
                FormError::StudyHasForm => RouterError::Conflict(study_has_form()),
                FormError::Database(e) => RouterError::Database(e),
            })?;
        let (study_instance_uid, reprioritised) = match study_id {
            Some(study_id) => {
                let uid = study_rows::uid_of(&mut tx, study_id).await?;
                let reprioritised = self.apply_form(&mut tx, study_id).await?;
                if current.study_id.is_none() {
                    forms::form_added(&mut tx, study_id, id, amendment.at).await?;
                }
                (Some(uid), reprioritised)
            }
            None => (None, None),
        };
        let mut record = acting.audit.clone();
        record.object = format!("form/{id}");
        record.study_uid = study_instance_uid.clone();
        audit::append(&mut tx, &record).await?;
        tx.commit().await?;
        if reprioritised.is_some() {
            self.outbox.reranked();
        }
        Ok(FiledForm {
            id,
            study_instance_uid,
            reprioritised: reprioritised.map(|(from, to)| Reprioritised { from, to }),
        })
    }

    /// Cancels form `id`, which must still wait for its images.
    pub async fn cancel_form(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        acting: &Acting<'_>,
    ) -> Result<StoredForm, RouterError> {
        let now = self.now();
        let mut tx = self.db().begin_write().await?;
        let current = self.form_in(&mut tx, id, acting.scope).await?;
        if !forms::cancel(&mut tx, id, by, reason, now).await? {
            let (why, pourquoi) = if current.cancelled_at.is_some() {
                ("was cancelled already", "est déjà annulée")
            } else {
                (
                    "has its study: amend it instead",
                    "est déjà rattachée à son examen : modifiez-la plutôt",
                )
            };
            return Err(RouterError::Conflict(said!(
                "request form {id} {why}",
                "la demande d'examen {id} {pourquoi}"
            )));
        }
        let mut record = acting.audit.clone();
        record.object = format!("form/{id}");
        record.patient_id = Some(current.patient_id.clone());
        audit::append(&mut tx, &record).await?;
        let cancelled = self.form_in(&mut tx, id, acting.scope).await?;
        tx.commit().await?;
        Ok(cancelled)
    }

    /// Forms of the scope's sites still waiting for their images, newest
    /// first; audited by the caller with what was shown.
    pub async fn waiting_forms(
        &self,
        scope: &Scope,
        limit: i64,
    ) -> Result<Vec<StoredForm>, RouterError> {
        let mut tx = self.db().begin().await?;
        let waiting = forms::waiting(&mut tx, scope, limit).await?;
        tx.rollback().await?;
        Ok(waiting)
    }

    /// Form `id`, its study's UID if it has one, and its earlier texts.
    pub async fn form_by_id(
        &self,
        id: i64,
        scope: &Scope,
    ) -> Result<(StoredForm, Option<String>, Vec<Revision>), RouterError> {
        let mut tx = self.db().begin().await?;
        let form = match forms::by_id_for_update(&mut tx, id, false).await? {
            Some(form) if scope.covers_site(&form.site) => form,
            _ => {
                return Err(RouterError::NotFound(said!(
                    "no request form {id}",
                    "aucune demande d'examen {id}"
                )));
            }
        };
        let revisions = forms::revisions(&mut tx, id).await?;
        let uid = match form.study_id {
            Some(study_id) => Some(study_rows::uid_of(&mut tx, study_id).await?),
            None => None,
        };
        tx.rollback().await?;
        Ok((form, uid, revisions))
    }
}
