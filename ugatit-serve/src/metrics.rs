//! Counters and histograms for `GET /metrics`, in the Prometheus text format (version 0.0.4).
//! Each process counts what it does: an API process its accepted and rejected uploads, a
//! worker its finished jobs, batches and forward passes; the queue length is the shared store's.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Why an upload was refused: the `reason` label of `ugatit_jobs_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Over `--max-upload` (413).
    TooLarge,
    /// Malformed request: multipart, fields, crop syntax, direction (400).
    BadRequest,
    /// Not an image, truncated, empty, over `--max-pixels`, crop outside it, bad email (422).
    BadImage,
    /// The queue held `--queue-size` jobs (503).
    QueueFull,
    /// Over `--rate-limit` (429).
    RateLimited,
    /// Shutting down (503).
    Draining,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Rejection::TooLarge,
        Rejection::BadRequest,
        Rejection::BadImage,
        Rejection::QueueFull,
        Rejection::RateLimited,
        Rejection::Draining,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::BadRequest => "bad_request",
            Rejection::BadImage => "bad_image",
            Rejection::QueueFull => "queue_full",
            Rejection::RateLimited => "rate_limited",
            Rejection::Draining => "draining",
        }
    }
}

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    state: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            state: Mutex::new((vec![0; bounds.len()], 0.0, 0)),
        }
    }

    fn observe(&self, v: f64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                s.0[i] += 1;
            }
        }
        s.1 += v;
        s.2 += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, n) in self.bounds.iter().zip(&s.0) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", s.2);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", s.1, s.2);
    }
}

/// Everything `/metrics` reports except the queue length.
#[derive(Debug)]
pub struct Metrics {
    accepted: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    batch_size: Histogram,
    inference_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: Default::default(),
            batch_size: Histogram::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            inference_seconds: Histogram::new(&[
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        }
    }
}

impl Metrics {
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One forward pass over `size` images that took `seconds`.
    pub fn batch(&self, size: usize, seconds: f64) {
        self.batch_size.observe(size as f64);
        self.inference_seconds.observe(seconds);
    }

    /// The text `/metrics` answers, with the store's `queue_length`.
    pub fn render(&self, queue_length: u64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        let _ = writeln!(
            out,
            "# HELP ugatit_queue_length Jobs queued or running.\n\
             # TYPE ugatit_queue_length gauge\nugatit_queue_length {queue_length}"
        );
        counter(
            &mut out,
            "ugatit_jobs_accepted_total",
            "Uploads accepted (202).",
            &self.accepted,
        );
        counter(
            &mut out,
            "ugatit_jobs_done_total",
            "Jobs whose result was stored.",
            &self.done,
        );
        counter(
            &mut out,
            "ugatit_jobs_failed_total",
            "Jobs that failed.",
            &self.failed,
        );
        let _ = writeln!(
            out,
            "# HELP ugatit_jobs_rejected_total Uploads refused, by reason.\n\
             # TYPE ugatit_jobs_rejected_total counter"
        );
        for (r, v) in Rejection::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "ugatit_jobs_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                v.load(Ordering::Relaxed)
            );
        }
        self.batch_size
            .render("ugatit_batch_size", "Images per forward pass.", &mut out);
        self.inference_seconds.render(
            "ugatit_inference_seconds",
            "Seconds per forward pass (crop, resize, generator, to RGB).",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.accepted();
        m.rejected(Rejection::QueueFull);
        m.batch(3, 0.2);
        let text = m.render(5);
        assert!(text.contains("ugatit_queue_length 5\n"));
        assert!(text.contains("ugatit_jobs_accepted_total 1\n"));
        assert!(text.contains("ugatit_jobs_rejected_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("ugatit_batch_size_bucket{le=\"2\"} 0\n"));
        assert!(text.contains("ugatit_batch_size_bucket{le=\"4\"} 1\n"));
        assert!(text.contains("ugatit_inference_seconds_count 1\n"));
    }
}
