//! What every handler can reach.

use std::sync::Arc;
use telerad_store::Archive;

#[derive(Debug, Clone)]
pub struct AppState {
    pub archive: Arc<Archive>,
    pub outbox: Arc<telerad_store::outbox::Outbox>,
    pub router: Arc<telerad_router::service::Router>,
}
