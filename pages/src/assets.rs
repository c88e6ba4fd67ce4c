//! The pages' own script and style sheet, built into the binary: no Node
//! build step, nothing fetched from another origin.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

const SCRIPT: &str = include_str!("../assets/telerad.js");
const READING: &str = include_str!("../assets/reading.js");
const STYLE: &str = include_str!("../assets/telerad.css");

pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "telerad.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "reading.js" => (READING, "text/javascript; charset=utf-8"),
        "telerad.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            return crate::plain_page(
                crate::lang::Lang::En,
                StatusCode::NOT_FOUND,
                "no such asset",
            )
            .into_response();
        }
    };
    // Revalidated at each page: a new release's script is never mixed with
    // an old page.
    ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "no-cache")], body).into_response()
}

/// What the pages ship of JavaScript, in bytes.
pub const SCRIPT_BYTES: usize = SCRIPT.len() + READING.len();

// The budget of the pages' JavaScript: a build over it fails.
const _: () = assert!(SCRIPT_BYTES < 150 * 1024, "over 150 kB of JavaScript");
