//! What a WADO-RS path names (a study, a series of it, an instance of
//! that) and the checks every retrieval makes before it reads anything:
//! the study within the caller's scope (else 404, audited as failed), the
//! instances found (else 404 naming what was not).

use telerad_access::{Action, Caller};
use telerad_http::ApiError;
use telerad_store::audit::{AuditRecord, Outcome};
use telerad_store::qido::{InstanceHit, InstanceSearch};
use telerad_store::{Archive, Scope};

/// Instances in one answer: a study of 20,000 images is retrieved by
/// series.
pub const MAX_INSTANCES: i64 = 20_000;

/// Which instances, by the path's UIDs (checked).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub study: &'a str,
    pub series: Option<&'a str>,
    pub instance: Option<&'a str>,
}

/// A target whose study the caller may see: the scope to search it in,
/// and the audit record of the retrieval (naming the patient).
pub struct Opened {
    pub scope: Scope,
    pub record: AuditRecord,
}

impl<'a> Target<'a> {
    /// Checks the path's UIDs; `what` of each names it in the 400.
    pub fn parse(
        study: &'a str,
        series: Option<&'a str>,
        instance: Option<&'a str>,
    ) -> Result<Self, ApiError> {
        Ok(Target {
            study: crate::uid(study, "study")?,
            series: series.map(|s| crate::uid(s, "series")).transpose()?,
            instance: instance.map(|i| crate::uid(i, "instance")).transpose()?,
        })
    }

    /// The study in the caller's scope, for `action`: a 404 (audited)
    /// when it is not.
    pub async fn open(
        &self,
        caller: &Caller,
        archive: &Archive,
        action: &str,
    ) -> Result<Opened, ApiError> {
        let scope = caller.allow(Action::ReadStudies).await?;
        let Some(summary) = archive.index().study(self.study, &scope).await? else {
            let record = caller.study_record(action, self.study, None);
            let error = ApiError::NotFound(format!("no study {}", self.study));
            return Err(caller.not_done(record, Outcome::Failed, error).await);
        };
        let record = caller.study_record(action, self.study, Some(&summary.patient_id));
        Ok(Opened { scope, record })
    }

    /// The search of its instances, at most [`MAX_INSTANCES`] + 1 of them
    /// (one more tells a study too large).
    pub fn search(&self) -> InstanceSearch {
        InstanceSearch {
            study_instance_uids: vec![self.study.to_string()],
            series_instance_uids: self.series.map(str::to_string).into_iter().collect(),
            sop_instance_uids: self.instance.map(str::to_string).into_iter().collect(),
            limit: MAX_INSTANCES + 1,
            ..InstanceSearch::default()
        }
    }

    /// The instances it names within the caller's scope, for `action`,
    /// with the retrieval's audit record: one search, which also proves
    /// the study in scope. Only when nothing is found is the study looked
    /// up, to tell an unknown study from an unknown series or instance
    /// (each a 404, audited as failed).
    pub async fn found(
        &self,
        caller: &Caller,
        archive: &Archive,
        action: &str,
    ) -> Result<(Opened, Vec<InstanceHit>), ApiError> {
        let scope = caller.allow(Action::ReadStudies).await?;
        let hits = archive
            .index()
            .search_instances(&self.search(), &scope)
            .await?;
        let Some(first) = hits.first() else {
            let opened = self.open(caller, archive, action).await?;
            self.check_found(caller, &opened, 0).await?;
            return Err(ApiError::Internal("nothing found and then found".into()));
        };
        let record = caller.study_record(action, self.study, Some(&first.patient_id));
        let opened = Opened { scope, record };
        self.check_found(caller, &opened, hits.len()).await?;
        Ok((opened, hits))
    }

    /// The 404 when nothing matched, audited as failed; the 400 when too
    /// much did.
    pub async fn check_found(
        &self,
        caller: &Caller,
        opened: &Opened,
        found: usize,
    ) -> Result<(), ApiError> {
        if found == 0 {
            let what = match (self.series, self.instance) {
                (Some(series), Some(instance)) => {
                    format!("no instance {instance} in series {series}")
                }
                (Some(series), None) => format!("no series {series} in study {}", self.study),
                _ => format!("no instance in study {}", self.study),
            };
            let error = ApiError::NotFound(what);
            return Err(caller
                .not_done(opened.record.clone(), Outcome::Failed, error)
                .await);
        }
        if i64::try_from(found).unwrap_or(i64::MAX) > MAX_INSTANCES {
            let error = ApiError::BadRequest(format!(
                "study {} has more than {MAX_INSTANCES} instances: retrieve it by series",
                self.study
            ));
            return Err(caller
                .not_done(opened.record.clone(), Outcome::Failed, error)
                .await);
        }
        Ok(())
    }
}
