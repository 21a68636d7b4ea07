//! Search spaces: float (log, step), int (log, step) and categorical parameters, from TOML or the
//! documented default.
//!
//! Samplers work in an internal coordinate per parameter: ln(x) for log parameters, x for other
//! numbers, the choice index for categoricals.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

/// The most values `Distribution::grid` lists.
pub const GRID_MAX: usize = 4096;

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
choices = ["linear", "mlp", "lstm", "gru"]

[layout]
type = "categorical"
choices = ["pooled"]

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
low = 5
high = 20
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

impl RawParam {
    fn distribution(self) -> Result<Distribution, String> {
        match self.kind.as_str() {
            "float" => self.float(),
            "int" => self.int(),
            "categorical" => self.categorical(),
            other => Err(format!("type must be float, int or categorical, got '{other}'")),
        }
    }

    fn float(self) -> Result<Distribution, String> {
        let (Some(low), Some(high)) = (num(&self.low), num(&self.high)) else {
            return Err("a float needs numeric low and high".into());
        };
        let log = self.log.unwrap_or(false);
        let step = num(&self.step);
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(format!("needs low < high, got low {low}, high {high}"));
        }
        if log && low <= 0.0 {
            return Err(format!("a log parameter needs low > 0, got {low}"));
        }
        if let Some(s) = step {
            if log || s <= 0.0 || s > high - low {
                return Err("step must be > 0, at most high - low, and not combined with log".into());
            }
        }
        if self.choices.is_some() {
            return Err("choices belong to categorical parameters".into());
        }
        Ok(Distribution::Float { low, high, log, step })
    }

    fn int(self) -> Result<Distribution, String> {
        let (Some(low), Some(high)) = (int(&self.low), int(&self.high)) else {
            return Err("an int needs integer low and high".into());
        };
        let log = self.log.unwrap_or(false);
        let step = match &self.step {
            Some(_) => int(&self.step).ok_or("step of an int must be an integer")?,
            None => 1,
        };
        if low >= high {
            return Err(format!("needs low < high, got low {low}, high {high}"));
        }
        if log && (low < 1 || step != 1) {
            return Err("a log int needs low >= 1 and no step".into());
        }
        if step < 1 || (high - low) % step != 0 {
            return Err(format!("step must be >= 1 and divide high - low, got {step}"));
        }
        Ok(Distribution::Int { low, high, log, step })
    }

    fn categorical(self) -> Result<Distribution, String> {
        let choices = self.choices.ok_or("a categorical needs choices = [...]")?;
        if choices.is_empty() {
            return Err("choices is empty".into());
        }
        let choices = choices
            .into_iter()
            .map(|c| match c {
                toml::Value::String(s) => Ok(Json::from(s)),
                toml::Value::Integer(i) => Ok(Json::from(i)),
                toml::Value::Float(f) => Ok(Json::from(f)),
                toml::Value::Boolean(b) => Ok(Json::from(b)),
                other => Err(format!("choice {other} is not a string, number or boolean")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Distribution::Categorical { choices })
    }
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

    /// Parses a space: one table per parameter, in the file's order, `type = "float" | "int" |
    /// "categorical"`. Errors name the parameter.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
        let mut params = Vec::new();
        for (name, value) in table {
            let raw: RawParam =
                value.try_into().map_err(|e: toml::de::Error| format!("parameter '{name}': {}", e.message()))?;
            let dist = raw.distribution().map_err(|e| format!("parameter '{name}': {e}"))?;
            params.push(Param { name, dist });
        }
        if params.is_empty() {
            return Err("the space has no parameters".into());
        }
        Ok(Self { params })
    }

    /// The parameters at a point in internal coordinates (ints and steps rounded).
    pub fn params_at(&self, x: &[f64]) -> Params {
        self.params.iter().zip(x).map(|(p, &u)| (p.name.clone(), p.dist.from_internal(u))).collect()
    }

    /// (low, high) of each parameter's internal coordinate.
    pub fn bounds(&self) -> Vec<(f64, f64)> {
        self.params.iter().map(|p| p.dist.bounds()).collect()
    }
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

    /// The internal coordinates of every legal value of an int or stepped float parameter (None
    /// for continuous and categorical ones, and for grids of more than `GRID_MAX` values, which
    /// are searched as continuous and rounded).
    pub fn grid(&self) -> Option<Vec<f64>> {
        let values: Vec<Json> = match self {
            Distribution::Int { low, high, step, .. } => {
                let n = (high - low) / step + 1;
                if n as usize > GRID_MAX {
                    return None;
                }
                (0..n).map(|k| Json::from(low + k * step)).collect()
            }
            Distribution::Float { low, high, step: Some(s), .. } => {
                let n = ((high - low) / s + 1e-9).floor() as usize + 1;
                if n > GRID_MAX {
                    return None;
                }
                (0..n).map(|k| Json::from((low + k as f64 * s).min(*high))).collect()
            }
            _ => return None,
        };
        values.iter().map(|v| self.to_internal(v)).collect()
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

    /// A legal value in Optuna's internal representation (`param_value` in its storage): the
    /// number itself, or a categorical choice's index.
    pub fn to_optuna(&self, v: &Json) -> Option<f64> {
        match self {
            Distribution::Categorical { .. } => self.to_internal(v),
            _ => v.as_f64(),
        }
    }

    /// The value that Optuna's internal representation stands for (None when it is not legal).
    pub fn from_optuna(&self, x: f64) -> Option<Json> {
        let v = match self {
            Distribution::Float { .. } => Json::from(x),
            Distribution::Int { .. } => Json::from(x.round() as i64),
            Distribution::Categorical { choices } => {
                return (x >= 0.0 && x.fract() == 0.0).then(|| choices.get(x as usize).cloned()).flatten()
            }
        };
        self.contains(&v).then_some(v)
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

/// A parameter's value as a person writes it: whole numbers and names as they are, a fraction
/// to 4 significant digits, and a very small or large one in scientific notation with 3
/// (`1.00e-4`, not `0.00010000000000000009`).
pub fn display_value(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x == 0.0 || !x.is_finite() {
                format!("{x}")
            } else if x.abs() < 1e-2 || x.abs() >= 1e4 {
                format!("{x:.2e}")
            } else {
                let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
                let text = format!("{x:.digits$}");
                if text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    text
                }
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod display_tests {
    use super::display_value;
    use serde_json::json;

    #[test]
    fn values_read_as_a_person_writes_them() {
        assert_eq!(display_value(&json!(0.00010000000000000009)), "1.00e-4");
        assert_eq!(display_value(&json!(1.0000000000000004e-6)), "1.00e-6");
        assert_eq!(display_value(&json!(0.123456)), "0.1235");
        assert_eq!(display_value(&json!(0.5)), "0.5");
        assert_eq!(display_value(&json!(12.5)), "12.5");
        assert_eq!(display_value(&json!(64)), "64");
        assert_eq!(display_value(&json!("gru")), "gru");
    }
}
