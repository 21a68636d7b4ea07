//! Search spaces: float (log, step), int (log, step) and categorical parameters, from TOML or the
//! documented default.
//!
//! Samplers work in an internal coordinate per parameter: ln(x) for log parameters, x for other
//! numbers, the choice index for categoricals.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    Float { low: f64, high: f64, log: bool, step: Option<f64> },
    Int { low: i64, high: i64, log: bool, step: i64 },
    Categorical { choices: Vec<Json> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub dist: Distribution,
}

/// Parameters in a fixed order (the order of the file, or the default's).
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub params: Vec<Param>,
}

/// The default space over the model's hyperparameters.
pub const DEFAULT_TOML: &str = r#"
[model_type]
type = "categorical"
choices = ["mlp", "lstm", "gru"]

[hidden_size]
type = "int"
low = 16
high = 128
step = 16

[num_layers]
type = "int"
low = 1
high = 3

[dropout]
type = "float"
low = 0.0
high = 0.5

[learning_rate]
type = "float"
low = 1e-4
high = 1e-2
log = true

[weight_decay]
type = "float"
low = 1e-6
high = 1e-1
log = true

[batch_size]
type = "categorical"
choices = [32, 64, 128]

[seq_len]
type = "int"
low = 10
high = 40
step = 5
"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type")]
    kind: String,
    low: Option<toml::Value>,
    high: Option<toml::Value>,
    log: Option<bool>,
    step: Option<toml::Value>,
    choices: Option<Vec<toml::Value>>,
}

fn num(v: &Option<toml::Value>) -> Option<f64> {
    match v {
        Some(toml::Value::Float(f)) => Some(*f),
        Some(toml::Value::Integer(i)) => Some(*i as f64),
        _ => None,
    }
}

fn int(v: &Option<toml::Value>) -> Option<i64> {
    match v {
        Some(toml::Value::Integer(i)) => Some(*i),
        _ => None,
    }
}

impl Space {
    pub fn default_space() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the default space is valid")
    }

    /// Parses a space: one table per parameter, `type = "float" | "int" | "categorical"`.
    /// Errors name the parameter.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        // toml keeps the file's key order only with preserve_order; parse the order separately.
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
        let order = key_order(text, &table);
        let mut params = Vec::new();
        for name in order {
            let raw: RawParam = table[&name]
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| format!("parameter '{name}': {}", e.message()))?;
            let bad = |what: &str| format!("parameter '{name}': {what}");
            let dist = match raw.kind.as_str() {
                "float" => {
                    let (Some(low), Some(high)) = (num(&raw.low), num(&raw.high)) else {
                        return Err(bad("a float needs numeric low and high"));
                    };
                    let log = raw.log.unwrap_or(false);
                    let step = num(&raw.step);
                    if !(low.is_finite() && high.is_finite() && low < high) {
                        return Err(bad(&format!("needs low < high, got low {low}, high {high}")));
                    }
                    if log && low <= 0.0 {
                        return Err(bad(&format!("a log parameter needs low > 0, got {low}")));
                    }
                    if let Some(s) = step {
                        if log || s <= 0.0 || s > high - low {
                            return Err(bad("step must be > 0, at most high - low, and not combined with log"));
                        }
                    }
                    if raw.choices.is_some() {
                        return Err(bad("choices belong to categorical parameters"));
                    }
                    Distribution::Float { low, high, log, step }
                }
                "int" => {
                    let (Some(low), Some(high)) = (int(&raw.low), int(&raw.high)) else {
                        return Err(bad("an int needs integer low and high"));
                    };
                    let log = raw.log.unwrap_or(false);
                    let step = if raw.step.is_some() {
                        int(&raw.step).ok_or_else(|| bad("step of an int must be an integer"))?
                    } else {
                        1
                    };
                    if low >= high {
                        return Err(bad(&format!("needs low < high, got low {low}, high {high}")));
                    }
                    if log && (low < 1 || step != 1) {
                        return Err(bad("a log int needs low >= 1 and no step"));
                    }
                    if step < 1 || (high - low) % step != 0 {
                        return Err(bad(&format!("step must be >= 1 and divide high - low, got {step}")));
                    }
                    Distribution::Int { low, high, log, step }
                }
                "categorical" => {
                    let choices = raw.choices.ok_or_else(|| bad("a categorical needs choices = [...]"))?;
                    if choices.is_empty() {
                        return Err(bad("choices is empty"));
                    }
                    let choices: Vec<Json> = choices
                        .into_iter()
                        .map(|c| match c {
                            toml::Value::String(s) => Ok(Json::from(s)),
                            toml::Value::Integer(i) => Ok(Json::from(i)),
                            toml::Value::Float(f) => Ok(Json::from(f)),
                            toml::Value::Boolean(b) => Ok(Json::from(b)),
                            other => Err(bad(&format!("choice {other} is not a string, number or boolean"))),
                        })
                        .collect::<Result<_, _>>()?;
                    Distribution::Categorical { choices }
                }
                other => return Err(bad(&format!("type must be float, int or categorical, got '{other}'"))),
            };
            params.push(Param { name, dist });
        }
        if params.is_empty() {
            return Err("the space has no parameters".into());
        }
        Ok(Self { params })
    }

    /// (low, high) of each parameter's internal coordinate.
    pub fn bounds(&self) -> Vec<(f64, f64)> {
        self.params.iter().map(|p| p.dist.bounds()).collect()
    }
}

