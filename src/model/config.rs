//! The model configuration and its validation. Every error names the key and the allowed range.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    /// Logistic regression on the window: the MLP without a hidden layer.
    Linear,
    Mlp,
    Lstm,
    Gru,
}

impl ModelType {
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Linear => "linear",
            ModelType::Mlp => "mlp",
            ModelType::Lstm => "lstm",
            ModelType::Gru => "gru",
        }
    }
}

/// What one sample is. `joint`: a date, with every ticker's features in, every ticker's label
/// out (one network over the whole panel). `pooled`: a (date, ticker) pair, with the ticker's own
/// features and the market's (the cross-sectional mean of every ticker's scaled features) in, its
/// label out: one network shared by the tickers, trained on as many samples per date as there are
/// tickers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Joint,
    Pooled,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Joint => "joint",
            Layout::Pooled => "pooled",
        }
    }
}

/// Hyperparameters of one model. `patience` is optional in files (default 10), and so is `layout`
/// (default `joint`, what every configuration recorded before layouts existed was trained as).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub model_type: ModelType,
    pub layout: Layout,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f64,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub seq_len: usize,
    pub epochs: usize,
    pub patience: usize,
}

enum Kind {
    Int(i64, i64),
    /// (low, high, low is exclusive)
    Float(f64, f64, bool),
    Choice(&'static [&'static str]),
}

/// Keys, allowed values, and whether they are required.
const SPEC: &[(&str, Kind, bool)] = &[
    ("model_type", Kind::Choice(&["linear", "mlp", "lstm", "gru"]), true),
    ("layout", Kind::Choice(&["joint", "pooled"]), false),
    ("hidden_size", Kind::Int(1, 4096), true),
    ("num_layers", Kind::Int(1, 8), true),
    ("dropout", Kind::Float(0.0, 0.9, false), true),
    ("learning_rate", Kind::Float(0.0, 1.0, true), true),
    ("weight_decay", Kind::Float(0.0, 1.0, false), true),
    ("batch_size", Kind::Int(1, 65536), true),
    ("seq_len", Kind::Int(1, 1000), true),
    ("epochs", Kind::Int(1, 100_000), true),
    ("patience", Kind::Int(1, 100_000), false),
];

/// The keys a configuration may hold.
pub const CONFIG_KEYS: &[&str] = &[
    "model_type",
    "layout",
    "hidden_size",
    "num_layers",
    "dropout",
    "learning_rate",
    "weight_decay",
    "batch_size",
    "seq_len",
    "epochs",
    "patience",
];

fn allowed(kind: &Kind) -> String {
    match kind {
        Kind::Int(lo, hi) => format!("an integer in [{lo}, {hi}]"),
        Kind::Float(lo, hi, true) => format!("a number in ({lo}, {hi}]"),
        Kind::Float(lo, hi, false) => format!("a number in [{lo}, {hi}]"),
        Kind::Choice(c) => format!("one of {}", c.join(", ")),
    }
}

impl ModelConfig {
    /// Reads a configuration from JSON text: either the configuration itself or a file with a
    /// top-level `config` object (as `best_config.json` and `final_model/config.json` have).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = value.as_object().ok_or("expected a JSON object of hyperparameters")?;
        match obj.get("config") {
            Some(Value::Object(inner)) => Self::from_map(inner),
            Some(_) => Err("key 'config' must be an object of hyperparameters".into()),
            None => Self::from_map(obj),
        }
    }

    pub fn from_map(obj: &Map<String, Value>) -> Result<Self, String> {
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !CONFIG_KEYS.contains(&key.as_str()) {
                errors.push(format!("unknown key '{key}' (allowed: {})", CONFIG_KEYS.join(", ")));
            }
        }
        for (key, kind, required) in SPEC {
            match obj.get(*key) {
                None if *required => errors.push(format!("missing key '{key}': {}", allowed(kind))),
                None => {}
                Some(v) => {
                    let ok = match kind {
                        Kind::Int(lo, hi) => v.as_i64().is_some_and(|x| x >= *lo && x <= *hi),
                        Kind::Float(lo, hi, open) => v
                            .as_f64()
                            .is_some_and(|x| x.is_finite() && (if *open { x > *lo } else { x >= *lo }) && x <= *hi),
                        Kind::Choice(c) => v.as_str().is_some_and(|s| c.contains(&s)),
                    };
                    if !ok {
                        errors.push(format!("key '{key}' must be {}, got {v}", allowed(kind)));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        let int = |k: &str| obj[k].as_i64().unwrap() as usize;
        let num = |k: &str| obj[k].as_f64().unwrap();
        Ok(Self {
            model_type: serde_json::from_value(obj["model_type"].clone()).unwrap(),
            layout: obj.get("layout").map_or(Layout::Joint, |v| serde_json::from_value(v.clone()).unwrap()),
            hidden_size: int("hidden_size"),
            num_layers: int("num_layers"),
            dropout: num("dropout"),
            learning_rate: num("learning_rate"),
            weight_decay: num("weight_decay"),
            batch_size: int("batch_size"),
            seq_len: int("seq_len"),
            epochs: int("epochs"),
            patience: obj.get("patience").map_or(10, |v| v.as_i64().unwrap() as usize),
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap()
    }

    /// The network shape for a panel of `tickers` whose feature rows are `width` wide (tickers x
    /// features per ticker). A linear model is the MLP without a hidden layer.
    pub fn shape(&self, width: usize, tickers: usize) -> super::NetShape {
        let (inputs, outputs) = match self.layout {
            Layout::Joint => (width, tickers),
            Layout::Pooled => (2 * (width / tickers.max(1)), 1),
        };
        let (model_type, num_layers) = match self.model_type {
            ModelType::Linear => (ModelType::Mlp, 0),
            other => (other, self.num_layers),
        };
        super::NetShape {
            model_type,
            seq_len: self.seq_len,
            inputs,
            outputs,
            hidden_size: self.hidden_size,
            num_layers,
            dropout: self.dropout,
        }
    }

    /// What an epoch of training costs, relative to other configurations on the same panel (see
    /// `NetShape::window_cost`): a pooled model trains on one window per ticker and date, a joint
    /// one on one per date.
    pub fn epoch_cost(&self, width: usize, tickers: usize) -> f64 {
        let windows = match self.layout {
            Layout::Joint => 1.0,
            Layout::Pooled => tickers as f64,
        };
        windows * self.shape(width, tickers).window_cost(self.batch_size)
    }

    /// The training settings, with every random draw seeded by `seed`.
    pub fn settings(&self, seed: u64) -> super::TrainSettings {
        super::TrainSettings {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            patience: self.patience,
            seed,
        }
    }
}

impl Default for ModelConfig {
    /// A small, quick configuration: what `hptune train` uses when asked for the default.
    fn default() -> Self {
        Self {
            model_type: ModelType::Mlp,
            layout: Layout::Pooled,
            hidden_size: 64,
            num_layers: 2,
            dropout: 0.1,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            batch_size: 64,
            seq_len: 20,
            epochs: 50,
            patience: 10,
        }
    }
}
