//! Standard Webhooks signatures (standardwebhooks.com): the receiver checks
//! `webhook-signature` = "v1," + base64(HMAC-SHA256(key, "id.timestamp.body"))
//! and rejects timestamps more than a few minutes old, so that a captured
//! call cannot be replayed.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The three headers of a signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// Stable across retries: the receiver's key for idempotency.
    pub id: String,
    /// Unix seconds of this attempt.
    pub timestamp: i64,
    pub signature: String,
}

/// Signs `body` sent as message `id` at `timestamp` (Unix seconds) with the
/// secret's key bytes.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Headers {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    Headers {
        id: id.to_string(),
        timestamp,
        signature: format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and of its
    /// reference libraries' tests.
    #[test]
    fn matches_the_specification_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("the example secret is base64");
        let headers = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let base = sign(b"k", "msg_1", 10, b"{}");
        assert_ne!(base, sign(b"k", "msg_2", 10, b"{}"));
        assert_ne!(base.signature, sign(b"k", "msg_1", 11, b"{}").signature);
        assert_ne!(base.signature, sign(b"k", "msg_1", 10, b"{ }").signature);
        assert_ne!(base.signature, sign(b"j", "msg_1", 10, b"{}").signature);
    }
}
