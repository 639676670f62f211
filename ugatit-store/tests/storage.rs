//! Our own formats: checkpoints in run folders and generator-only files round-trip bit-exactly,
//! and the newest complete checkpoint is the one a run folder resolves to.

mod common;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use common::fixture;
use ugatit_model::nets::trainable_params;
use ugatit_model::StateDict;
use ugatit_model::{Cpu, Direction, ModelConfig, Ugatit};
use ugatit_store::checkpoint::RunDir;
use ugatit_store::export::{save_generator_safetensors, StoreDtype};
use ugatit_store::SourceFormat;
use ugatit_store::{load_generator, load_model, read_tensors};

fn official_light() -> (Ugatit<Cpu>, ModelConfig) {
    let (m, t) =
        load_model::<Cpu>(&fixture("bad").join("light_ch2.pt"), &Default::default()).unwrap();
    (m, t.config)
}

fn assert_same(a: &StateDict, b: &StateDict) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        assert_eq!(v, &b[k], "{k} differs");
    }
}

#[test]
fn checkpoints_round_trip_and_the_newest_complete_one_wins() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    for step in [3, 5] {
        let staged = run.begin_checkpoint(step).unwrap();
        staged.write_nets(&model, &config).unwrap();
        staged.commit().unwrap();
    }
    // A crash mid-write leaves a staging folder; a stray folder has no networks file.
    let staged = run.begin_checkpoint(9).unwrap();
    std::fs::write(staged.dir().join("nets.safetensors"), b"half").unwrap();
    std::fs::create_dir_all(run.checkpoints_dir().join("step-00000007")).unwrap();
    let steps: Vec<u64> = run.checkpoints().unwrap().iter().map(|c| c.step).collect();
    assert_eq!(steps, [3, 5]);

    let (loaded, t) = load_model::<Cpu>(dir.path(), &Default::default()).unwrap();
    assert_eq!(t.format, SourceFormat::Checkpoint);
    assert_eq!(t.step, Some(5));
    assert_eq!(t.config, config);
    assert_same(&model.to_state_dict(), &loaded.to_state_dict());
}

#[test]
fn replacing_a_checkpoint_of_the_same_step_never_leaves_the_step_without_one() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let commit = |extra: &[u8]| {
        let staged = run.begin_checkpoint(4).unwrap();
        staged.write_nets(&model, &config).unwrap();
        std::fs::write(staged.dir().join("extra.bin"), extra).unwrap();
        staged.commit().unwrap()
    };
    let old = commit(b"old");
    // The state between the commit's two renames: the old checkpoint moved aside, the new one
    // still staged. The old one must still be found, whole.
    let staged = run.begin_checkpoint(4).unwrap();
    staged.write_nets(&model, &config).unwrap();
    let aside = run.checkpoints_dir().join(".step-00000004.replaced");
    std::fs::rename(&old.dir, &aside).unwrap();
    let (found, bad) = run.latest_verified().unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    let found = found.expect("the checkpoint moved aside is still listed");
    assert_eq!((found.step, found.dir.clone()), (4, aside.clone()));
    assert_eq!(std::fs::read(found.dir.join("extra.bin")).unwrap(), b"old");
    drop(staged);

    // A replacement then puts the new one in place and removes what was set aside.
    let new = commit(b"new");
    assert_eq!(new.dir, run.checkpoints_dir().join("step-00000004"));
    assert!(!aside.exists());
    let all = run.checkpoints().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(std::fs::read(all[0].dir.join("extra.bin")).unwrap(), b"new");
    all[0].verify().unwrap();
    // And a plain replacement (nothing set aside) leaves nothing behind either.
    commit(b"newer");
    let names: Vec<String> = std::fs::read_dir(run.checkpoints_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["step-00000004"]);
}

