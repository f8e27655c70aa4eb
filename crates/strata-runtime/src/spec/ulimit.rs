//! `--ulimit`: one rlimit, parsed as Docker parses it.

use super::*;

/// One rlimit (`nofile`, `nproc`, `core`, ... as Docker's `--ulimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The rlimit's name, lower-case (`nofile`).
    pub name: String,
    /// The soft limit (`u64::MAX` = unlimited).
    pub soft: u64,
    /// The hard limit (`u64::MAX` = unlimited).
    pub hard: u64,
}

/// A `--ulimit` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UlimitError {
    /// Not `NAME=SOFT[:HARD]` with numbers.
    #[error("invalid ulimit argument: {0}")]
    Argument(String),
    /// A name that is no rlimit.
    #[error("invalid ulimit type: {0}")]
    Type(String),
    /// A soft limit above the hard one.
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    SoftAboveHard {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

impl Ulimit {
    /// Parses Docker's `NAME=SOFT[:HARD]` (`-1` = unlimited).
    pub fn parse(s: &str) -> Result<Ulimit, UlimitError> {
        let (name, v) = s
            .split_once('=')
            .ok_or_else(|| UlimitError::Argument(s.to_string()))?;
        let name = name.trim().to_ascii_lowercase();
        if rlimit_type(&name).is_none() {
            return Err(UlimitError::Type(name));
        }
        let num = |t: &str| -> Result<u64, UlimitError> {
            if t == "-1" {
                return Ok(u64::MAX);
            }
            t.parse::<u64>()
                .map_err(|_| UlimitError::Argument(s.to_string()))
        };
        let (soft, hard) = match v.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(v)?, num(v)?),
        };
        if soft > hard {
            return Err(UlimitError::SoftAboveHard { soft, hard });
        }
        Ok(Ulimit { name, soft, hard })
    }
}

pub(super) fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    format!("RLIMIT_{}", name.to_ascii_uppercase()).parse().ok()
}
