//! Configs: what `get_config` returns and `from_config` reads (Keras's
//! `{"class_name": ..., "config": {...}}`), as JSON objects with typed getters whose errors
//! name the key.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The settings that rebuild one object, as a JSON object (Keras's config dict).
///
/// ```
/// use kiln::models::Config;
/// let c = Config::new().with("units", 3).with("activation", "relu");
/// assert_eq!(c.get::<usize>("units").unwrap(), 3);
/// assert_eq!(c.get_or("use_bias", true).unwrap(), true);
/// assert!(c.get::<usize>("activation").unwrap_err().to_string().contains("`activation`"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Config(Map<String, Value>);

fn bad(msg: String) -> Error {
    Error::invalid("config", msg)
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// Sets `key` to `value` (anything serde serializes; a non-finite float becomes `null`).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Config {
        self.0.insert(key.to_string(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// The value of `key`; an `Err` naming the key when it is missing or of another type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let v = self.0.get(key).ok_or_else(|| bad(format!("no `{key}` in {}", Value::Object(self.0.clone()))))?;
        T::deserialize(v).map_err(|e| bad(format!("`{key}`: {e} (got {v})")))
    }

    /// The value of `key`, or `default` when it is missing or `null`.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.get(key),
        }
    }

    /// The dtype named under `key` (`"f32"`, ...), or `default` when it is missing.
    pub fn dtype_or(&self, key: &str, default: kiln_ir::DType) -> Result<kiln_ir::DType> {
        match self.get_or::<Option<String>>(key, None)? {
            Some(s) => s.parse().map_err(|_| bad(format!("`{key}`: unknown dtype `{s}`"))),
            None => Ok(default),
        }
    }

    /// The nested object config under `key`, or `None` when it is missing or `null`.
    pub fn object(&self, key: &str) -> Result<Option<ObjectConfig>> {
        self.get_or(key, None)
    }
}

/// One object's class name and config (Keras's serialized form), what every savable
/// object's `get_config` returns.
///
/// ```
/// use kiln::models::ObjectConfig;
/// let huber = ObjectConfig::new("HuberLoss").with("threshold", 2.0);
/// assert_eq!(huber.config.get::<f64>("threshold").unwrap(), 2.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectConfig {
    pub class_name: String,
    pub config: Config,
}

impl ObjectConfig {
    pub fn new(class_name: &str) -> ObjectConfig {
        ObjectConfig { class_name: class_name.to_string(), config: Config::new() }
    }

    /// Sets `key` in the config.
    pub fn with(self, key: &str, value: impl Serialize) -> ObjectConfig {
        ObjectConfig { config: self.config.with(key, value), ..self }
    }
}

/// The `Err` of an object that cannot be saved because it has no config (a closure, or a
/// type without `get_config`).
pub(crate) fn no_config(kind: &str, name: &str, fix: &str) -> Error {
    Error::invalid("save_model", format!("{kind} `{name}` has no config, so it cannot be saved whole; {fix}"))
}