#[test]
fn commit_refuses_a_checkpoint_without_networks() {
    let dir = tempfile::tempdir().unwrap();
    let staged = RunDir::new(dir.path()).begin_checkpoint(1).unwrap();
    let e = staged.commit().unwrap_err().to_string();
    assert!(e.contains("call write_nets before commit"), "{e}");
}

#[test]
fn generator_files_round_trip_and_know_their_direction() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b2a.safetensors");
    save_generator_safetensors(
        &path,
        &model.gen_b2a,
        &config,
        Direction::B2A,
        Some(42),
        None,
        StoreDtype::F32,
    )
    .unwrap();

    let t = read_tensors(&path).unwrap();
    assert_eq!(t.format, SourceFormat::GeneratorFile);
    assert_eq!((t.direction, t.step), (Some(Direction::B2A), Some(42)));
    let g = load_generator::<Cpu>(&path, Direction::B2A, &Default::default()).unwrap();
    assert_eq!(g.config, config);
    let x = Tensor::<Cpu, 4>::random(
        [1, 3, 32, 32],
        burn::tensor::Distribution::Default,
        &Default::default(),
    );
    let want = model.gen_b2a.forward(x.clone()).image.into_data();
    let got = g.generator.forward(x).image.into_data();
    assert_eq!(want, got);

    let e = load_generator::<Cpu>(&path, Direction::A2B, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("this generator translates b2a; it cannot translate a2b"),
        "{e}"
    );
    let e = load_model::<Cpu>(&path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds a single generator"), "{e}");
}

#[test]
fn plain_safetensors_with_official_keys_are_read_by_shape() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    let sd = model.to_state_dict();
    let views: Vec<(String, safetensors::tensor::TensorView)> = sd
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    v.shape.to_vec(),
                    &v.bytes,
                )
                .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, &None, &path).unwrap();
    let (loaded, t) = load_model::<Cpu>(&path, &Default::default()).unwrap();
    assert_eq!(t.format, SourceFormat::PlainSafetensors);
    assert_eq!(t.config, config);
    assert!(
        !t.img_size_known,
        "a light model's shapes do not fix img_size"
    );
    assert_same(&sd, &loaded.to_state_dict());
}

struct Ids(Vec<ParamId>);
impl<B: Backend> ModuleVisitor<B> for Ids {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0.push(p.id);
    }
}

fn ids<M: Module<Cpu>>(m: &M) -> Vec<ParamId> {
    let mut v = Ids(Vec::new());
    m.visit(&mut v);
    v.0
}

#[test]
fn initialisation_is_seeded_and_ids_are_stable_across_loads() {
    let (_, config) = official_light();
    let device = Default::default();
    let a = Ugatit::<Cpu>::init(&config, 7, &device);
    let b = Ugatit::<Cpu>::init(&config, 7, &device);
    let c = Ugatit::<Cpu>::init(&config, 8, &device);
    let (sa, sb, sc) = (a.to_state_dict(), b.to_state_dict(), c.to_state_dict());
    assert_same(&sa, &sb);
    assert_ne!(
        sa["genA2B.DownBlock.1.weight"],
        sc["genA2B.DownBlock.1.weight"]
    );
    // The official initial values of the norms.
    assert!(sa["genA2B.UpBlock1_1.norm1.rho"]
        .iter::<f32>()
        .all(|v| v == 0.9));
    assert!(sa["genA2B.UpBlock2.3.gamma"]
        .iter::<f32>()
        .all(|v| v == 1.0));
    // Ids depend on the key alone, so optimiser state follows a model through a reload.
    let reloaded = Ugatit::<Cpu>::from_state_dict(&config, &sa, &device).unwrap();
    assert_eq!(ids(&a), ids(&reloaded));
    let all = ids(&a);
    let unique: std::collections::BTreeSet<u64> = all.iter().map(|i| i.val()).collect();
    assert_eq!(unique.len(), all.len(), "ids are unique");
}

