//! Session and API tokens: random, shown once, stored only as a hash.

use rand::RngCore;

/// Tokens start with this, so that one pasted by mistake (in a ticket, a
/// chat) is recognisable and can be searched for.
pub const PREFIX: &str = "trd_";

/// Viewer tokens start with this: short-lived, for DICOMweb reads only,
/// the one kind of token accepted in a URL (for viewers that cannot set
/// an Authorization header). The prefix is part of what is hashed, so no
/// other token can pass for one.
pub const VIEWER_PREFIX: &str = "trv_";

/// A new token: 256 random bits.
pub fn generate() -> String {
    with_prefix(PREFIX)
}

/// A new viewer token: 256 random bits.
pub fn generate_viewer() -> String {
    with_prefix(VIEWER_PREFIX)
}

/// Whether `token` is a viewer token.
pub fn is_viewer(token: &str) -> bool {
    token.starts_with(VIEWER_PREFIX)
}

fn with_prefix(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut token = String::with_capacity(prefix.len() + 64);
    token.push_str(prefix);
    for byte in bytes {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

/// What the database keeps of a token. A fast hash is enough: the token
/// has 256 bits of entropy, nothing to guess.
pub fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The CSRF token of a cookie session: derived from the session's token,
/// so nothing more is stored, and a page's script can send it back in the
/// `X-CSRF-Token` header, which another origin cannot read nor set.
pub fn csrf(token: &str) -> String {
    csrf_hash(token).to_hex().to_string()
}

/// Whether `sent` is the CSRF token of `token`, compared in constant time
/// (`blake3::Hash`'s equality).
pub fn csrf_matches(token: &str, sent: &str) -> bool {
    blake3::Hash::from_hex(sent).is_ok_and(|sent| sent == csrf_hash(token))
}

fn csrf_hash(token: &str) -> blake3::Hash {
    blake3::Hash::from(blake3::derive_key(
        "telerad 2026 session csrf token",
        token.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_their_hashes_and_csrf_tokens_too() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(hash(&a), csrf(&a));
        assert_eq!(csrf(&a), csrf(&a));
        assert!(csrf_matches(&a, &csrf(&a)));
        assert!(!csrf_matches(&a, &csrf(&b)));
        assert!(!csrf_matches(&a, "not hex"));
    }
}
