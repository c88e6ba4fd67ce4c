//! Percent-encoding of a query value, and the check that a `next` address
//! stays on this site.

/// `text` as a URL query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Where to go after signing in: a path of this site, never another
/// origin (`//evil.example`, `https://…`, `/\evil`), else the home page.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control)
                && path.len() <= 2048 =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            local_path(Some("/worklist?mine=true")),
            "/worklist?mine=true"
        );
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn encodes_what_a_query_cannot_hold() {
        assert_eq!(
            encode("/worklist?mine=true&x=é"),
            "/worklist%3Fmine%3Dtrue%26x%3D%C3%A9"
        );
    }
}
