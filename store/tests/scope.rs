//! Reads of patient data are narrowed to the caller's sites: another site's
//! study is not found, as if it did not exist.

use telerad_dicom::inspect::InstanceAttributes;
use telerad_fixtures::database::{Backend, PgDatabase};
use telerad_store::index::NewInstance;
use telerad_store::{Database, Scope, StudyIndex, StudyPageQuery};

async fn index_with_one_study(url: &str) -> StudyIndex {
    let index = StudyIndex::new(Database::connect(url).await.expect("connect"));
    for site in ["site-a", "site-b"] {
        index
            .sync_site(site, "Europe/Paris", 20)
            .await
            .expect("a site");
    }
    index
        .record_instance(&NewInstance {
            site: "site-a".into(),
            attributes: InstanceAttributes {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                sop_instance_uid: "1.2.3.4.1.1".into(),
                study_instance_uid: "1.2.3.4".into(),
                series_instance_uid: "1.2.3.4.1".into(),
                patient_name: "DOE^JANE".into(),
                ..InstanceAttributes::default()
            },
            version: 1,
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            path: "studies/1.2.3.4/1.2.3.4.1/1.2.3.4.1.1.dcm".into(),
            size_bytes: 1,
            checksum: "x".into(),
            calling_ae_title: "SITE_A".into(),
            received_at: 1,
            complete_after: 2,
        })
        .await
        .expect("an instance");
    index
}

async fn another_sites_study_is_not_found(url: &str) {
    let index = index_with_one_study(url).await;
    let page = StudyPageQuery {
        limit: 10,
        ..StudyPageQuery::default()
    };
    for (scope, visible) in [
        (Scope::All, true),
        (Scope::site("site-a"), true),
        (Scope::Sites(vec!["site-b".into(), "site-a".into()]), true),
        (Scope::site("site-b"), false),
        (Scope::Sites(Vec::new()), false),
    ] {
        let what = format!("{scope:?}");
        assert_eq!(
            index
                .study_page(&page, &scope)
                .await
                .expect("a page")
                .studies
                .len(),
            usize::from(visible),
            "{what}"
        );
        assert_eq!(
            index
                .study("1.2.3.4", &scope)
                .await
                .expect("study")
                .is_some(),
            visible,
            "{what}"
        );
        assert_eq!(
            index
                .series_of("1.2.3.4", &scope)
                .await
                .expect("series")
                .len(),
            usize::from(visible),
            "{what}"
        );
        assert_eq!(
            index
                .instances_of("1.2.3.4", &scope)
                .await
                .expect("instances")
                .len(),
            usize::from(visible),
            "{what}"
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn sqlite_another_sites_study_is_not_found() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("index.db").display());
    runtime().block_on(another_sites_study_is_not_found(&url));
}

#[test]
#[cfg_attr(not(telerad_postgres), ignore = "TELERAD_TEST_POSTGRES_URL is not set")]
fn postgres_another_sites_study_is_not_found() {
    let Backend::Postgres { admin_url } = Backend::required_postgres() else {
        unreachable!("required_postgres returns PostgreSQL or panics");
    };
    runtime().block_on(async {
        let db = PgDatabase::create(&admin_url).await;
        another_sites_study_is_not_found(&db.url).await;
    });
}
