//! The HTTP API as served: every crate's routes merged over one state,
//! their shared layers, and the OpenAPI 3.1 description of them all at
//! `GET /api/openapi.json`.
//!
//! Each crate registers a handler and its description in one call
//! (utoipa-axum's `routes!`), so the description is read off the code that
//! serves: a route added without one is a plain `.route` that review sees.

use axum::extract::{FromRef, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::sync::Arc;
use telerad_access::{Access, Caller};
use telerad_router::service::Router as RouterService;
use telerad_store::Archive;
use telerad_store::outbox::Outbox;
use telerad_viewer_api::render_cache::RenderCache;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the HTTP routes are served with. Each route takes only the parts
/// it uses ([`FromRef`]), so the crates that hold them do not share a
/// state type.
#[derive(Clone)]
pub struct AppState {
    archive: Arc<Archive>,
    outbox: Arc<Outbox>,
    router: Arc<RouterService>,
    access: Arc<Access>,
    description: Arc<DescriptionJson>,
    pages: Arc<telerad_pages::Settings>,
    render_cache: Arc<RenderCache>,
}

/// [`description`], serialised once.
#[derive(Debug)]
pub struct DescriptionJson(String);

impl AppState {
    pub fn new(
        archive: Arc<Archive>,
        outbox: Arc<Outbox>,
        router: Arc<RouterService>,
        access: Arc<Access>,
    ) -> AppState {
        AppState {
            archive,
            outbox,
            router,
            access,
            description: Arc::new(DescriptionJson(description_json())),
            pages: Arc::new(telerad_pages::Settings {
                initial_password_file: std::path::PathBuf::new(),
                sites: Vec::new(),
            }),
            render_cache: Arc::new(RenderCache::default()),
        }
    }

    /// The rendered frames the DICOMweb routes keep, for the task that
    /// prepares them as studies complete.
    pub fn render_cache(&self) -> Arc<RenderCache> {
        self.render_cache.clone()
    }

    /// The pages' settings (the first administrator's password file).
    pub fn with_pages(mut self, pages: telerad_pages::Settings) -> AppState {
        self.pages = Arc::new(pages);
        self
    }
}

impl FromRef<AppState> for Arc<telerad_pages::Settings> {
    fn from_ref(state: &AppState) -> Arc<telerad_pages::Settings> {
        state.pages.clone()
    }
}

impl FromRef<AppState> for Arc<RenderCache> {
    fn from_ref(state: &AppState) -> Arc<RenderCache> {
        state.render_cache.clone()
    }
}

impl FromRef<AppState> for Arc<Access> {
    fn from_ref(state: &AppState) -> Arc<Access> {
        state.access.clone()
    }
}

impl FromRef<AppState> for Arc<Archive> {
    fn from_ref(state: &AppState) -> Arc<Archive> {
        state.archive.clone()
    }
}

impl FromRef<AppState> for Arc<Outbox> {
    fn from_ref(state: &AppState) -> Arc<Outbox> {
        state.outbox.clone()
    }
}

impl FromRef<AppState> for Arc<RouterService> {
    fn from_ref(state: &AppState) -> Arc<RouterService> {
        state.router.clone()
    }
}

impl FromRef<AppState> for Arc<DescriptionJson> {
    fn from_ref(state: &AppState) -> Arc<DescriptionJson> {
        state.description.clone()
    }
}

/// Every route with its description, before the state is given; the
/// DICOMweb routes answer browsers of the `cors` origins.
fn described(cors: &[String]) -> OpenApiRouter<AppState> {
    let mut viewer = telerad_viewer_api::routes();
    if let Some(layer) = telerad_viewer_api::cors(cors) {
        viewer = viewer.layer(layer);
    }
    OpenApiRouter::with_openapi(front_matter())
        .merge(telerad_access::routes::routes())
        .merge(telerad_operations::routes())
        .merge(telerad_worklist::routes())
        .merge(viewer)
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 description of the whole HTTP API.
pub fn description() -> OpenApi {
    let (_, api) = described(&[]).split_for_parts();
    telerad_http::openapi::secure(api, telerad_access::caller::SESSION_COOKIE)
}

/// [`description`] as pretty JSON.
pub fn description_json() -> String {
    // A tree of strings and maps, built from the code: failing to write
    // it would be a bug of this build, not something a request causes.
    description()
        .to_pretty_json()
        .expect("the OpenAPI description serialises")
}

fn front_matter() -> OpenApi {
    let mut api = OpenApi::default();
    api.info.title = "telerad".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "Teleradiology DICOM router and reading worklist: studies, request forms, the \
         worklist, reports, critical results, messages, notifications, operations, and \
         DICOMweb searches (QIDO-RS, DICOM PS3.18) under /dicom-web. \
         Every error answer is {\"error\": \"...\"}; lists page with `limit` and \
         `cursor`."
            .into(),
    );
    api
}

/// Every HTTP API's routes, merged, with the layers they share applied
/// once.
pub fn app(state: AppState, https: bool, cors: &[String]) -> axum::Router {
    let database = state.archive.index().database().clone();
    let (routes, _) = described(cors).split_for_parts();
    telerad_http::with_common_layers(
        routes
            .merge(telerad_pages::routes())
            .with_state(state)
            .layer(axum::middleware::from_fn_with_state(
                database,
                ring_after_changes,
            )),
        https,
    )
}

/// This description, for client generators and API testers; to signed-in
/// callers, as every route but the health check. It holds no patient
/// data, so reading it is not audited.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description", body = Object))
)]
async fn openapi_json(
    _caller: Caller,
    State(description): State<Arc<DescriptionJson>>,
) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], description.0.clone())
}

/// A request that changed something (a report issued, a message, a
/// critical result acknowledged) may have appended workflow events, now
/// committed: the event streams and the notifier look at once instead of
/// at their next poll.
async fn ring_after_changes(
    axum::extract::State(database): axum::extract::State<telerad_store::Database>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let changes = !request.method().is_safe();
    let response = next.run(request).await;
    if changes && response.status().is_success() {
        database.ring_events();
    }
    response
}
