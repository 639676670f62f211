//! Private links: result links signed with the server secret and an expiry
//! (`/r/{id}.png?exp=UNIX&sig=HEX`, HMAC-SHA256 over the id and the expiry), and delete tokens.
//!
//! A delete token is the HMAC of the job id under the same secret (with a different label), so
//! the worker that finishes a job can put the delete link in its email without the token ever
//! being stored; the job record keeps only the token's SHA-256, which is what a delete request
//! is checked against. Every comparison is constant-time. All processes of one service (API and
//! workers, on any machine) must share the secret file.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::jobs::JobId;

type HmacSha256 = Hmac<Sha256>;

/// Why a link was refused (both answer 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not valid (forged or altered)")]
    BadSignature,
    #[error("this link expired")]
    Expired,
}

/// The secret file could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {path}: {message}")]
    Io { path: String, message: String },
    #[error("secret file {path}: expected 64 hex digits (32 random bytes); delete it to make a new one (existing links stop working)")]
    Malformed { path: String },
}

/// Signs and checks links with the server secret.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Reads the secret from `path` (64 hex digits), or, when the file does not exist, makes
    /// 32 random bytes and writes them there with mode 0600 (created exclusively, so two
    /// processes starting together agree on one secret).
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |e: std::io::Error| SecretError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| io(std::io::Error::other(e)))?;
                file.write_all(hex::encode(key).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io)?;
                let malformed = || SecretError::Malformed {
                    path: path.display().to_string(),
                };
                let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
                let key = bytes.try_into().map_err(|_| malformed())?;
                Ok(Self { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC-SHA256 takes keys of any length");
        for p in parts {
            mac.update(p);
            mac.update(&[0]);
        }
        mac
    }

    /// The signature of a result link for `id` valid until `exp` (Unix seconds), hex.
    pub fn sign(&self, id: &JobId, exp: u64) -> String {
        let mac = self.mac(&[
            b"result",
            id.as_str().as_bytes(),
            exp.to_string().as_bytes(),
        ]);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The server-relative result link: `/r/{id}.png?exp=..&sig=..`.
    pub fn result_path(&self, id: &JobId, exp: u64) -> String {
        format!("/r/{id}.png?exp={exp}&sig={}", self.sign(id, exp))
    }

    /// Checks a result link's signature (constant-time), then its expiry against `now`.
    pub fn verify(&self, id: &JobId, exp: u64, sig: &str, now: u64) -> Result<(), LinkError> {
        let sig = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(&[
            b"result",
            id.as_str().as_bytes(),
            exp.to_string().as_bytes(),
        ])
        .verify_slice(&sig)
        .map_err(|_| LinkError::BadSignature)?;
        if now >= exp {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// The delete token of job `id`, hex.
    pub fn delete_token(&self, id: &JobId) -> String {
        hex::encode(
            self.mac(&[b"delete", id.as_str().as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }
}

/// SHA-256 of a delete token, hex: what the job record stores.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `stored` (constant-time in the hash).
pub fn token_matches(token: &str, stored: &str) -> bool {
    token_hash(token).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> JobId {
        "0123456789abcdef0123456789abcdef".parse().unwrap()
    }

    #[test]
    fn links_verify_until_they_expire_and_not_when_altered() {
        let s = Signer::new([7; 32]);
        let sig = s.sign(&id(), 1000);
        assert_eq!(s.verify(&id(), 1000, &sig, 999), Ok(()));
        assert_eq!(s.verify(&id(), 1000, &sig, 1000), Err(LinkError::Expired));
        assert_eq!(s.verify(&id(), 1001, &sig, 0), Err(LinkError::BadSignature));
        assert_eq!(s.verify(&id(), 1000, "zz", 0), Err(LinkError::BadSignature));
        let other = Signer::new([8; 32]);
        assert_eq!(
            other.verify(&id(), 1000, &sig, 0),
            Err(LinkError::BadSignature)
        );
        assert!(s
            .result_path(&id(), 5)
            .starts_with(&format!("/r/{}.png?exp=5&sig=", id())));
    }

    #[test]
    fn delete_tokens_match_their_hash_only() {
        let s = Signer::new([7; 32]);
        let token = s.delete_token(&id());
        assert_ne!(token, s.sign(&id(), 0));
        let stored = token_hash(&token);
        assert!(token_matches(&token, &stored));
        assert!(!token_matches("x", &stored));
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_file_is_made_private_once_and_reread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let a = Signer::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.sign(&id(), 1), b.sign(&id(), 1));
        std::fs::write(&path, "short").unwrap();
        let e = Signer::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("expected 64 hex digits"), "{e}");
    }
}
