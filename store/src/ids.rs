//! Row ids as types of their own, so that a study's id cannot be passed
//! where an assignment's is expected (timers carry either, by kind).
//!
//! Each is the `BIGINT` primary key of its table, stored and bound as such
//! on both backends, and written as a plain number in JSON.

use serde::Serialize;

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A row of `studies`.
    StudyId
);
row_id!(
    /// A row of `study_events`.
    EventId
);
row_id!(
    /// A row of `assignments`.
    AssignmentId
);
row_id!(
    /// A row of `forward_jobs`.
    ForwardJobId
);
row_id!(
    /// A row of `users`.
    UserId
);
row_id!(
    /// A row of `credentials` (a session or an API token).
    CredentialId
);
