//! Second opinions (téléexpertise): the reader who claimed a study asks a
//! colleague of another subspecialty. The rota chooses: among those on
//! duty now for that subspecialty and licensed for the study's site (not
//! the asker), a primary before a backup, then the one with the fewest
//! consults still open, then by id. Nobody on duty is a 409 that says so:
//! the reader then phones whoever they know.

use super::{Acting, Router, RouterError};
use crate::assignment::{self, AssignmentState};
use telerad_config::{Role, SUBSPECIALTIES};
use telerad_lang::said;
use telerad_store::audit;
use telerad_store::consults::{self, Consult, NewConsult};

impl Router {
    pub async fn request_consult(
        &self,
        study_uid: &str,
        requester: &str,
        subspecialty: &str,
        question: &str,
        acting: &Acting<'_>,
    ) -> Result<Consult, RouterError> {
        if !SUBSPECIALTIES.contains(&subspecialty) {
            return Err({
                let known = SUBSPECIALTIES.join(", ");
                RouterError::BadRequest(said!(
                    "subspecialty: {subspecialty:?} is not one of {known}",
                    "surspécialité : {subspecialty:?} n'est pas l'une de {known}"
                ))
            });
        }
        let now = self.now();
        let mut tx = self.db().begin_write().await?;
        let (study_id, site, _) = self.study_row_in(&mut tx, study_uid, acting.scope).await?;
        let claimed = assignment::by_study(&mut tx, study_id)
            .await?
            .is_some_and(|row| {
                row.state == AssignmentState::Acknowledged
                    && row.radiologist_id.as_deref() == Some(requester)
            });
        if !claimed {
            return Err(RouterError::Conflict(said!(
                "claim the study before asking a colleague's opinion",
                "prenez l'examen avant de demander l'avis d'un confrère"
            )));
        }
        let mut candidates = Vec::new();
        for duty in self.duties_at(now) {
            let licensed = self
                .readers
                .get(&duty.radiologist_id)
                .is_some_and(|reader| reader.sites.contains(&site));
            if duty.subspecialty == subspecialty && duty.radiologist_id != requester && licensed {
                let open = consults::open_for(&mut tx, &duty.radiologist_id)
                    .await?
                    .len();
                candidates.push((duty.role != Role::Primary, open, duty.radiologist_id));
            }
        }
        candidates.sort();
        let Some((_, _, consultant)) = candidates.into_iter().next() else {
            return Err(RouterError::Conflict(said!(
                "nobody on duty reads {subspecialty} for site {site} now",
                "personne de garde ne lit en {subspecialty} pour le site {site} en ce moment"
            )));
        };
        let id = consults::request(
            &mut tx,
            &NewConsult {
                study_id,
                requested_by: requester,
                subspecialty,
                question,
                consultant: &consultant,
                at: now,
            },
        )
        .await?;
        let mut record = acting.audit.clone();
        record.detail = serde_json::json!({ "consult": id, "consultant": consultant }).to_string();
        audit::append(&mut tx, &record).await?;
        let consult = consults::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| RouterError::Corrupt(format!("consult {id} vanished")))?;
        tx.commit().await?;
        Ok(consult)
    }
}
