//! A boolean column read the same on both backends.
//!
//! PostgreSQL returns a BOOLEAN; SQLite stores it as the integer 0 or 1,
//! and sqlx's Any driver types a SQLite value by what is stored, so a plain
//! `bool` fails to decode there. [`Flag`] accepts both, and anything else
//! (2, -1, text) is a decoding error, never a silent default.

use sqlx::any::AnyTypeInfo;
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Type};

/// Read with `#[sqlx(try_from = "Flag")]` into a `bool` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <bool as Type<Any>>::compatible(ty) || <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Flag, BoxDynError> {
        if let Ok(b) = <bool as Decode<Any>>::decode(value.clone()) {
            return Ok(Flag(b));
        }
        match <i64 as Decode<Any>>::decode(value)? {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            other => Err(format!("{other} is not a boolean (0 or 1)").into()),
        }
    }
}
