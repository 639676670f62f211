//! What a run records of its steps: every `log.every` steps (and at the last one) a line of
//! `metrics.jsonl`, the same scalars in TensorBoard, and the progress line (a bar on a
//! terminal, plain lines otherwise).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::log::{EventWriter, MetricsFile};
use crate::mirror::Mirror;
use crate::step::{StepLosses, LOSS_NAMES};

/// The metrics file, the TensorBoard writer and the progress bar of one run.
pub(super) struct Logbook {
    every: u64,
    end: u64,
    metrics: MetricsFile,
    events: Option<EventWriter>,
    bar: Option<ProgressBar>,
    /// Start and number of the steps since the last logged one (for `sec_per_step`).
    window: (Instant, u32),
}

impl Logbook {
    /// Opens the run's logs for steps after `resumed` (later lines of an earlier process are
    /// dropped: they will be written again) up to `end`.
    pub(super) fn open(
        run_dir: &Path,
        cfg: &Config,
        resumed: u64,
        end: u64,
        mirror: Option<&Mirror>,
    ) -> Result<Self> {
        let metrics = MetricsFile::open(&run_dir.join("metrics.jsonl"), resumed)?;
        let events = if cfg.log.tensorboard {
            Some(EventWriter::create(
                &run_dir.join("tb"),
                mirror.map(|m| m.event_rolls()),
            )?)
        } else {
            None
        };
        Ok(Self {
            every: cfg.log.every,
            end,
            metrics,
            events,
            bar: progress_bar(resumed + 1, end),
            window: (Instant::now(), 0),
        })
    }

    /// Counts a finished step (the progress bar and `sec_per_step`), before its losses are read.
    pub(super) fn tick(&mut self) {
        self.window.1 += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Records step `step` if it is due (or `last`): the learning rate, every loss term, the
    /// mean seconds per step since the last record and the files skipped so far.
    pub(super) fn record(
        &mut self,
        step: u64,
        lr: f64,
        losses: &StepLosses,
        skipped: usize,
        last: bool,
    ) -> Result<()> {
        if step.is_multiple_of(self.every) || last {
            let secs = self.window.0.elapsed().as_secs_f64() / f64::from(self.window.1);
            self.window = (Instant::now(), 0);
            let mut values: Vec<(&str, f64)> = vec![("lr", lr)];
            values.extend(
                LOSS_NAMES
                    .iter()
                    .zip(&losses.0)
                    .map(|(n, v)| (*n, f64::from(*v))),
            );
            values.push(("sec_per_step", secs));
            values.push(("skipped_images", skipped as f64));
            self.metrics.write(step, &values)?;
            if let Some(ev) = self.events.as_mut() {
                for (name, v) in &values {
                    ev.scalar(name, step, *v as f32)?;
                }
                ev.flush()?;
            }
            let line = format!(
                "step {step}/{}  d_loss {:.4}  g_loss {:.4}  lr {lr:.3e}  {secs:.2} s/step",
                self.end,
                losses.get("d_loss"),
                losses.get("g_loss")
            );
            match &self.bar {
                Some(bar) => bar.set_message(line),
                None => eprintln!("{line}"),
            }
        }
        Ok(())
    }

    /// Records values measured at step `step` apart from its losses (the evaluation's): a line
    /// of their own in `metrics.jsonl`, and TensorBoard scalars.
    pub(super) fn record_extra(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        self.metrics.write(step, values)?;
        if let Some(ev) = self.events.as_mut() {
            for (name, v) in values {
                ev.scalar(name, step, *v as f32)?;
            }
            ev.flush()?;
        }
        let line = values
            .iter()
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect::<Vec<_>>()
            .join("  ");
        match &self.bar {
            Some(bar) => bar.println(format!("step {step}: {line}")),
            None => eprintln!("step {step}: {line}"),
        }
        Ok(())
    }

    /// The TensorBoard writer, for the sample grids.
    pub(super) fn events(&mut self) -> Option<&mut EventWriter> {
        self.events.as_mut()
    }

    /// Leaves the progress bar where it stopped (a signal ended the run).
    pub(super) fn abandon(self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    /// Completes the progress bar.
    pub(super) fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// A bar from `first` to `end`, on a terminal only.
fn progress_bar(first: u64, end: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || first > end {
        return None;
    }
    let bar = ProgressBar::new(end).with_position(first - 1);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}
