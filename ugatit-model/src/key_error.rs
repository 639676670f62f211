//! Errors of building a network from a tensor map: each names the network and the tensor.

/// A tensor map that does not fit the architecture being built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("missing tensor {net}.{key}")]
    Missing { net: String, key: String },
    #[error("tensor {net}.{key} has shape {found:?}, but this architecture needs {expected:?}")]
    Shape {
        net: String,
        key: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("cannot read tensor {net}.{key}: {reason}")]
    Unreadable {
        net: String,
        key: String,
        reason: String,
    },
    #[error("unexpected tensors in {net}: {}", list(keys))]
    Unexpected { net: String, keys: Vec<String> },
}

fn list(keys: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    s
}
