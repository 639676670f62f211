//! Architecture from tensor shapes, so official checkpoints need no config.

use ugatit_model::params::{Prefixed, TensorSource};
use ugatit_model::ModelConfig;

/// The architecture read off a generator's (and, where present, the discriminators') shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    pub config: ModelConfig,
    /// A full generator's first MLP layer fixes `img_size`; a light one's does not, and then
    /// `config.img_size` is the default 256 (or the discriminators' minimum, if larger).
    pub img_size_known: bool,
}

fn dims(sd: &dyn TensorSource, key: &str) -> Option<Vec<usize>> {
    sd.shape(key)
}

fn has(sd: &dyn TensorSource, key: &str) -> bool {
    sd.shape(key).is_some()
}

/// Infers the architecture from a generator's tensors (keys without prefix) and, optionally,
/// a global and a local discriminator's. The error says what makes it no U-GAT-IT generator.
pub fn infer_config(
    generator: &dyn TensorSource,
    dis_global: Option<&dyn TensorSource>,
    dis_local: Option<&dyn TensorSource>,
) -> Result<Inferred, String> {
    let first = dims(generator, "DownBlock.1.weight")
        .ok_or("no generator tensor DownBlock.1.weight was found")?;
    let ch = match first.as_slice() {
        [ch, 3, 7, 7] => *ch,
        other => {
            return Err(format!(
                "DownBlock.1.weight has shape {other:?}, not [ch, 3, 7, 7]"
            ))
        }
    };
    let n_res = (0..)
        .take_while(|i| {
            has(
                generator,
                &format!("DownBlock.{}.conv_block.1.weight", 12 + i),
            )
        })
        .count();
    if n_res == 0 {
        return Err("no residual blocks (DownBlock.12.conv_block.1.weight) were found".into());
    }
    let c = 4 * ch;
    let fc = dims(generator, "FC.0.weight").ok_or("no MLP tensor FC.0.weight was found")?;
    let fin = match fc.as_slice() {
        [out, fin] if *out == c => *fin,
        other => return Err(format!("FC.0.weight has shape {other:?}, not [{c}, ...]")),
    };
    let mut config = ModelConfig {
        ch,
        n_res,
        ..ModelConfig::default()
    };
    config.n_dis_global = discriminator_depth(dis_global, "disGA")?.unwrap_or(config.n_dis_global);
    config.n_dis_local = discriminator_depth(dis_local, "disLA")?.unwrap_or(config.n_dis_local);
    let img_size_known = if fin == c {
        config.light = true;
        config.img_size = config.img_size.max(config.min_img_size());
        false
    } else {
        let side = ((fin / c) as f64).sqrt().round() as usize;
        if !fin.is_multiple_of(c) || side * side * c != fin {
            return Err(format!(
                "FC.0.weight has {fin} inputs: neither {c} (light) nor {c} x (img_size/4)^2 (full)"
            ));
        }
        config.img_size = 4 * side;
        true
    };
    Ok(Inferred {
        config,
        img_size_known,
    })
}

/// The depth of a discriminator (its `n_layers`) from its spectral-normed convolutions
/// `model.1`, `model.4`, ... (`weight_orig`, as the official `spectral_norm` stores it), or
/// `None` without one. A discriminator saved without spectral norm, or too shallow for the
/// official architecture (3 layers at least), is refused naming the missing tensor.
fn discriminator_depth(d: Option<&dyn TensorSource>, net: &str) -> Result<Option<usize>, String> {
    let Some(d) = d else {
        return Ok(None);
    };
    let convs = (0..)
        .take_while(|i| has(d, &format!("model.{}.weight_orig", 1 + 3 * i)))
        .count();
    let n_layers = convs + 1;
    if n_layers < 3 {
        return Err(format!(
            "missing tensor {net}.model.{}.weight_orig: the discriminators must be spectral-normed \
             as the official code saves them (weight_orig, weight_u, weight_v), with at least 2 \
             convolutions",
            1 + 3 * convs
        ));
    }
    Ok(Some(n_layers))
}

/// Whether `sd` holds prefixed networks (`genA2B.…`) rather than one bare generator, and the
/// architecture its shapes imply.
pub fn infer_any(sd: &dyn TensorSource) -> Result<(bool, Inferred), String> {
    let keys = sd.keys();
    let is_model = keys
        .iter()
        .any(|k| k.starts_with("genA2B.") || k.starts_with("genB2A."));
    if !is_model {
        return Ok((false, infer_config(sd, None, None)?));
    }
    let holds = |name: &str| keys.iter().any(|k| k.starts_with(&format!("{name}.")));
    let gen = Prefixed::network(sd, if holds("genA2B") { "genA2B" } else { "genB2A" });
    let (dg, dl) = (
        Prefixed::network(sd, "disGA"),
        Prefixed::network(sd, "disLA"),
    );
    let inferred = infer_config(
        &gen,
        holds("disGA").then_some(&dg as &dyn TensorSource),
        holds("disLA").then_some(&dl as &dyn TensorSource),
    )?;
    Ok((true, inferred))
}
