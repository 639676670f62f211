//! What a run records: `metrics.jsonl` and TensorBoard event files.

mod metrics;
mod tensorboard;

pub use metrics::MetricsFile;
pub use tensorboard::EventWriter;
