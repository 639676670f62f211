//! What a run records: `metrics.jsonl` and TensorBoard event files.

mod metrics;
mod proto;
mod tensorboard;
mod tfrecord;

pub use metrics::MetricsFile;
pub use tensorboard::{EventWriter, RollSignal};
