//! `GET /api/forwards`, `POST /api/forwards/{id}/retry` and
//! `POST /api/forwards/retry`: the operators' view of deliveries to
//! radiologists' workstations, above all the `dead` ones (with why they
//! failed), and the way to send one, or all those of a study or a
//! destination, again.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telerad_access::{Access, Action, Caller};
use telerad_http::ApiError;
use telerad_http::paging::{self, Page};
use telerad_lang::said;
use telerad_store::ForwardJobId;
use telerad_store::audit::Outcome;
use telerad_store::outbox::{ForwardJob, Outbox, OutboxError, RetryScope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The handlers need the outbox only; taking just that lets them be served
/// (and tested) without the rest of the application state.
pub fn routes<S>() -> OpenApiRouter<S>
where
    Arc<Outbox>: FromRef<S>,
    Arc<Access>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retry_dead))
        .routes(routes!(retry))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending`, `sending`, `sent` or `dead`.
    state: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Forwards of instances to workstations, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/forwards",
    tag = "operations",
    params(ListQuery),
    responses((status = 200, description = "One page of forward jobs", body = Page<ForwardJob>))
)]
async fn list(
    caller: Caller,
    State(outbox): State<Arc<Outbox>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<ForwardJob>>, ApiError> {
    caller.allow(Action::Operate).await?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = paging::limit(query.limit)?;
    let before = match query.cursor.as_deref() {
        Some(text) => Some(ForwardJobId(paging::row_id(
            text,
            "the next_cursor of a previous page",
        )?)),
        None => None,
    };
    let page = outbox
        .page(query.state.as_deref(), before, limit)
        .await
        .map_err(api_error)?;
    caller
        .audit(&caller.record("forward.list", "forwards".into()))
        .await?;
    Ok(Json(Page::new(
        page.jobs,
        "/api/forwards",
        &[("state", query.state.as_deref())],
        limit,
        page.next.map(|id| id.to_string()),
    )))
}

/// Which dead jobs to re-queue: exactly one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    study_instance_uid: Option<String>,
    destination: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Requeued {
    requeued: u64,
}

/// `POST /api/forwards/retry`: every dead job of a study or of a
/// destination back in the queue, in one call.
#[utoipa::path(
    post,
    path = "/api/forwards/retry",
    tag = "operations",
    request_body = RetryBody,
    responses((status = 200, description = "How many dead jobs were queued again", body = Requeued))
)]
async fn retry_dead(
    caller: Caller,
    State(outbox): State<Arc<Outbox>>,
    json: Result<Json<RetryBody>, JsonRejection>,
) -> Result<Json<Requeued>, ApiError> {
    caller.allow(Action::Operate).await?;
    const EXPECTED: &str =
        "expected {\"study_instance_uid\": \"UID\"} or {\"destination\": \"name or AE title\"}";
    let Json(body) = json.map_err(|e| ApiError::from_json_rejection(&e, EXPECTED))?;
    let scope = match (&body.study_instance_uid, &body.destination) {
        (Some(uid), None) => RetryScope::Study(
            telerad_dicom::uid::validate_uid(uid)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        (None, Some(destination)) if !destination.trim().is_empty() => {
            RetryScope::Destination(destination.trim())
        }
        _ => return Err(ApiError::BadRequest(EXPECTED.to_owned())),
    };
    let record = match &body.study_instance_uid {
        Some(uid) => caller.study_record("forward.retry", uid, None),
        None => caller.record("forward.retry", "forwards".into()),
    };
    let requeued = outbox
        .retry_dead(scope, |requeued| {
            let mut record = record.clone();
            record.detail = serde_json::json!({
                "destination": body.destination, "requeued": requeued,
            })
            .to_string();
            record
        })
        .await;
    match requeued {
        Ok(requeued) => Ok(Json(Requeued { requeued })),
        Err(e) => Err(caller.not_done(record, Outcome::Failed, api_error(e)).await),
    }
}

/// Sends one dead forward job again.
#[utoipa::path(
    post,
    path = "/api/forwards/{id}/retry",
    tag = "operations",
    params(("id" = i64, Path, description = "A forward job id", minimum = 1)),
    responses(
        (status = 200, description = "The job, pending again", body = ForwardJob),
        (status = 409, description = "The job is not dead", body = telerad_http::openapi::ErrorBody),
    )
)]
async fn retry(
    caller: Caller,
    State(outbox): State<Arc<Outbox>>,
    Path(id): Path<String>,
) -> Result<Json<ForwardJob>, ApiError> {
    caller.allow(Action::Operate).await?;
    let id = paging::row_id(&id, "a forward job id")?;
    let record = caller.record("forward.retry", format!("forward/{id}"));
    let error = match outbox.retry(ForwardJobId(id), &record).await {
        Ok(Some(job)) => return Ok(Json(job)),
        Ok(None) => ApiError::said(
            ApiError::NotFound,
            said!("no forward job {id}", "aucun envoi {id}"),
        ),
        Err(e) => api_error(e),
    };
    Err(caller.not_done(record, Outcome::Failed, error).await)
}

fn api_error(e: OutboxError) -> ApiError {
    match e {
        OutboxError::Database(e) => ApiError::Database(e),
        OutboxError::InvalidState(_) => ApiError::BadRequest(e.to_string()),
        OutboxError::NotRetryable { ref id, ref state } => {
            let french = format!(
                "l'envoi {id} est à l'état « {state} » : seuls les envois abandonnés (dead) ou en attente (pending) se relancent"
            );
            ApiError::Conflict(e.to_string()).french(french)
        }
        OutboxError::UnknownStudy(_)
        | OutboxError::InvalidDestination { .. }
        | OutboxError::Corrupt { .. } => ApiError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! The endpoints served on a real socket and called as an operator's
    //! tool would, over a real archive whose jobs died against a
    //! workstation that does not answer.

    use super::*;
    use std::time::Duration;
    use telerad_store::outbox::{Destination, JobState, RetryPolicy};
    use telerad_store::{Archive, InstanceHeader, SystemClock};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    async fn archive_with_study(dir: &std::path::Path) -> (Arc<Archive>, String) {
        let config = format!(
            "[storage]\ndata_dir = \"{}\"\n\n[[sites]]\nname = \"site-a\"\n\
             ae_titles = [\"SITE_A\"]\nallowed_networks = []\ntime_zone = \"Europe/Paris\"\n",
            dir.join("data").display()
        );
        let config = telerad_config::Config::from_toml_str(&config).expect("a test config");
        let archive = Archive::open(&config, Arc::new(SystemClock))
            .await
            .expect("open the archive");
        let study = telerad_fixtures::SyntheticStudy::ct(2);
        for path in study.write_to(&dir.join("ct")).expect("write a CT") {
            let file = telerad_scp::FileToSend::read(&path).expect("a fixture");
            let bytes = std::fs::read(&path).expect("read a fixture");
            let offset = usize::try_from(file.dataset_offset).expect("an offset");
            let mut pending = archive
                .begin(InstanceHeader {
                    sop_class_uid: file.sop_class_uid,
                    sop_instance_uid: file.sop_instance_uid,
                    transfer_syntax_uid: file.transfer_syntax_uid,
                    calling_ae_title: "SITE_A".into(),
                })
                .expect("begin");
            pending.write(&bytes[offset..]);
            archive.commit(pending, "site-a").await.expect("store");
        }
        (Arc::new(archive), study.study_instance_uid)
    }

    /// (status, JSON body) of a request, from a blocking thread.
    async fn call(token: &str, method: &'static str, url: String) -> (u16, serde_json::Value) {
        send(token, method, url, None::<String>).await
    }

    /// As [`call`], with a JSON body for a POST.
    async fn send(
        token: &str,
        method: &'static str,
        url: String,
        json: Option<impl Into<String>>,
    ) -> (u16, serde_json::Value) {
        let json: Option<String> = json.map(Into::into);
        let bearer = format!("Bearer {token}");
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let mut response = match (method, json) {
                ("POST", Some(json)) => agent
                    .post(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .send(json.as_str()),
                ("POST", None) => agent
                    .post(&url)
                    .header("authorization", &bearer)
                    .send_empty(),
                _ => agent.get(&url).header("authorization", &bearer).call(),
            }
            .expect("an HTTP answer");
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .read_to_string()
                .expect("a response body");
            let json =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
            (status, json)
        })
        .await
        .expect("the HTTP client thread")
    }

    /// An archive with a two-image study whose two forward jobs died
    /// against a workstation that does not answer.
    async fn dead_jobs(dir: &std::path::Path) -> (Arc<Archive>, Arc<Outbox>, String, Destination) {
        let (archive, study) = archive_with_study(dir).await;
        let outbox = Arc::new(Outbox::new(
            archive.index().database().clone(),
            RetryPolicy {
                base: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                max_attempts: 1,
            },
        ));
        // Nothing listens there: one refused connection and the jobs
        // are dead.
        let destination = Destination {
            name: "dr-martin".into(),
            ae_title: "MARTIN_WS".into(),
            host: "127.0.0.1".into(),
            port: free_port(),
        };
        assert_eq!(
            outbox
                .enqueue_study(&study, &destination)
                .await
                .expect("enqueue"),
            2
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let forwarder = tokio::spawn(telerad_forward::forwarder::run_forwarder(
            outbox.clone(),
            archive.clone(),
            telerad_forward::forwarder::Sender::plain("TELERAD"),
            1,
            stopped,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while outbox.list(Some("dead"), 10).await.expect("list").len() < 2 {
            assert!(std::time::Instant::now() < deadline, "jobs not dead");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        forwarder.await.expect("the forwarder stops");
        (archive, outbox, study, destination)
    }

    #[derive(Clone)]
    struct State {
        outbox: Arc<Outbox>,
        access: Arc<Access>,
    }

    impl FromRef<State> for Arc<Outbox> {
        fn from_ref(state: &State) -> Arc<Outbox> {
            state.outbox.clone()
        }
    }

    impl FromRef<State> for Arc<Access> {
        fn from_ref(state: &State) -> Arc<Access> {
            state.access.clone()
        }
    }

    /// The forward routes on a free port; their base URL, and an
    /// administrator's token.
    async fn serve(archive: &Archive, outbox: Arc<Outbox>) -> (String, String) {
        let access = Arc::new(
            Access::with_licences(
                archive.index().database().clone(),
                Arc::new(SystemClock),
                Default::default(),
                archive
                    .layout()
                    .root()
                    .join(telerad_access::service::AUDIT_SPOOL),
                telerad_store::audit_spool::Orphans::Adopt,
            )
            .expect("the audit spool"),
        );
        let token = telerad_access::testing::admin_token(&access).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let app = axum::Router::from(routes::<State>()).with_state(State { outbox, access });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, token)
    }

    #[test]
    fn operators_list_dead_jobs_and_retry_them() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("a temp dir");
            let (archive, outbox, study, destination) = dead_jobs(dir.path()).await;
            let (base, token) = serve(&archive, outbox.clone()).await;

            let (status, body) = call(
                &token,
                "GET",
                format!("{base}/api/forwards?state=dead&limit=100"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let jobs = body["items"].as_array().expect("a list");
            assert_eq!(jobs.len(), 2);
            assert_eq!(body["next"], serde_json::Value::Null, "one page holds all");
            let job = &jobs[0];
            assert_eq!(job["state"], "dead");
            assert_eq!(job["attempts"], 1);
            assert_eq!(job["possible_duplicate"], false);
            assert_eq!(job["destination"]["ae_title"], "MARTIN_WS");
            assert_eq!(job["destination"]["name"], "dr-martin");
            assert_eq!(job["destination"]["port"], destination.port);
            assert_eq!(job["study_instance_uid"], study.as_str());
            let error = job["last_error"].as_str().expect("an error");
            assert!(
                error.contains("cannot open an association with MARTIN_WS"),
                "{error}"
            );
            assert!(
                jobs[0]["id"].as_i64() > jobs[1]["id"].as_i64(),
                "newest first"
            );

            let id = ForwardJobId(job["id"].as_i64().expect("an id"));
            let (status, body) =
                call(&token, "POST", format!("{base}/api/forwards/{id}/retry")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                (body["id"].as_i64(), &body["state"], &body["attempts"]),
                (Some(id.0), &"pending".into(), &0.into())
            );
            let (_, body) = call(&token, "GET", format!("{base}/api/forwards?state=dead")).await;
            assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
            let (_, body) = call(&token, "GET", format!("{base}/api/forwards")).await;
            assert_eq!(
                body["items"].as_array().map(Vec::len),
                Some(2),
                "all states"
            );

            // One job a page: the first page says where the second is, the
            // second is the last.
            let (_, first) = call(&token, "GET", format!("{base}/api/forwards?limit=1")).await;
            let next = first["next"].as_str().expect("a next page").to_owned();
            assert_eq!(
                next,
                format!("/api/forwards?limit=1&cursor={}", first["items"][0]["id"])
            );
            let (_, second) = call(&token, "GET", format!("{base}{next}")).await;
            assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
            assert!(second["items"][0]["id"].as_i64() < first["items"][0]["id"].as_i64());
            assert_eq!(second["next"], serde_json::Value::Null, "{second}");

            // Delivered by hand through the forwarder's own calls: a sent
            // job cannot be retried.
            let claimed = outbox.claim(&destination, "test", 10).await.expect("claim");
            assert_eq!(claimed.len(), 1);
            assert_eq!(outbox.begin_send(&[id], "test").await.expect("begin"), [id]);
            assert_eq!(outbox.record_sent(&[id], "test").await.expect("sent"), [id]);
            assert_eq!(
                outbox.job(id).await.expect("job").map(|j| j.state),
                Some(JobState::Sent)
            );
            let (status, body) =
                call(&token, "POST", format!("{base}/api/forwards/{id}/retry")).await;
            assert_eq!(status, 409, "{body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("is sent"),
                "{body}"
            );

            for (method, path, expected) in [
                ("POST", "/api/forwards/987654321/retry".to_string(), 404),
                ("POST", "/api/forwards/abc/retry".to_string(), 400),
                ("POST", "/api/forwards/-3/retry".to_string(), 400),
                ("GET", "/api/forwards?state=lost".to_string(), 400),
                ("GET", "/api/forwards?limit=0".to_string(), 400),
                ("GET", "/api/forwards?limit=many".to_string(), 400),
                ("GET", "/api/forwards?colour=red".to_string(), 400),
                ("GET", "/api/forwards?cursor=x".to_string(), 400),
                ("GET", "/api/forwards?limit=1001".to_string(), 400),
            ] {
                let (status, body) = call(&token, method, format!("{base}{path}")).await;
                assert_eq!(status, expected, "{method} {path}: {body}");
                assert!(body["error"].is_string(), "{method} {path}: {body}");
            }
        });
    }

    #[test]
    fn dead_jobs_are_retried_by_study_or_destination_in_one_call() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("a temp dir");
            let (archive, outbox, study, _) = dead_jobs(dir.path()).await;
            let (base, token) = serve(&archive, outbox.clone()).await;
            let retry = format!("{base}/api/forwards/retry");
            let dead = || async {
                let page = outbox.page(Some("dead"), None, 10).await.expect("page");
                page.jobs.len()
            };

            // Nothing of another destination or study: nothing re-queued.
            for other in [
                r#"{"destination": "OTHER_WS"}"#,
                r#"{"study_instance_uid": "1.2.3.4"}"#,
            ] {
                let (status, body) = send(&token, "POST", retry.clone(), Some(other)).await;
                assert_eq!((status, &body["requeued"]), (200, &0.into()), "{other}");
            }
            assert_eq!(dead().await, 2);

            // By destination (its AE title here): both jobs.
            let (status, body) = send(
                &token,
                "POST",
                retry.clone(),
                Some(r#"{"destination": "MARTIN_WS"}"#),
            )
            .await;
            assert_eq!((status, &body["requeued"]), (200, &2.into()), "{body}");
            assert_eq!(dead().await, 0);
            let pending = outbox.page(Some("pending"), None, 10).await.expect("page");
            assert!(pending.jobs.iter().all(|j| j.attempts == 0), "{pending:?}");

            // Already pending: a second call re-queues nothing more.
            let (_, body) = send(
                &token,
                "POST",
                retry.clone(),
                Some(r#"{"destination": "dr-martin"}"#),
            )
            .await;
            assert_eq!(body["requeued"], 0, "{body}");

            // By study, once they are dead again.
            sqlx::query("UPDATE forward_jobs SET state = 'dead'")
                .execute(archive.index().database().pool())
                .await
                .expect("mark dead");
            let body = format!(r#"{{"study_instance_uid": "{study}"}}"#);
            let (status, body) = send(&token, "POST", retry.clone(), Some(body)).await;
            assert_eq!((status, &body["requeued"]), (200, &2.into()), "{body}");

            for bad in [
                r#"{}"#,
                r#"{"destination": "MARTIN_WS", "study_instance_uid": "1.2.3"}"#,
                r#"{"destination": "  "}"#,
                r#"{"study_instance_uid": "../etc"}"#,
                r#"{"colour": "red"}"#,
                r#"not json"#,
            ] {
                let (status, body) = send(&token, "POST", retry.clone(), Some(bad)).await;
                assert_eq!(status, 400, "{bad}: {body}");
                assert!(body["error"].is_string(), "{bad}: {body}");
            }
        });
    }
}
