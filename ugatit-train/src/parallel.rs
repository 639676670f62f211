//! Data-parallel training over several devices: the batch is split evenly across replicas of
//! the networks, each replica runs the step's phases on its share, and the gradients are
//! averaged on the main device, where the one pair of Adam states lives; the replicas are then
//! refreshed from the updated networks. The discriminator update and the generator update each
//! average their own gradients, since the generator step uses the updated discriminators.
//!
//! The average of the replicas' gradients is the gradient of the whole batch: every loss of
//! the official step is a mean over the batch (MSE, L1, BCE) and every norm of the networks is
//! per sample, so with equal shares the mean of the shard losses is the batch loss. Spectral
//! norm's power iteration depends on the weights only, so every replica advances its vectors
//! exactly as the main one does.
//!
//! burn 0.21's own collective (`burn-collective`, `GradientsParams::all_reduce`) is not used:
//! it is not in the offline crate set this workspace builds from, and it all-reduces between
//! peer threads that each own an optimiser, where this design keeps one Adam state. Gradients
//! are moved to the main device with `GradientsParams::to_device` and summed there.
//! Replicas are stepped one after another from one host thread; a GPU runs the kernels queued
//! for it while the host queues the next replica's.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use ugatit_model::{ModelConfig, Ugatit};

use crate::grads::{scale_gradients, sum_gradients};
use crate::step::{DeviceLosses, TrainState};

/// The main training state and its replicas on the other devices.
pub struct DataParallel<B: AutodiffBackend> {
    /// On the first device: the networks checkpoints are written from, and the optimisers.
    pub main: TrainState<B>,
    replicas: Vec<TrainState<B>>,
    devices: Vec<B::Device>,
}

/// Why a batch cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("train.batch_size = {batch} does not split evenly across {devices} devices")]
pub struct ShardError {
    pub batch: usize,
    pub devices: usize,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// `main` on `devices[0]`, with a replica on each further device (the same device may be
    /// named twice: the replicas are still separate networks).
    pub fn new(main: TrainState<B>, model: &ModelConfig, devices: &[B::Device]) -> Self {
        let replicas = devices
            .iter()
            .skip(1)
            .map(|device| {
                // Fresh networks give each replica its own spectral-norm vectors (clones would
                // share them); their weights are replaced at once.
                let mut r = TrainState::new(Ugatit::init(model, 0, device), main.config());
                refresh(&main, &mut r, device);
                r
            })
            .collect();
        Self {
            main,
            replicas,
            devices: devices.to_vec(),
        }
    }

    /// Checks that `batch` splits evenly across the devices.
    pub fn check_batch(devices: usize, batch: usize) -> Result<(), ShardError> {
        if devices == 0 || !batch.is_multiple_of(devices) {
            return Err(ShardError { batch, devices });
        }
        Ok(())
    }

    /// One official step on the batches `a` and `b` (on the main device), split across the
    /// devices. With one device this is [`TrainState::step_on_device`] itself.
    pub fn step_on_device(&mut self, a: Tensor<B, 4>, b: Tensor<B, 4>, lr: f64) -> DeviceLosses<B> {
        if self.replicas.is_empty() {
            return self.main.step_on_device(a, b, lr);
        }
        let n = self.devices.len();
        let share = a.dims()[0] / n;
        let shards: Vec<_> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let cut = |x: &Tensor<B, 4>| x.clone().narrow(0, i * share, share).to_device(d);
                (cut(&a), cut(&b))
            })
            .collect();
        for r in &mut self.replicas {
            r.scaler = self.main.scaler;
        }
        let main_device = self.devices[0].clone();

        // The discriminators' update, from every replica's share.
        let (mut translations, mut d_losses, mut grads) = (Vec::new(), Vec::new(), Vec::new());
        for (s, (a, b)) in self.states().zip(&shards) {
            let t = s.translate(a, b);
            let d = s.discriminator_losses(a, b, &t);
            grads.push(s.gradients(&d.total, &s.dis));
            translations.push(t);
            d_losses.push(d);
        }
        let grads = mean(grads, &self.main.dis, &main_device);
        let d_applied = self.main.update_discriminators(grads, lr);
        self.refresh_discriminators();

        // The generators' update, against the updated discriminators.
        let (mut losses, mut grads) = (Vec::new(), Vec::new());
        let parts = self.states().zip(&shards).zip(translations).zip(d_losses);
        for (((s, (a, b)), t), d) in parts {
            let g = s.generator_losses(a, b, t);
            grads.push(s.gradients(&g.total, &s.gens));
            losses.push(DeviceLosses::new(&d, &g));
        }
        let grads = mean(grads, &self.main.gens, &main_device);
        let g_applied = self.main.update_generators(grads, lr);
        self.main.end_scaled_step(d_applied && g_applied);
        self.refresh_generators();
        DeviceLosses::mean(losses, &main_device).skipped(!(d_applied && g_applied))
    }

    /// The main state, then the replicas.
    fn states(&self) -> impl Iterator<Item = &TrainState<B>> {
        std::iter::once(&self.main).chain(&self.replicas)
    }

    fn refresh_discriminators(&mut self) {
        for (r, device) in self.replicas.iter_mut().zip(&self.devices[1..]) {
            r.dis = copy_of(&self.main.dis, r.dis.clone(), device);
        }
    }

    fn refresh_generators(&mut self) {
        for (r, device) in self.replicas.iter_mut().zip(&self.devices[1..]) {
            r.gens = copy_of(&self.main.gens, r.gens.clone(), device);
        }
    }
}

/// Makes `replica` a copy of `main`'s networks on `device`.
fn refresh<B: AutodiffBackend>(
    main: &TrainState<B>,
    replica: &mut TrainState<B>,
    device: &B::Device,
) {
    replica.gens = copy_of(&main.gens, replica.gens.clone(), device);
    replica.dis = copy_of(&main.dis, replica.dis.clone(), device);
}

/// `replica` (a module with its own spectral-norm state) holding `main`'s weights, ids and
/// spectral-norm vectors on `device`, its parameters fresh leaves of the autodiff graph.
fn copy_of<B: AutodiffBackend, M: Module<B>>(main: &M, replica: M, device: &B::Device) -> M {
    // A RunningState keeps the last forward's pending update beside its value, and
    // `load_record` replaces only the value: the next read would average the stale update back
    // in. Taking a record first folds it in, so the loaded value is what the next read sees.
    let _ = replica.clone().into_record();
    replica.load_record(main.clone().into_record()).fork(device)
}

/// The mean of the replicas' gradients, on the main device.
fn mean<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(
    grads: Vec<burn::optim::GradientsParams>,
    module: &M,
    device: &B::Device,
) -> burn::optim::GradientsParams {
    let n = grads.len();
    let sum = sum_gradients(grads, module, device);
    scale_gradients(sum, module, 1.0 / n as f32, false).0
}
