//! The statuses the stores keep as their names in text columns: one macro gives each its
//! `Display`, its `FromStr` (with an error type of its own) and sqlx's `Type` and `Decode` for
//! both backends, from its `ALL` and `as_str`.

/// `stored_as_text!(Status, UnknownStatus, "ticket status")` for an enum with
/// `const ALL: [Self; N]` and `fn as_str(self) -> &'static str`.
macro_rules! stored_as_text {
    ($status:ident, $unknown:ident, $what:literal) => {
        impl std::fmt::Display for $status {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[doc = concat!("A name no [`", stringify!($status), "`] has.")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {} `{}`", $what, .0)]
        pub struct $unknown(pub String);

        impl std::str::FromStr for $status {
            type Err = $unknown;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $status::ALL
                    .into_iter()
                    .find(|status| status.as_str() == s)
                    .ok_or_else(|| $unknown(s.to_owned()))
            }
        }

        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $status
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $status
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&str as sqlx::Decode<DB>>::decode(value)?.parse()?)
            }
        }
    };
}
