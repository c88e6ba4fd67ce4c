//! What a WADO-RS client accepts (PS3.18 §8.7): the `Accept` header's
//! `multipart/related; type="application/dicom"` ranges and the transfer
//! syntax each allows. Naming `application/dicom` without a syntax means
//! the default, Explicit VR Little Endian (§8.7.3.5.2); `*` means any; a
//! client that does not constrain the answer (no header, `*/*`) gets the
//! files as stored, each part saying its syntax.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use telerad_http::ApiError;

pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// The transfer syntaxes a request allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomRequest {
    any: bool,
    syntaxes: Vec<String>,
}

impl DicomRequest {
    /// Whether a file stored as `syntax` may be sent as it is.
    pub fn allows(&self, syntax: &str) -> bool {
        self.any || self.syntaxes.iter().any(|s| s == syntax)
    }
}

/// The parameters of one media range, names in lower case, quotes gone.
fn parameters(range: &str) -> (String, Vec<(String, String)>) {
    let mut parts = range.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    (media, params)
}

/// The request's `Accept`, or 406 when it allows no DICOM answer.
pub fn dicom(headers: &HeaderMap) -> Result<DicomRequest, ApiError> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(DicomRequest {
            any: true,
            syntaxes: Vec::new(),
        });
    };
    let mut request = DicomRequest {
        any: false,
        syntaxes: Vec::new(),
    };
    let mut acceptable = false;
    for range in accept.split(',') {
        let (media, params) = parameters(range);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match media.as_str() {
            "*/*" | "multipart/*" => {
                acceptable = true;
                request.any = true;
            }
            "multipart/related" => {
                let kind = param("type").map(str::to_ascii_lowercase);
                match (kind.as_deref(), param("transfer-syntax")) {
                    (Some("application/dicom"), Some("*")) | (None, _) => {
                        acceptable = true;
                        request.any = true;
                    }
                    (Some("application/dicom"), Some(syntax)) => {
                        acceptable = true;
                        request.syntaxes.push(syntax.to_string());
                    }
                    (Some("application/dicom"), None) => {
                        acceptable = true;
                        request.syntaxes.push(EXPLICIT_VR_LITTLE_ENDIAN.to_string());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if acceptable {
        Ok(request)
    } else {
        Err(ApiError::NotAcceptable(format!(
            "Accept {accept:?}: instances are answered as multipart/related; \
             type=\"application/dicom\""
        )))
    }
}

/// The media type to send frames (or bulk data) in, stored as `syntax`
/// with `stored_media` (PS3.18 Table 8.7.3-5), if the request's `Accept`
/// allows them as they are: a range of their media type (with no syntax,
/// `*`, or theirs), `application/octet-stream` with `*` or theirs (with
/// no syntax, only uncompressed frames), or any type. Else 406 (the
/// caller may still decode them: [`uncompressed_frames`]).
pub fn frames(headers: &HeaderMap, syntax: &str, stored_media: &str) -> Result<String, ApiError> {
    const OCTETS: &str = "application/octet-stream";
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(stored_media.to_string());
    };
    for range in accept.split(',') {
        let (media, params) = parameters(range);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        // The frames' own type: in a multipart range's `type`, or bare.
        let (kind, wanted_syntax) = match media.as_str() {
            "*/*" | "multipart/*" => return Ok(stored_media.to_string()),
            "multipart/related" => (
                param("type").map(str::to_ascii_lowercase),
                param("transfer-syntax"),
            ),
            _ => (Some(media.clone()), param("transfer-syntax")),
        };
        let Some(kind) = kind else {
            return Ok(stored_media.to_string());
        };
        let syntax_fits = |default_fits: bool| match wanted_syntax {
            None => default_fits,
            Some(wanted) => wanted == "*" || wanted == syntax,
        };
        if (kind == "*/*" || kind == "*") && syntax_fits(true) {
            return Ok(stored_media.to_string());
        }
        if kind == stored_media && syntax_fits(true) {
            return Ok(stored_media.to_string());
        }
        if kind == OCTETS && syntax_fits(syntax == EXPLICIT_VR_LITTLE_ENDIAN) {
            return Ok(OCTETS.to_string());
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "Accept {accept:?}: the frames are stored as {syntax} ({stored_media}); ask for that \
         media type, application/octet-stream (decoded, Explicit VR Little Endian), or \
         application/octet-stream with transfer-syntax=* (as stored)"
    )))
}

/// Whether the request allows uncompressed frames: `application/octet-
/// stream` (in a multipart range's `type`, or bare) with no syntax or
/// Explicit VR Little Endian (PS3.18 §8.7.3.5.2's default for frames).
pub fn uncompressed_frames(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accept.split(',').any(|range| {
        let (media, params) = parameters(range);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let kind = match media.as_str() {
            "multipart/related" => param("type").map(str::to_ascii_lowercase),
            _ => Some(media.clone()),
        };
        kind.as_deref() == Some("application/octet-stream")
            && param("transfer-syntax").is_none_or(|ts| ts == EXPLICIT_VR_LITTLE_ENDIAN)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(accept: &str) -> Result<DicomRequest, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("a header"));
        dicom(&headers)
    }

    #[test]
    fn ranges_allow_the_syntaxes_they_name() {
        let any = request("multipart/related; type=\"application/dicom\"; transfer-syntax=*")
            .expect("accepted");
        assert!(any.allows("1.2.840.10008.1.2.4.90"));
        let default = request("multipart/related; type=application/dicom").expect("accepted");
        assert!(default.allows(EXPLICIT_VR_LITTLE_ENDIAN));
        assert!(!default.allows("1.2.840.10008.1.2"));
        let two = request(
            "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.90, \
             multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2",
        )
        .expect("accepted");
        assert!(two.allows("1.2.840.10008.1.2") && two.allows("1.2.840.10008.1.2.4.90"));
        assert!(!two.allows(EXPLICIT_VR_LITTLE_ENDIAN));
        assert!(
            request("*/*")
                .expect("accepted")
                .allows("1.2.840.10008.1.2")
        );
        assert!(dicom(&HeaderMap::new()).expect("accepted").allows("1.2.3"));
    }

    #[test]
    fn other_media_types_are_not_acceptable() {
        for accept in [
            "application/json",
            "image/jpeg",
            "multipart/related; type=\"image/jpeg\"",
        ] {
            assert!(
                matches!(request(accept), Err(ApiError::NotAcceptable(_))),
                "{accept}"
            );
        }
    }

    #[test]
    fn frames_are_sent_as_stored_when_the_request_allows_it() {
        const J2K: &str = "1.2.840.10008.1.2.4.90";
        let frames_as = |accept: &str, syntax: &str, media: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("a header"));
            frames(&headers, syntax, media).ok()
        };
        let jp2 = Some("image/jp2".to_string());
        let octets = Some("application/octet-stream".to_string());
        assert_eq!(
            frames_as("multipart/related; type=\"image/jp2\"", J2K, "image/jp2"),
            jp2
        );
        assert_eq!(frames_as("*/*", J2K, "image/jp2"), jp2);
        assert_eq!(
            frames_as("multipart/related; type=\"*/*\"", J2K, "image/jp2"),
            jp2
        );
        assert_eq!(
            frames_as(
                "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*",
                J2K,
                "image/jp2"
            ),
            octets
        );
        // Uncompressed frames by default; compressed ones are not decoded.
        assert_eq!(
            frames_as(
                "multipart/related; type=\"application/octet-stream\"",
                EXPLICIT_VR_LITTLE_ENDIAN,
                "application/octet-stream"
            ),
            octets
        );
        assert_eq!(
            frames_as(
                "multipart/related; type=\"application/octet-stream\"",
                J2K,
                "image/jp2"
            ),
            None
        );
        assert_eq!(
            frames_as("multipart/related; type=\"image/jpeg\"", J2K, "image/jp2"),
            None
        );
        assert_eq!(
            frames_as(
                "multipart/related; type=\"image/jp2\"; transfer-syntax=1.2.840.10008.1.2.4.91",
                J2K,
                "image/jp2"
            ),
            None
        );
        assert_eq!(frames(&HeaderMap::new(), J2K, "image/jp2").ok(), jp2);
    }

    #[test]
    fn uncompressed_frames_are_octets_in_the_default_syntax() {
        let allows = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("a header"));
            uncompressed_frames(&headers)
        };
        assert!(allows(
            "multipart/related; type=\"application/octet-stream\""
        ));
        assert!(allows(
            "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
        ));
        assert!(allows("image/jp2, application/octet-stream"));
        assert!(!allows(
            "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"
        ));
        assert!(!allows("multipart/related; type=\"image/jp2\""));
        assert!(!uncompressed_frames(&HeaderMap::new()));
    }
}