/// Keys of the top-level tables in the order they appear in the text.
fn key_order(text: &str, table: &toml::Table) -> Vec<String> {
    let mut seen: Vec<(usize, String)> = table
        .keys()
        .map(|k| {
            let pos = text.find(&format!("[{k}]")).or_else(|| text.find(&format!("[\"{k}\"]"))).unwrap_or(usize::MAX);
            (pos, k.clone())
        })
        .collect();
    seen.sort();
    seen.into_iter().map(|(_, k)| k).collect()
}

impl Distribution {
    /// Internal coordinate bounds; ints and categoricals extend half a step each side so that
    /// rounding gives every value the same width.
    pub fn bounds(&self) -> (f64, f64) {
        match self {
            Distribution::Float { low, high, log: true, .. } => (low.ln(), high.ln()),
            Distribution::Float { low, high, .. } => (*low, *high),
            Distribution::Int { low, high, log: true, .. } => ((*low as f64 - 0.5).ln(), (*high as f64 + 0.5).ln()),
            Distribution::Int { low, high, step, .. } => {
                (*low as f64 - 0.5 * *step as f64, *high as f64 + 0.5 * *step as f64)
            }
            Distribution::Categorical { choices } => (-0.5, choices.len() as f64 - 0.5),
        }
    }

    /// Maps an internal coordinate to a legal value.
    pub fn from_internal(&self, u: f64) -> Json {
        match self {
            Distribution::Float { low, high, log, step } => {
                let mut x = if *log { u.exp() } else { u };
                if let Some(s) = step {
                    x = low + ((x - low) / s).round() * s;
                }
                Json::from(x.clamp(*low, *high))
            }
            Distribution::Int { low, high, log, step } => {
                let x = if *log { u.exp() } else { u };
                let k = ((x - *low as f64) / *step as f64).round() as i64;
                Json::from((low + k * step).clamp(*low, *high))
            }
            Distribution::Categorical { choices } => {
                choices[(u.round().max(0.0) as usize).min(choices.len() - 1)].clone()
            }
        }
    }

    /// The internal coordinate of a legal value (None when it is not one).
    pub fn to_internal(&self, v: &Json) -> Option<f64> {
        match self {
            Distribution::Float { log, .. } => v.as_f64().map(|x| if *log { x.ln() } else { x }),
            Distribution::Int { log, .. } => v.as_i64().map(|x| if *log { (x as f64).ln() } else { x as f64 }),
            Distribution::Categorical { choices } => choices.iter().position(|c| c == v).map(|i| i as f64),
        }
    }

    /// Whether a value is legal in this distribution.
    pub fn contains(&self, v: &Json) -> bool {
        match self {
            Distribution::Float { low, high, step, .. } => v.as_f64().is_some_and(|x| {
                x >= *low
                    && x <= *high
                    && step.is_none_or(|s| (((x - low) / s).round() * s + low - x).abs() < 1e-9 * s.max(1.0))
            }),
            Distribution::Int { low, high, step, .. } => {
                v.as_i64().is_some_and(|x| x >= *low && x <= *high && (x - low) % step == 0)
            }
            Distribution::Categorical { choices } => choices.contains(v),
        }
    }

    pub fn is_categorical(&self) -> bool {
        matches!(self, Distribution::Categorical { .. })
    }

    /// Optuna's `distribution_json` for this parameter.
    pub fn optuna_json(&self) -> Json {
        match self {
            Distribution::Float { low, high, log, step } => serde_json::json!({
                "name": "FloatDistribution",
                "attributes": {"low": low, "high": high, "log": log, "step": step}
            }),
            Distribution::Int { low, high, log, step } => serde_json::json!({
                "name": "IntDistribution",
                "attributes": {"low": low, "high": high, "log": log, "step": step}
            }),
            Distribution::Categorical { choices } => serde_json::json!({
                "name": "CategoricalDistribution",
                "attributes": {"choices": choices}
            }),
        }
    }
}

/// A parameter assignment, by name.
pub type Params = BTreeMap<String, Json>;
