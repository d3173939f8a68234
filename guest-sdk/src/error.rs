//! The error type of workflows and steps.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bindings::tidebase::workflow::types::Error as WitError;

/// An error with a class name and a message, as the Tidebase protocol records it
/// (`{"name": ..., "message": ...}`).
///
/// Any [`std::error::Error`] converts into it with `?` or `.into()`; the name is
/// then the error type's name (like a Python exception class name) and the message
/// its `Display` text. Like `anyhow::Error`, this type deliberately does not
/// implement `std::error::Error` itself, which is what makes that blanket
/// conversion possible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// Error class, e.g. `ValueError` or `TimeoutError`.
    pub name: String,
    /// Human-readable description.
    pub message: String,
}

impl Error {
    /// An error with an explicit class name.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            name: name.into(),
            message: message.into(),
        }
    }

    /// An error named `Error` with the given message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::new("Error", message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Error::new(short_type_name::<E>(), err.to_string())
    }
}

impl From<Error> for WitError {
    fn from(err: Error) -> Self {
        WitError {
            name: err.name,
            message: err.message,
        }
    }
}

/// `serde_json::error::Error` → `Error`; `Foo<Bar>` → `Foo`.
fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Quota;

    impl fmt::Display for Quota {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("quota exceeded")
        }
    }

    impl std::error::Error for Quota {}

    #[test]
    fn std_errors_keep_their_type_name() {
        let err: Error = Quota.into();
        assert_eq!(err, Error::new("Quota", "quota exceeded"));
        let err: Error = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert_eq!(err.name, "Error");
        assert_eq!(Error::msg("boom").to_string(), "Error: boom");
    }
}
