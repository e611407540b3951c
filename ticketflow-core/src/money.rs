//! Money: US dollars held exactly, as whole cents, and written in JSON as a number of dollars
//! (`89.99`), as tool arguments and results, approvals and results show it.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount accepted from outside: ten million dollars.
const MAX_CENTS: i64 = 1_000_000_000;

/// An amount of US dollars, exact to the cent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// An amount that is not a number of dollars with at most two decimals, or out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MoneyError(String);

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// `cents` cents.
    pub const fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    /// The amount in cents.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// `dollars`, if it is a finite number of at most ten million dollars (either sign) with at
    /// most two decimals.
    pub fn from_dollars(dollars: f64) -> Result<Self, MoneyError> {
        if !dollars.is_finite() {
            return Err(MoneyError(format!("{dollars} is not an amount of dollars")));
        }
        let cents = (dollars * 100.0).round();
        if cents.abs() > MAX_CENTS as f64 {
            return Err(MoneyError(format!(
                "{dollars} is more than {} dollars",
                MAX_CENTS / 100
            )));
        }
        if (cents - dollars * 100.0).abs() > 1e-6 {
            return Err(MoneyError(format!("{dollars} has fractions of a cent")));
        }
        // In range, so the conversion is exact.
        Ok(Self(cents as i64))
    }

    /// The amount in dollars (exact for any amount up to tens of trillions of dollars).
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// `self + other`, unless it overflows.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// `self - other`, unless it overflows.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// `self` times `quantity`, unless it overflows.
    pub fn times(self, quantity: u32) -> Option<Money> {
        self.0.checked_mul(i64::from(quantity)).map(Money)
    }

    /// True for more than nothing.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let cents = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", cents / 100, cents % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let dollars = f64::deserialize(deserializer)?;
        Money::from_dollars(dollars).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Money {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "description": "US dollars, at most two decimals" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip_exactly_as_cents() {
        for cents in [0, 1, 99, 8999, 19598, 43598, 14999, 999_999_999] {
            let money = Money::from_cents(cents);
            let json = serde_json::to_string(&money).unwrap();
            let back: Money = serde_json::from_str(&json).unwrap();
            assert_eq!(back, money, "{json}");
        }
        assert_eq!(serde_json::to_string(&Money::from_cents(8999)).unwrap(), "89.99");
        assert_eq!(serde_json::to_string(&Money::from_cents(19598)).unwrap(), "195.98");
        assert_eq!(Money::from_cents(19598).to_string(), "$195.98");
        assert_eq!(Money::from_cents(-5).to_string(), "-$0.05");
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["0.001", "1e30", "-1e30", "12.345", "\"12\"", "null"] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::from_str::<Money>("12").unwrap(), Money::from_cents(1200));
        assert_eq!(serde_json::from_str::<Money>("-3.5").unwrap(), Money::from_cents(-350));
    }
}
