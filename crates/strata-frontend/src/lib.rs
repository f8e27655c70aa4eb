//! strata-frontend: the Dockerfile frontend. It turns Dockerfile text into an
//! AST (with line and column on every node), expands shell words with
//! BuildKit's rules, matches `.dockerignore` patterns, and resolves stages,
//! ARG/ENV scoping and `--target` into a `Plan` for the engine.
//!
//! It is pure: it never touches the filesystem for writing and never starts
//! a process.

pub mod error;
pub mod ignore;
pub mod parser;
pub mod plan;
pub mod shell;
mod suggest;

pub use error::{Diagnostic, Error};
pub use ignore::{choose_ignore_file, parse_dockerignore, IgnoreMatcher};
pub use parser::{parse, Ast, Heredoc, Node};
pub use plan::{
    parse_trigger, plan, Base, BuildOptions, Command, FromRef, HealthcheckSpec, Instruction, Mount, MountKind, Plan,
    Resolved, Stage, StageScope, Step,
};
pub use shell::{expand_word, expand_words, Lexer};

/// Where something is in a Dockerfile. Lines and columns are 1-based;
/// `column` counts characters (not bytes) of the first physical line;
/// `end_line` is the last physical line the instruction consumed
/// (continuations and heredoc bodies included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
}
