//! What a job is: its id, what the user asked for, and where it stands.

use serde::{Deserialize, Serialize};

/// A job's id: 128 random bits as 32 lower-case hex digits. Ids name blobs and appear in URLs,
/// so only ids of exactly this form are accepted from outside (never anything a user uploaded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job id (32 lower-case hex digits)")]
pub struct BadJobId(pub String);

impl JobId {
    /// A fresh random id from the operating system's generator.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for JobId {
    type Err = BadJobId;
    fn from_str(s: &str) -> Result<Self, BadJobId> {
        let ok = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(BadJobId(s.chars().take(64).collect()))
        }
    }
}

impl TryFrom<String> for JobId {
    type Error = BadJobId;
    fn try_from(s: String) -> Result<Self, BadJobId> {
        s.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which part of the uploaded image to translate, as the upload form sent it. Boxes are in
/// pixels of the image after EXIF orientation and were checked against it at upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CropRequest {
    /// The largest central square (no `crop` field).
    Center,
    /// A square around the largest face, the central square when there is none.
    Auto,
    /// `{"x", "y", "w", "h"}`.
    Box { x: u32, y: u32, w: u32, h: u32 },
}

impl CropRequest {
    /// The inference crate's crop for this request.
    pub fn to_crop(self) -> ugatit_infer::Crop {
        match self {
            CropRequest::Center => ugatit_infer::Crop::Center,
            CropRequest::Auto => ugatit_infer::Crop::Auto {
                fallback_center: true,
            },
            CropRequest::Box { x, y, w, h } => ugatit_infer::Crop::Box(ugatit_infer::Region {
                x,
                y,
                width: w,
                height: h,
            }),
        }
    }
}

/// Everything a job was created with; never changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub crop: CropRequest,
    /// Where to send the result links, if the user asked for an email.
    pub email: Option<String>,
    /// SHA-256 of the delete token, lower-case hex; the token itself is never stored.
    pub delete_hash: String,
    /// Unix seconds when the job was accepted.
    pub created_at: u64,
    /// Unix seconds when the job's links expire; from then on the job is listed by
    /// [`JobStore::expired`](super::JobStore::expired) for purging.
    pub expires_at: u64,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to be claimed (or claimed earlier by a worker whose lease has run out).
    Queued,
    /// Claimed by a worker whose lease has not run out.
    Running,
    /// The result is stored.
    Done,
    /// The job cannot be done; the message says why, for the user.
    Failed(String),
}

impl JobState {
    /// The name the status API reports: `queued`, `running`, `done` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed(_) => "failed",
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub spec: JobSpec,
    pub state: JobState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lower_hex_digits() {
        let id = JobId::random().unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(id.as_str().parse::<JobId>().unwrap(), id);
        for bad in ["", "../../etc/passwd", &"A".repeat(32), &"a".repeat(33)] {
            assert!(bad.parse::<JobId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn crop_requests_round_trip_through_json() {
        for c in [
            CropRequest::Center,
            CropRequest::Auto,
            CropRequest::Box {
                x: 1,
                y: 2,
                w: 3,
                h: 4,
            },
        ] {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<CropRequest>(&s).unwrap(), c);
        }
    }
}
