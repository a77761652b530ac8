//! Per-variable optimizer state ("slots"), created lazily as zero Variables.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{Result, Tensor, Variable};

/// The slot Variables of one optimizer, keyed by the updated variable's identity.
pub(crate) struct Slots {
    optimizer: String,
    names: Vec<&'static str>,
    map: Mutex<HashMap<u64, Vec<Variable>>>,
}

impl Slots {
    /// Slots called `names` (e.g. `["momentum", "velocity"]`) for every variable updated.
    pub(crate) fn new(optimizer: &str, names: Vec<&'static str>) -> Slots {
        Slots { optimizer: optimizer.to_string(), names, map: Mutex::new(HashMap::new()) }
    }

    /// The slots of `var`, created (zeros of its type, outside any trace) on first use.
    pub(crate) fn of(&self, var: &Variable) -> Result<Vec<Variable>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&var.uid()) {
            return Ok(s.clone());
        }
        let slots = crate::init_scope(|| {
            self.names
                .iter()
                .map(|n| {
                    let name = format!("{}/{}/{n}", self.optimizer, var.name());
                    Variable::try_with_options(Tensor::zeros(var.shape(), var.dtype()), Some(&name), false)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        map.insert(var.uid(), slots.clone());
        Ok(slots)
    }

    /// The slots of `var` if they exist already.
    pub(crate) fn existing(&self, var: &Variable) -> Option<Vec<Variable>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&var.uid()).cloned()
    }

    /// Every slot Variable created so far.
    pub(crate) fn all(&self) -> Vec<Variable> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Variable> = map.values().flatten().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }
}
