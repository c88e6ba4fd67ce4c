//! A radiologist claims a study (the claim is the acknowledgement: one
//! reader, escalation stops) or releases one they can no longer read.
//!
//! A claim takes the study the router gave them, or one from the pool of
//! their licensed sites (unassigned, or escalated and not yet
//! acknowledged); the licence still applies. A release gives the study
//! back: it is unassigned, with an alert, a new acknowledgement deadline
//! (past it, the escalation chain is called) and the releasing reader
//! marked as tried, so that the router's next pass offers it to someone
//! else.

use super::{Acting, AssignmentView, Forward, Router, RouterError, ms};
use crate::assignment::{self, AssignmentState, HistoryAction};
use crate::sla::sla_for;
use telerad_lang::said;
use telerad_store::audit;
use telerad_store::timers::{self, TimerKind};

impl Router {
    /// `radiologist_id` takes the study.
    pub async fn claim(
        &self,
        study_uid: &str,
        radiologist_id: &str,
        acting: &Acting<'_>,
    ) -> Result<AssignmentView, RouterError> {
        let reader = self.readers.get(radiologist_id).ok_or_else(|| {
            RouterError::BadRequest(said!(
                "unknown radiologist {radiologist_id:?}",
                "radiologue inconnu : {radiologist_id:?}"
            ))
        })?;
        let now = self.now();
        let mut tx = self.db().begin_write().await?;
        let (study_id, site, _) = self.study_row_in(&mut tx, study_uid, acting.scope).await?;
        let row = assignment::by_study(&mut tx, study_id)
            .await?
            .ok_or_else(|| {
                RouterError::Conflict(said!(
                    "study {study_uid} is not classified yet",
                    "l'examen {study_uid} n'a pas encore été trié"
                ))
            })?;
        let mine = row.radiologist_id.as_deref() == Some(radiologist_id);
        let from_pool = match (row.state, mine) {
            (AssignmentState::Acknowledged, true) => {
                // Claimed already (a second click): nothing to change but
                // the trail.
                audit::append(&mut tx, acting.audit).await?;
                tx.commit().await?;
                return self.view_of(study_uid).await;
            }
            (AssignmentState::Acknowledged, false) => {
                return Err({
                    let r = row.radiologist_id.as_deref();
                    let (by, par) = (r.unwrap_or("someone"), r.unwrap_or("quelqu'un"));
                    RouterError::Conflict(said!("already claimed by {by}", "déjà pris par {par}"))
                });
            }
            (AssignmentState::Assigned, true) => false,
            (AssignmentState::Unassigned, _) => true,
            (AssignmentState::Assigned, false) if row.escalation_level > 0 => true,
            (AssignmentState::Assigned, false) => {
                return Err({
                    let r = row.radiologist_id.as_deref();
                    let (to, à) = (r.unwrap_or("someone"), r.unwrap_or("quelqu'un"));
                    RouterError::Conflict(said!(
                        "the study is assigned to {to}: a coordinator reassigns it",
                        "l'examen est attribué à {à} : un coordinateur peut le réattribuer"
                    ))
                });
            }
        };
        if from_pool && !reader.sites.contains(&site) {
            return Err(RouterError::Conflict(said!(
                "{radiologist_id} is not licensed for site {site}",
                "{radiologist_id} n'a pas d'habilitation pour le site {site}"
            )));
        }
        let taken = sqlx::query(
            "UPDATE assignments SET state = 'acknowledged', radiologist_id = $2, \
             acknowledged_at = $3, acknowledge_by = NULL, updated_at = $3 \
             WHERE id = $1 AND state = $4 AND escalation_level = $5",
        )
        .bind(row.id)
        .bind(radiologist_id)
        .bind(now)
        .bind(row.state.as_str())
        .bind(row.escalation_level)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken != 1 {
            return Err(RouterError::Conflict(said!(
                "the assignment changed meanwhile; reload it",
                "l'attribution a changé entre-temps : rechargez-la"
            )));
        }
        timers::cancel(&mut tx, TimerKind::Acknowledgement, row.id.0).await?;
        assignment::mark_tried(&mut tx, row.id, radiologist_id).await?;
        if from_pool {
            let previous = row.radiologist_id.as_deref();
            let was = previous
                .map(|r| format!(" (was {r}, escalated)"))
                .unwrap_or_default();
            let avant = previous
                .map(|r| format!(" (auparavant {r}, escaladé)"))
                .unwrap_or_default();
            assignment::record(
                &mut tx,
                study_id,
                now,
                HistoryAction::Reassigned,
                Some(radiologist_id),
                &said!(
                    "claimed by {radiologist_id} from the pool{was}",
                    "pris par {radiologist_id} parmi les examens à prendre{avant}"
                ),
            )
            .await?;
            assignment::resolve_alerts(&mut tx, study_id, now).await?;
        }
        assignment::record(
            &mut tx,
            study_id,
            now,
            HistoryAction::Acknowledged,
            Some(radiologist_id),
            &said!("claimed", "pris"),
        )
        .await?;
        audit::append(&mut tx, acting.audit).await?;
        tx.commit().await?;
        if from_pool {
            self.forward(&Forward {
                study_instance_uid: study_uid.to_string(),
                radiologist_id: radiologist_id.to_string(),
            })
            .await;
        }
        self.view_of(study_uid).await
    }

