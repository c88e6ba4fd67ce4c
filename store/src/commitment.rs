//! Storage commitment (DICOM PS3.4 Annex J): which of the instances a site
//! asks about telerad holds. An instance is committed when it is indexed
//! for that site (an index row exists only once its file and folder were
//! synced) and its file is still where the index says; another site's
//! instance is as unknown as one never received.

use crate::archive::Archive;
use std::collections::HashMap;
use telerad_dicom::commitment::{Reference, reason};

/// UIDs looked up per query.
const CHUNK: usize = 500;

impl Archive {
    /// Per reference, `None` when committed, else the failure reason
    /// (PS3.3 C.14.1.1).
    pub async fn commitment(
        &self,
        site: &str,
        references: &[Reference],
    ) -> Result<Vec<Option<u16>>, sqlx::Error> {
        // The newest version of each instance the site holds: its class
        // and file.
        let mut held: HashMap<String, (String, String)> = HashMap::new();
        for chunk in references.chunks(CHUNK) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT i.sop_instance_uid, i.sop_class_uid, i.path FROM instances i \
                 JOIN studies s ON s.id = i.study_id \
                 WHERE s.site = $1 AND i.sop_instance_uid IN ({placeholders}) \
                 ORDER BY i.version"
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(site);
            for reference in chunk {
                query = query.bind(&reference.sop_instance_uid);
            }
            let rows: Vec<(String, String, String)> = query.fetch_all(self.index().pool()).await?;
            for (sop, class, path) in rows {
                held.insert(sop, (class, path));
            }
        }
        let mut outcomes = Vec::with_capacity(references.len());
        for reference in references {
            let outcome = match held.get(&reference.sop_instance_uid) {
                None => Some(reason::NO_SUCH_OBJECT_INSTANCE),
                Some((class, _)) if *class != reference.sop_class_uid => {
                    Some(reason::CLASS_INSTANCE_CONFLICT)
                }
                Some((_, path)) => {
                    let file = self.layout().absolute(path);
                    match tokio::fs::metadata(&file).await {
                        Ok(meta) if meta.is_file() => None,
                        _ => {
                            tracing::error!(
                                sop_instance_uid = %reference.sop_instance_uid,
                                path = %file.display(),
                                "storage commitment: an indexed instance's file is missing"
                            );
                            Some(reason::PROCESSING_FAILURE)
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}
