//! The worker: claims up to `--max-batch` queued jobs, translates them in one forward pass on
//! the model thread, stores each result, and only then completes the job (so a crash at any
//! point leaves the job to be claimed again once its lease runs out; completion is idempotent,
//! so a job done twice has one result). While a batch is in progress its leases are renewed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use image::RgbImage;
use tokio::sync::{watch, Notify};

use crate::blobs::{BlobKey, BlobStore};
use crate::jobs::{Completion, Job, JobStore};
use crate::links::Signer;
use crate::metrics::Metrics;
use crate::model::{Model, ModelError};
use crate::notify::{Finished, Notifier};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique to this process: the lease holder's name.
    pub name: String,
    /// Jobs per forward pass.
    pub max_batch: usize,
    /// How long a claim holds a job without renewal.
    pub lease: Duration,
    /// How often to look for jobs when not woken (jobs enqueued by other processes).
    pub poll: Duration,
    /// Keep uploads after their result is stored (`--keep-inputs`).
    pub keep_inputs: bool,
    /// `--max-pixels`, checked again when the stored upload is decoded.
    pub max_pixels: u64,
    /// The service's public origin, for the links in emails (`--public-url`); `None` for the
    /// address the server bound (filled in by the server once it has bound).
    pub public_url: Option<String>,
}

/// What a worker works with.
pub struct Worker {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub model: Model,
    pub signer: Arc<Signer>,
    pub metrics: Arc<Metrics>,
    pub notifier: Option<Arc<dyn Notifier>>,
    pub config: WorkerConfig,
}

impl Worker {
    /// Works until `stop` turns true (finishing the batch in progress) or the model thread
    /// dies. `wake` is notified by an API in the same process when it enqueues a job.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        while !*stop.borrow() {
            let claimed = match self.jobs.claim(&c.name, c.max_batch, c.lease).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    eprintln!("worker: {e}");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(c.poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            self.batch(claimed).await?;
        }
        Ok(())
    }

    /// One batch, with its leases renewed until it is finished.
    async fn batch(&self, jobs: Vec<Job>) -> Result<(), ModelError> {
        let renewal = {
            let store = self.jobs.clone();
            let (name, lease) = (self.config.name.clone(), self.config.lease);
            let ids: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    if let Err(e) = store.renew(&name, &ids, lease).await {
                        eprintln!("worker: {e}");
                    }
                }
            })
        };
        let result = self.translate(jobs).await;
        renewal.abort();
        result
    }

    async fn translate(&self, jobs: Vec<Job>) -> Result<(), ModelError> {
        let inputs = futures::future::join_all(jobs.iter().map(|j| self.input(j))).await;
        let mut ready = Vec::new();
        let mut items = Vec::new();
        for (job, input) in jobs.into_iter().zip(inputs) {
            match input {
                Some(Ok(image)) => {
                    items.push((image, job.spec.crop.to_crop()));
                    ready.push(job);
                }
                Some(Err(message)) => self.fail(&job, &message).await,
                None => {}
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let n = items.len();
        let (results, seconds) = self.model.translate(items).await?;
        self.metrics.batch(n, seconds);
        let finishing = ready.iter().zip(results).map(|(job, result)| async move {
            match result {
                Ok(image) => self.store(job, image).await,
                Err(message) => self.fail(job, &message).await,
            }
        });
        futures::future::join_all(finishing).await;
        Ok(())
    }

    /// The job's decoded upload; `None` when it cannot be read now (a store error: the job is
    /// left to be claimed again).
    async fn input(&self, job: &Job) -> Option<Result<RgbImage, String>> {
        match self.blobs.get(&BlobKey::input(&job.id)).await {
            Ok(Some(bytes)) => {
                let max = self.config.max_pixels;
                let decoded = tokio::task::spawn_blocking(move || {
                    ugatit_io::image_file::decode_rgb(&bytes, max).map_err(|e| e.to_string())
                })
                .await;
                Some(decoded.unwrap_or_else(|e| Err(format!("decoding failed: {e}"))))
            }
            Ok(None) => Some(Err("the uploaded image is gone".into())),
            Err(e) => {
                eprintln!("worker: job {}: {e}", job.id);
                None
            }
        }
    }

    /// Stores the result as PNG (no metadata), then completes the job.
    async fn store(&self, job: &Job, image: RgbImage) {
        let png = tokio::task::spawn_blocking(move || encode_png(&image)).await;
        let png = match png {
            Ok(Ok(png)) => png,
            Ok(Err(e)) => return self.fail(job, &format!("encoding the result: {e}")).await,
            Err(e) => return eprintln!("worker: job {}: {e}", job.id),
        };
        let key = BlobKey::result(&job.id);
        if let Err(e) = self.blobs.put(&key, png).await {
            return eprintln!("worker: job {}: {e}", job.id);
        }
        match self.jobs.complete(&job.id).await {
            Ok(Completion::First) => {
                self.metrics.done();
                eprintln!("job {} done", job.id);
                self.drop_input(job).await;
                self.announce(job).await;
            }
            Ok(Completion::Again) => self.drop_input(job).await,
            Ok(Completion::Gone) => {
                self.delete(&key).await;
                self.delete(&BlobKey::input(&job.id)).await;
            }
            Err(e) => eprintln!("worker: job {}: {e}", job.id),
        }
    }

    async fn fail(&self, job: &Job, message: &str) {
        match self.jobs.fail(&job.id, message).await {
            Ok(Completion::First) => {
                self.metrics.failed();
                eprintln!("job {} failed: {message}", job.id);
                self.drop_input(job).await;
            }
            Ok(_) => {}
            Err(e) => eprintln!("worker: job {}: {e}", job.id),
        }
    }

    async fn drop_input(&self, job: &Job) {
        if !self.config.keep_inputs {
            self.delete(&BlobKey::input(&job.id)).await;
        }
    }

    async fn delete(&self, key: &BlobKey) {
        if let Err(e) = self.blobs.delete(key).await {
            eprintln!("worker: {e}");
        }
    }

    /// Emails the links, when the user gave an address and mail is configured.
    async fn announce(&self, job: &Job) {
        let (Some(notifier), Some(to)) = (&self.notifier, &job.spec.email) else {
            return;
        };
        let exp = job.spec.expires_at;
        let base = self.config.public_url.as_deref().unwrap_or_default();
        let base = base.trim_end_matches('/');
        let result_url = match self
            .blobs
            .presigned_url(&BlobKey::result(&job.id), exp)
            .await
        {
            Ok(Some(url)) => url,
            _ => format!("{base}{}", self.signer.result_path(&job.id, exp)),
        };
        let message = Finished {
            to: to.clone(),
            result_url,
            delete_url: format!(
                "{base}/d/{}?token={}",
                job.id,
                self.signer.delete_token(&job.id)
            ),
            expires_at: exp,
        };
        if let Err(e) = notifier.job_done(&message).await {
            eprintln!("worker: job {}: {e}", job.id);
        }
    }
}

/// `image` as PNG: pixels only, no EXIF or other metadata.
pub fn encode_png(image: &RgbImage) -> Result<Bytes, image::ImageError> {
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
    Ok(Bytes::from(out))
}
