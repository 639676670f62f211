//! Architecture from tensor shapes, so official checkpoints need no config.

use ugatit_model::nets::network;
use ugatit_model::{ModelConfig, StateDict};

/// The architecture read off a generator's (and, where present, the discriminators') shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    pub config: ModelConfig,
    /// A full generator's first MLP layer fixes `img_size`; a light one's does not, and then
    /// `config.img_size` is the default 256 (or the discriminators' minimum, if larger).
    pub img_size_known: bool,
}

fn dims(sd: &StateDict, key: &str) -> Option<Vec<usize>> {
    sd.get(key).map(|t| t.shape.to_vec())
}

/// Infers the architecture from a generator's tensors (keys without prefix) and, optionally,
/// a global and a local discriminator's. The error says what makes it no U-GAT-IT generator.
pub fn infer_config(
    generator: &StateDict,
    dis_global: Option<&StateDict>,
    dis_local: Option<&StateDict>,
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
            generator.contains_key(&format!("DownBlock.{}.conv_block.1.weight", 12 + i))
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
    let depth = |d: Option<&StateDict>, default: usize| match d {
        Some(d) => {
            (0..)
                .take_while(|i| d.contains_key(&format!("model.{}.weight_orig", 1 + 3 * i)))
                .count()
                + 1
        }
        None => default,
    };
    config.n_dis_global = depth(dis_global, config.n_dis_global);
    config.n_dis_local = depth(dis_local, config.n_dis_local);
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

/// Whether `sd` holds prefixed networks (`genA2B.…`) rather than one bare generator, and the
/// architecture its shapes imply.
pub fn infer_any(sd: &StateDict) -> Result<(bool, Inferred), String> {
    let is_model = sd
        .keys()
        .any(|k| k.starts_with("genA2B.") || k.starts_with("genB2A."));
    if !is_model {
        return Ok((false, infer_config(sd, None, None)?));
    }
    let gen = network(sd, "genA2B");
    let gen = if gen.is_empty() {
        network(sd, "genB2A")
    } else {
        gen
    };
    let (dg, dl) = (network(sd, "disGA"), network(sd, "disLA"));
    let inferred = infer_config(
        &gen,
        (!dg.is_empty()).then_some(&dg),
        (!dl.is_empty()).then_some(&dl),
    )?;
    Ok((true, inferred))
}
