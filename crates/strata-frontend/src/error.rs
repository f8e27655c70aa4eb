//! Errors as values. Every Dockerfile error carries a [`Location`] and the
//! offending physical line so it renders as `file:line:col: message`, the
//! line, a caret under the column, and a hint saying what would be right.

use std::fmt;

use crate::Location;

/// A problem in a Dockerfile, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is (1-based line and column).
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// The physical line the location points into (without its newline).
    pub line_text: Option<String>,
    /// What would be right, when we can say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only a location and a message.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            location,
            message: message.into(),
            line_text: None,
            hint: None,
        }
    }

    /// Adds the physical line the location points into.
    pub fn with_line(mut self, text: impl Into<String>) -> Self {
        self.line_text = Some(text.into());
        self
    }

    /// Adds what would be right.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The most characters of the offending line an error shows.
const MAX_SHOWN_CHARS: usize = 200;

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.location;
        write!(f, "{}:{}:{}: {}", l.file, l.line, l.column, self.message)?;
        if let Some(text) = &self.line_text {
            // A very long line (hostile input) is cut: the message must stay
            // readable, not repeat 60 KB of `${x:-`.
            let long = text.chars().nth(MAX_SHOWN_CHARS).is_some();
            let shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
            let ellipsis = if long { "..." } else { "" };
            write!(f, "\n  {shown}{ellipsis}")?;
            if l.column <= MAX_SHOWN_CHARS {
                // The caret is placed by characters, with TABs kept so it lines
                // up under the same terminal column as the text above it.
                let pad: String = text
                    .chars()
                    .take(l.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(f, "\n  {pad}^")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every error the frontend reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A Dockerfile problem at a known place.
    #[error("{0}")]
    Dockerfile(Box<Diagnostic>),
    /// A shell-word expansion failure (bad substitution, `${v:?msg}`, unterminated quote).
    #[error("{message}")]
    Expansion {
        /// What failed, naming the word.
        message: String,
    },
    /// A `.dockerignore` pattern that is not valid.
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    IgnorePattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: crate::ignore::PatternError,
    },
    /// `--target` names no stage (BuildKit: "target stage ... could not be found").
    #[error("target stage {target:?} could not be found; stages in this Dockerfile: {available}{}", did_you_mean(.suggestion))]
    UnknownTarget {
        /// The name given.
        target: String,
        /// The stage names, comma separated.
        available: String,
        /// The nearest stage name, when one is close ("did you mean").
        suggestion: Option<String>,
    },
    /// A bad build-check setting given outside the Dockerfile (the
    /// `BUILDKIT_DOCKERFILE_CHECK` build arg).
    #[error("{0}")]
    CheckOption(String),
    /// Reading an input file failed (only the `load` helpers read files).
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why it could not be read.
        message: String,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

impl Error {
    /// Shorthand for a located Dockerfile error.
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Error::Dockerfile(Box::new(Diagnostic::new(location, message)))
    }

    pub(crate) fn diag(d: Diagnostic) -> Self {
        Error::Dockerfile(Box::new(d))
    }

    pub(crate) fn expansion(message: impl Into<String>) -> Self {
        Error::Expansion {
            message: message.into(),
        }
    }

    /// The location, for Dockerfile errors.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Dockerfile(d) => Some(&d.location),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use strata_test_support::errors::error_chain as chain;

    #[test]
    fn a_reason_is_printed_once() {
        let e = crate::IgnoreMatcher::new(&["a/[".to_string()]).unwrap_err();
        assert!(matches!(e, Error::IgnorePattern { .. }), "{e:?}");
        let shown = chain(&e);
        assert_eq!(
            shown.matches("syntax error in pattern").count(),
            1,
            "{shown}"
        );
    }
}
