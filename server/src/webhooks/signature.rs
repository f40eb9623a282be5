//! The webhook signature: `v1=<hex HMAC-SHA256(secret, timestamp ++ "." ++ body)>`.
//!
//! The timestamp is signed with the body so a captured request cannot be replayed later with a fresh
//! timestamp; receivers reject timestamps older than a few minutes ([`verify`] takes the tolerance).
//! The secret is the 64 hex digits shown at registration, used as they are (the ASCII text is the key), so a
//! receiver needs no hex decoding to verify.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the delivery id (the idempotency key).
pub const ID_HEADER: &str = "Dockhand-Webhook-Id";
/// Header carrying the unix time of the attempt, in seconds.
pub const TIMESTAMP_HEADER: &str = "Dockhand-Webhook-Timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "Dockhand-Webhook-Signature";

/// The `Dockhand-Webhook-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not `v1=` followed by 64 hex digits.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from `now` than the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The MAC differs: wrong secret, or the body or timestamp was changed.
    #[error("signature mismatch")]
    Mismatch,
}

/// Checks a received request as a receiver should (constant-time comparison, timestamp tolerance).
pub fn verify(
    secret: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let hex_mac = header.strip_prefix("v1=").ok_or(VerifyError::Malformed)?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(hex_mac, &mut given).map_err(|_| VerifyError::Malformed)?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    if bool::from(mac(secret, timestamp, body).ct_eq(&given)) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent vector: `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
    #[test]
    fn known_vector() {
        assert_eq!(
            sign("secret", 1_700_000_000, br#"{"a":1}"#),
            "v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn verify_table() {
        let good = sign("k", 1000, b"body");
        /// (secret, timestamp, body, header, now, expected)
        type Case<'a> = (
            &'a str,
            i64,
            &'a [u8],
            &'a str,
            i64,
            Result<(), VerifyError>,
        );
        let cases: &[Case<'_>] = &[
            ("k", 1000, b"body", &good, 1000, Ok(())),
            ("k", 1000, b"body", &good, 1300, Ok(())),
            ("k", 1000, b"body", &good, 1301, Err(VerifyError::Stale)),
            ("k", 1000, b"body", &good, 699, Err(VerifyError::Stale)),
            (
                "other",
                1000,
                b"body",
                &good,
                1000,
                Err(VerifyError::Mismatch),
            ),
            ("k", 1000, b"bodY", &good, 1000, Err(VerifyError::Mismatch)),
            ("k", 1001, b"body", &good, 1000, Err(VerifyError::Mismatch)),
            (
                "k",
                1000,
                b"body",
                "v2=00",
                1000,
                Err(VerifyError::Malformed),
            ),
            (
                "k",
                1000,
                b"body",
                "v1=zz",
                1000,
                Err(VerifyError::Malformed),
            ),
            (
                "k",
                1000,
                b"body",
                &good[..20],
                1000,
                Err(VerifyError::Malformed),
            ),
        ];
        for (secret, ts, body, header, now, want) in cases {
            assert_eq!(
                verify(secret, *ts, body, header, *now, 300),
                *want,
                "{secret} {ts} {header} {now}"
            );
        }
    }
}
