//! Who may do what: accounts and their passwords, sessions and API tokens
//! ([`service::Access`]), the one policy that decides every request
//! ([`policy::decide`]), the extractor through which handlers get an
//! authorised caller and write audit records ([`caller::Caller`]), and the
//! routes of signing in and out, of accounts and of the audit trail
//! ([`routes`]).
//!
//! Handlers never look at a role: they name the action they perform, and
//! receive the scope of studies the caller may see, or a refusal the
//! caller is answered with. It is not for storing accounts or audit
//! records (`telerad-store`), nor for the plumbing every API shares
//! (`telerad-http`).

pub mod caller;
pub mod fhir;
pub mod password;
pub mod policy;
pub mod routes;
pub mod service;
pub mod throttle;
pub mod token;
pub mod verified;

pub use caller::Caller;
pub use policy::Action;
pub use service::Access;

/// Accounts for tests of the routes that sit on this crate.
pub mod testing {
    use crate::service::{Access, Actor, NewAccount};
    use telerad_store::accounts::Role;

    /// An administrator's API token (a new `admin-N` account each call).
    pub async fn admin_token(access: &Access) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let login = format!(
            "admin-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let by = Actor::command_line();
        access
            .create_user(
                &NewAccount {
                    login: login.clone(),
                    name: login.clone(),
                    role: Role::Admin,
                    sites: Vec::new(),
                    radiologist_id: None,
                },
                Some("a test password, long enough"),
                &by,
            )
            .await
            .expect("create an administrator");
        access
            .create_token(&login, "test", None, &by)
            .await
            .expect("create a token")
    }
}
