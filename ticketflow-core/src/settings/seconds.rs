//! A duration setting, given in seconds.

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// The longest duration a setting takes: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// A duration given in seconds, fractions allowed (`0.5`): more than 0 and at most a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(Duration);

/// A number of seconds out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` must be more than 0 and at most {MAX_SECONDS} seconds")]
pub struct SecondsError(pub f64);

impl Seconds {
    /// `seconds`, if it is more than 0 and at most a day.
    pub fn new(seconds: f64) -> Result<Self, SecondsError> {
        if seconds > 0.0 && seconds <= MAX_SECONDS {
            Ok(Self(Duration::from_secs_f64(seconds)))
        } else {
            Err(SecondsError(seconds))
        }
    }

    /// A whole number of seconds (for defaults).
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Seconds::new(seconds).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Seconds {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Seconds".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_nonsense() {
        assert_eq!(Seconds::new(0.25).unwrap().duration(), Duration::from_millis(250));
        assert_eq!(Seconds::new(15.0).unwrap().duration(), Duration::from_secs(15));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 86_401.0] {
            assert!(Seconds::new(bad).is_err(), "{bad}");
        }
    }
}
