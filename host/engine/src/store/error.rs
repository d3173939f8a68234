//! What a store operation fails with, in the terms callers branch on. The
//! type names no driver: an implementation sorts its driver's errors into
//! these variants, so no caller downcasts or matches message text.

/// Any error an implementation wraps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write: a concurrent writer inserted
    /// the same key first (a dedupe race lost).
    #[error("unique constraint violated: {0}")]
    UniqueViolation(BoxError),
    /// The database did not answer in time or could not be reached: the
    /// pool timed out, a connection was refused or dropped. Transient.
    #[error("database unavailable: {0}")]
    Unavailable(BoxError),
    /// Anything else: a statement the database refused, a row that did not
    /// decode, a misuse of the store.
    #[error(transparent)]
    Other(BoxError),
}

impl StoreError {
    /// A failure the store detected itself rather than its driver.
    pub fn other(message: impl Into<String>) -> StoreError {
        StoreError::Other(message.into().into())
    }
}
