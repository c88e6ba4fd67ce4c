//! Credentials on both backends: a token is refused once expired, revoked,
//! or its account disabled, each with its own reason; an unknown hash is
//! unknown; ended sessions are removed; disabling moves the credentials
//! epoch.

mod common;

use common::open;
use telerad_fixtures::database::Backend;
use telerad_store::accounts::{
    self, CredentialKind, CredentialRefusal, NewCredential, NewUser, Role,
};

telerad_fixtures::on_every_backend!(credentials_are_refused_for_each_reason);

async fn credentials_are_refused_for_each_reason(backend: &Backend) {
    let (db, _pg, _dir) = open(backend).await;
    telerad_store::StudyIndex::new(db.clone())
        .sync_site("site-a", "Europe/Paris", 20)
        .await
        .expect("a site");
    let mut tx = db.begin_write().await.expect("a transaction");
    let user = accounts::create_user(
        &mut tx,
        &NewUser {
            login: "clin".into(),
            name: "Dr Clin".into(),
            role: Role::Clinician,
            radiologist_id: None,
            sites: vec!["site-a".into()],
            password_hash: Some("$argon2id$not-checked-here".into()),
        },
        1_000,
    )
    .await
    .expect("an account");
    let add = |hash: &'static str, expires_at: Option<i64>| NewCredential {
        user_id: user.id,
        kind: CredentialKind::Session,
        token_hash: hash,
        name: "test",
        expires_at,
    };
    let live = accounts::add_credential(&mut tx, &add("live", Some(10_000)), 1_000)
        .await
        .expect("a session");
    accounts::add_credential(&mut tx, &add("expired", Some(2_000)), 1_000)
        .await
        .expect("a session");
    let revoked = accounts::add_credential(&mut tx, &add("revoked", Some(10_000)), 1_000)
        .await
        .expect("a session");
    accounts::revoke_credential(&mut tx, revoked, 1_500)
        .await
        .expect("revoke");
    tx.commit().await.expect("commit");

    let check = |hash: &'static str| {
        let db = db.clone();
        async move {
            accounts::credential(&db, hash, 5_000)
                .await
                .expect("a lookup")
                .map(|valid| (valid.id, valid.user.sites))
        }
    };
    assert_eq!(check("live").await, Ok((live, vec!["site-a".to_string()])));
    assert_eq!(check("expired").await, Err(CredentialRefusal::Expired));
    assert_eq!(check("revoked").await, Err(CredentialRefusal::Revoked));
    assert_eq!(check("nobody").await, Err(CredentialRefusal::Unknown));

    // Sessions ended before 3,000 go; the live one stays.
    let epoch = accounts::credentials_epoch(&db).await.expect("the epoch");
    let removed = accounts::remove_old_sessions(&db, 3_000)
        .await
        .expect("remove");
    assert_eq!(removed, 2);
    assert_eq!(check("expired").await, Err(CredentialRefusal::Unknown));
    assert_eq!(check("live").await, Ok((live, vec!["site-a".to_string()])));

    let mut tx = db.begin_write().await.expect("a transaction");
    accounts::disable_user(&mut tx, "clin", 6_000)
        .await
        .expect("disable");
    tx.commit().await.expect("commit");
    assert_eq!(check("live").await, Err(CredentialRefusal::Disabled));
    // Disabling moved the epoch servers watch to forget what they verified.
    let moved = accounts::credentials_epoch(&db).await.expect("the epoch");
    assert!(moved > epoch, "{epoch} → {moved}");
}
