//! Errors of every storage format. Each names the file and, where one is at fault, the tensor.

use std::path::PathBuf;

use ugatit_model::{ConfigError, KeyError};

/// Why a weights file could not be read or written. Each message is one complete line (the
/// cause is part of it, not a separate `source`, so error chains do not print it twice).
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: not a U-GAT-IT checkpoint ({reason})", path.display())]
    NotUgatit { path: PathBuf, reason: String },
    #[error("{}: {cause}", path.display())]
    Keys { path: PathBuf, cause: KeyError },
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: {cause}", path.display())]
    Config { path: PathBuf, cause: ConfigError },
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
}

impl WeightsError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn not_ugatit(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::NotUgatit {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
