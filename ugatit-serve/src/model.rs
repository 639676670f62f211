//! The model on its own thread: a [`Translator`] on the chosen device, fed batches over a
//! channel, so the async side never blocks on inference.
//!
//! Each image comes with its own crop. The thread turns every crop into its region the way
//! `ugatit-infer translate --crop` does ([`Crop::region`], the face finder for `auto`), cuts the
//! regions out and translates them in one forward pass as whole images: the same pixels as
//! translating each with its crop.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::Backend;
use image::RgbImage;
use tokio::sync::{mpsc, oneshot};
use ugatit_infer::face::FaceFinder;
use ugatit_infer::{Crop, Options, Translator};
use ugatit_io::device::{run_on, DeviceWork};
use ugatit_io::DeviceChoice;
use ugatit_model::Direction;

/// What to load.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Any model path `ugatit-infer` takes.
    pub path: PathBuf,
    pub direction: Direction,
    /// The square side to translate at; `None` for the model's own.
    pub size: Option<usize>,
    /// Already resolved (checked) by the caller.
    pub device: DeviceChoice,
}

/// The model thread stopped or could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("model {path}: {message}")]
    Load { path: String, message: String },
    #[error("the model thread stopped (see the error above)")]
    Stopped,
}

/// A batch's results, one per input, and the seconds the batch took on the model thread.
pub type BatchResult = (Vec<Result<RgbImage, String>>, f64);

struct Request {
    items: Vec<(RgbImage, Crop)>,
    reply: oneshot::Sender<BatchResult>,
}

/// A handle to the model thread.
#[derive(Debug, Clone)]
pub struct Model {
    requests: mpsc::UnboundedSender<Request>,
    size: usize,
}

impl Model {
    /// Starts the thread and waits (blocking) until the model is loaded.
    pub fn start(spec: ModelSpec) -> Result<Model, ModelError> {
        let (requests, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        let path = spec.path.display().to_string();
        let load_error = |message: String| ModelError::Load {
            path: path.clone(),
            message,
        };
        let device = spec.device;
        std::thread::Builder::new()
            .name("model".into())
            .spawn(move || {
                let work = Serve {
                    spec,
                    rx,
                    ready: ready_tx.clone(),
                };
                if let Err(e) = run_on(device, work) {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            })
            .map_err(|e| load_error(e.to_string()))?;
        match ready.recv() {
            Ok(Ok(size)) => Ok(Model { requests, size }),
            Ok(Err(message)) => Err(load_error(message)),
            Err(_) => Err(ModelError::Stopped),
        }
    }

    /// The side of the square results.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Translates `items` in one forward pass; an item whose crop fails (no face is not a
    /// failure: `auto` falls back to the centre) gets its message.
    pub async fn translate(&self, items: Vec<(RgbImage, Crop)>) -> Result<BatchResult, ModelError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { items, reply })
            .map_err(|_| ModelError::Stopped)?;
        answer.await.map_err(|_| ModelError::Stopped)
    }
}

/// The thread's work, generic over the device's backend.
struct Serve {
    spec: ModelSpec,
    rx: mpsc::UnboundedReceiver<Request>,
    ready: std::sync::mpsc::SyncSender<Result<usize, String>>,
}

impl DeviceWork for Serve {
    type Output = ();

    fn run<B: Backend>(mut self, device: &B::Device) {
        let s = &self.spec;
        let translator = match Translator::<B>::load(&s.path, s.direction, s.size, device) {
            Ok(t) => t,
            Err(e) => {
                let _ = self.ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = self.ready.send(Ok(translator.size()));
        let faces = FaceFinder::default();
        while let Some(request) = self.rx.blocking_recv() {
            let started = Instant::now();
            let results = translate(&translator, &faces, request.items);
            let _ = request
                .reply
                .send((results, started.elapsed().as_secs_f64()));
        }
    }
}

/// Crops each image to its region, then translates the regions together.
fn translate<B: Backend>(
    translator: &Translator<B>,
    faces: &FaceFinder,
    items: Vec<(RgbImage, Crop)>,
) -> Vec<Result<RgbImage, String>> {
    let regions: Vec<Result<RgbImage, String>> = items
        .iter()
        .map(|(image, crop)| {
            let r = crop.region(image, faces).map_err(|e| e.to_string())?;
            Ok(image::imageops::crop_imm(image, r.x, r.y, r.width, r.height).to_image())
        })
        .collect();
    let cut: Vec<&RgbImage> = regions.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut translated = translator
        .translate_batch(&cut, &Options::default())
        .into_iter();
    regions
        .iter()
        .map(|r| match r {
            Ok(_) => match translated.next() {
                Some(Ok(out)) => Ok(out.image),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the model returned fewer images than it was given".into()),
            },
            Err(e) => Err(e.clone()),
        })
        .collect()
}