#[test]
fn parameter_counts_at_the_default_config_are_the_official_ones() {
    let cfg = ModelConfig::default();
    let light = ModelConfig {
        light: true,
        ..cfg.clone()
    };
    let device = Default::default();
    // Lazy initialisation: counting reads shapes and allocates nothing.
    let full = Ugatit::<Cpu>::init(&cfg, 0, &device);
    let light = Ugatit::<Cpu>::init(&light, 0, &device);
    assert_eq!(trainable_params(&full.gen_a2b), 278_959_808);
    assert_eq!(trainable_params(&light.gen_a2b), 10_589_888);
    assert_eq!(trainable_params(&full.dis_ga), 53_130_176);
    assert_eq!(trainable_params(&full.dis_la), 3_290_560);
}

#[test]
fn a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    for step in [3, 5] {
        let staged = run.begin_checkpoint(step).unwrap();
        staged.write_nets(&model, &config).unwrap();
        std::fs::write(staged.dir().join("trainer.json"), b"{}").unwrap();
        staged.commit().unwrap();
    }
    let newest = run.latest().unwrap().unwrap();
    newest.verify().unwrap();
    let mut bytes = std::fs::read(newest.file()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(newest.file(), &bytes).unwrap();
    let e = newest.verify().unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");

    let t = read_tensors(dir.path()).unwrap();
    assert_eq!(t.step, Some(3));
    assert_eq!(t.skipped.len(), 1);
    assert!(t.skipped[0].contains("step-00000005"), "{:?}", t.skipped);
    // Reading changed nothing; a resuming trainer sets the damaged one aside, out of the list
    // retention counts.
    assert_eq!(run.checkpoints().unwrap().len(), 2);
    let (found, damaged) = run.latest_verified_setting_aside().unwrap();
    assert_eq!(found.unwrap().step, 3);
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0].error.to_string().contains("checksum mismatch"));
    assert!(damaged[0]
        .moved_to
        .ends_with("checkpoints/.step-00000005.damaged"));
    assert!(damaged[0].moved_to.is_dir());
    let steps: Vec<u64> = run.checkpoints().unwrap().iter().map(|c| c.step).collect();
    assert_eq!(steps, [3]);
    // A file the trainer added is covered too.
    let older = run.checkpoints().unwrap().remove(0);
    std::fs::write(older.dir.join("trainer.json"), b"{}  ").unwrap();
    let e = older.verify().unwrap_err().to_string();
    assert!(
        e.contains("trainer.json: 4 bytes, but the manifest says 2"),
        "{e}"
    );
}

#[test]
fn pruning_keeps_the_newest_and_the_milestones() {
    let (model, config) = official_light();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    for step in 1..=6 {
        let staged = run.begin_checkpoint(step).unwrap();
        staged.write_nets(&model, &config).unwrap();
        staged.commit().unwrap();
    }
    assert_eq!(run.prune(2, 3).unwrap(), [1, 2, 4]);
    let steps: Vec<u64> = run.checkpoints().unwrap().iter().map(|c| c.step).collect();
    assert_eq!(steps, [3, 5, 6]);
}

/// The rule both the run folder and the bucket prune by.
#[test]
fn retention_keeps_the_newest_the_milestones_and_the_pinned_step() {
    use ugatit_store::checkpoint::retention;
    assert_eq!(retention(&[1, 2, 3, 4, 5, 6], 2, 3, None), [1, 2, 4]);
    assert_eq!(retention(&[6, 1, 4, 2, 5, 3, 6], 2, 0, None), [1, 2, 3, 4]);
    assert_eq!(retention(&[1, 2, 3, 4], 1, 0, Some(2)), [1, 3]);
    // At least one is kept, whatever `keep` says; nothing to prune in a short list.
    assert_eq!(retention(&[1, 2], 0, 0, None), [1]);
    assert!(retention(&[7], 3, 0, None).is_empty());
    assert!(retention(&[], 1, 0, None).is_empty());
}
