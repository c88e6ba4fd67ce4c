//! The security headers every answer carries.
//!
//! The API answers JSON with patient data: nothing may be sniffed into
//! another type, framed, cached or sent on as a referrer. The content
//! security policy allows only this origin's own resources (pages will add
//! nothing inline), and HSTS tells browsers to come back over HTTPS only.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";
/// A year, the figure HSTS preload lists ask for.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

fn set(routes: Router, name: HeaderName, value: &'static str) -> Router {
    routes.layer(SetResponseHeaderLayer::if_not_present(
        name,
        HeaderValue::from_static(value),
    ))
}

pub fn with_security_headers(routes: Router, https: bool) -> Router {
    let mut routes = set(routes, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    routes = set(routes, header::X_FRAME_OPTIONS, "DENY");
    routes = set(
        routes,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    routes = set(routes, header::REFERRER_POLICY, "no-referrer");
    routes = set(routes, header::CACHE_CONTROL, "no-store");
    if https {
        routes = set(routes, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    routes
}
