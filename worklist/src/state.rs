//! What every handler can reach.

use std::sync::Arc;
use telerad_store::Archive;

#[derive(Debug, Clone)]
pub struct AppState {
    pub archive: Arc<Archive>,
}