    /// The reader who claimed the study gives it back.
    pub async fn release(
        &self,
        study_uid: &str,
        radiologist_id: &str,
        reason: &str,
        acting: &Acting<'_>,
    ) -> Result<AssignmentView, RouterError> {
        let now = self.now();
        let mut tx = self.db().begin_write().await?;
        let (study_id, _, _) = self.study_row_in(&mut tx, study_uid, acting.scope).await?;
        let row = assignment::by_study(&mut tx, study_id)
            .await?
            .filter(|r| {
                r.state == AssignmentState::Acknowledged
                    && r.radiologist_id.as_deref() == Some(radiologist_id)
            })
            .ok_or_else(|| {
                RouterError::Conflict(said!(
                    "{radiologist_id} has not claimed study {study_uid}: nothing to release",
                    "{radiologist_id} n'a pas pris l'examen {study_uid} : rien à rendre"
                ))
            })?;
        if row.reported_at.is_some() {
            return Err(RouterError::Conflict(said!(
                "the report is signed: the study is done",
                "le compte rendu est signé : l'examen est terminé"
            )));
        }
        let (ack, _) = sla_for(&self.sla, row.priority);
        let due = now + ms(ack);
        let released = sqlx::query(
            "UPDATE assignments SET state = 'unassigned', radiologist_id = NULL, \
             acknowledged_at = NULL, acknowledge_by = $2, updated_at = $3 \
             WHERE id = $1 AND state = 'acknowledged' AND radiologist_id = $4 \
             AND reported_at IS NULL",
        )
        .bind(row.id)
        .bind(due)
        .bind(now)
        .bind(radiologist_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if released != 1 {
            return Err(RouterError::Conflict(said!(
                "the assignment changed meanwhile (signed or taken); reload it",
                "l'attribution a changé entre-temps (compte rendu signé ou examen pris) : rechargez-la"
            )));
        }
        timers::schedule(&mut tx, TimerKind::Acknowledgement, row.id.0, due).await?;
        assignment::mark_tried(&mut tx, row.id, radiologist_id).await?;
        let detail = if reason.is_empty() {
            said!("released by {radiologist_id}", "rendu par {radiologist_id}")
        } else {
            said!(
                "released by {radiologist_id}: {reason}",
                "rendu par {radiologist_id} : {reason}"
            )
        };
        assignment::record(
            &mut tx,
            study_id,
            now,
            HistoryAction::Unassigned,
            None,
            &detail,
        )
        .await?;
        assignment::raise_alert(&mut tx, study_id, now, "released", detail.en()).await?;
        audit::append(&mut tx, acting.audit).await?;
        tx.commit().await?;
        self.view_of(study_uid).await
    }

    async fn view_of(&self, study_uid: &str) -> Result<AssignmentView, RouterError> {
        self.assignment(study_uid).await?.ok_or_else(|| {
            RouterError::NotFound(said!(
                "no assignment for {study_uid}",
                "aucune attribution pour {study_uid}"
            ))
        })
    }
}
