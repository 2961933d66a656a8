//! Owners and modes: values whose JSON form is checked while it is read.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::names;

/// A user or group: a name, resolved at boot, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    Name(String),
    Numeric(u32),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Name(n) => f.write_str(n),
            Id::Numeric(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or group name, or a numeric id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .map(Id::Numeric)
                    .ok_or_else(|| E::custom(format!("{v} is out of range for a user or group id")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    return v
                        .parse::<u64>()
                        .map_err(|_| {
                            E::custom(format!("{v:?} is out of range for a user or group id"))
                        })
                        .and_then(|n| self.visit_u64(n));
                }
                names::check_user_name(v)
                    .map(|()| Id::Name(v.to_owned()))
                    .map_err(|why| E::custom(format!("{v:?} {why}, or a numeric id")))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Permission bits, written in JSON as an octal string such as `"0750"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = (3..=4).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match u32::from_str_radix(&s, 8) {
            Ok(bits) if valid => Ok(Mode(bits)),
            _ => Err(de::Error::custom(format!(
                "{s:?} is not a mode; expected 3 or 4 octal digits as a string, such as \"0755\""
            ))),
        }
    }
}
