//! The one table of config keys. It decides what `--set section.key=value` accepts, which keys
//! are paths made absolute at load, the range each value must keep (checked at load, naming the
//! key), and the sections named in errors. A key added to a section's struct and not here is
//! caught by a test (the table must list every field of the defaults).

use std::path::PathBuf;

use super::Config;

/// What a key's value must be, beyond its type (which serde checks).
#[derive(Clone, Copy)]
pub enum Rule {
    /// Any value of the key's type.
    Any,
    /// A path (or bucket URL), made absolute at load: the accessor of its field.
    Path(fn(&mut Config) -> &mut Option<PathBuf>),
    /// A range: the allowed values as the error states them, and the value (as written back)
    /// with whether it keeps the range.
    Range(&'static str, fn(&Config) -> (String, bool)),
    /// A `[model]` key: checked by the networks crate's `ModelConfig::validate`, which also
    /// checks the keys against each other (the discriminators' depth against `img_size`).
    Model,
}

/// One `section.key`.
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub rule: Rule,
}

impl Key {
    /// The section, `train` of `train.lr`.
    pub fn section(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(s, _)| s)
    }
}

const fn any(name: &'static str) -> Key {
    Key {
        name,
        rule: Rule::Any,
    }
}

const fn model(name: &'static str) -> Key {
    Key {
        name,
        rule: Rule::Model,
    }
}

/// `range!(section.field, "allowed", |v| ok)`: a range rule on a numeric field.
macro_rules! range {
    ($section:ident . $field:ident, $allowed:literal, |$v:ident| $ok:expr) => {
        Key {
            name: concat!(stringify!($section), ".", stringify!($field)),
            rule: Rule::Range($allowed, |c: &Config| {
                let $v = c.$section.$field;
                ($v.to_string(), $ok)
            }),
        }
    };
}

/// Every key, in the README's order (the order they are checked in).
pub const KEYS: &[Key] = &[
    model("model.img_size"),
    model("model.ch"),
    model("model.n_res"),
    model("model.light"),
    model("model.n_dis_global"),
    model("model.n_dis_local"),
    range!(train.iterations, "at least 1", |v| v >= 1),
    range!(train.batch_size, "1 to 4096", |v| (1..=4096).contains(&v)),
    range!(train.lr, "a positive number", |v| v.is_finite() && v > 0.0),
    range!(train.beta1, "0 <= beta1 < 1", |v| (0.0..1.0).contains(&v)),
    range!(train.beta2, "0 <= beta2 < 1", |v| (0.0..1.0).contains(&v)),
    range!(train.weight_decay, "a number >= 0", |v| v.is_finite()
        && v >= 0.0),
    any("train.decay_lr"),
    range!(train.adv_weight, "a number >= 0", |v| v.is_finite()
        && v >= 0.0),
    range!(train.cycle_weight, "a number >= 0", |v| v.is_finite()
        && v >= 0.0),
    range!(train.identity_weight, "a number >= 0", |v| v.is_finite()
        && v >= 0.0),
    range!(train.cam_weight, "a number >= 0", |v| v.is_finite()
        && v >= 0.0),
    any("train.seed"),
    any("train.augment"),
    Key {
        name: "train.init",
        rule: Rule::Path(|c| &mut c.train.init),
    },
    any("train.precision"),
    Key {
        name: "data.root",
        rule: Rule::Path(|c| &mut c.data.root),
    },
    range!(data.workers, "1 to 64", |v| (1..=64).contains(&v)),
    any("data.toy_if_missing"),
    range!(checkpoint.every, "at least 1", |v| v >= 1),
    range!(checkpoint.keep, "at least 1", |v| v >= 1),
    any("checkpoint.milestone_every"),
    range!(log.every, "at least 1", |v| v >= 1),
    any("log.sample_every"),
    any("log.tensorboard"),
    Key {
        name: "eval.every",
        rule: Rule::Range(
            "0 unless eval.features names pytorch-fid's Inception weights",
            |c| {
                let e = &c.eval;
                (e.every.to_string(), e.every == 0 || e.features.is_some())
            },
        ),
    },
    Key {
        name: "eval.features",
        rule: Rule::Path(|c| &mut c.eval.features),
    },
    range!(eval.images, "at least 2", |v| v >= 2),
    range!(eval.kid_subsets, "at least 1", |v| v >= 1),
    range!(eval.kid_subset_size, "at least 2", |v| v >= 2),
];

/// The key named `name`.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The sections, in order.
pub fn sections() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for k in KEYS {
        if !out.contains(&k.section()) {
            out.push(k.section());
        }
    }
    out
}

/// The keys of `section`, without it (`lr` of `train.lr`).
pub fn keys_of(section: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| k.section() == section)
        .map(|k| &k.name[section.len() + 1..])
        .collect()
}
