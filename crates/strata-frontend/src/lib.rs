//! strata-frontend: the Dockerfile frontend. It turns Dockerfile text into an
//! AST (with line and column on every node), expands shell words with
//! BuildKit's rules, matches `.dockerignore` patterns, and resolves stages,
//! ARG/ENV scoping and `--target` into a `Plan` for the engine.
//!
//! It is pure: it never touches the filesystem for writing and never starts
//! a process. The only read is [`ignore::load`], a small helper that reads
//! the chosen `.dockerignore`; everything else works on strings. It must
//! never depend on another strata crate, never panic on bad input, and never
//! guess at what the engine does with a step.
//!
//! # The flow, for the engine author
//!
//! 1. [`parse`]`(text, file_name)` gives the raw [`Ast`] (BuildKit's parser
//!    rules; [`Ast::dump`] is BuildKit's `result` format). Unknown
//!    instructions and flags survive this step.
//! 2. [`plan()`]`(&ast, &BuildOptions)` types every instruction (rejecting
//!    unknown instructions/flags with located errors), resolves global ARGs
//!    (before the first FROM; usable in FROM lines), expands FROM words,
//!    resolves stage references (by lower-cased name or index; a name that
//!    is no earlier stage but a valid image reference is an image), builds
//!    the stage DAG ([`Stage::depends_on`]: FROM stage, `COPY --from`,
//!    `RUN --mount=from=`), applies `--target`, and marks unneeded stages
//!    (`needed == false`). [`Plan::build_order`] lists the needed stages,
//!    dependencies first. Step words are **not** expanded in the plan.
//! 3. For each needed stage, in build order: take the base image config's
//!    Env (for [`Base::Stage`], the parent stage's final Env), create
//!    [`StageScope::new`]`(&plan, index, &base_env)`, then call
//!    [`StageScope::resolve`] on each [`Step`] **in order**. It returns a
//!    [`Resolved`] with every word Docker expands already expanded (RUN/CMD/
//!    ENTRYPOINT shell forms are left for the shell), and updates the scope
//!    (ENV, ARG). After each step, [`StageScope::env`] is the config Env and
//!    [`StageScope::build_args_in_scope`] the ARGs RUN sees as environment
//!    variables (include them in RUN's cache key, keep them out of the
//!    image config).
//! 4. ONBUILD: [`Resolved::Onbuild`] carries the raw trigger text for the
//!    image config (BuildKit's form: heredoc bodies and terminators follow
//!    the first line). When a child build's base image has triggers, parse
//!    each with [`parse_trigger`]`(text, from_location)` and resolve the
//!    steps in the child's scope right after FROM, before the child's own
//!    steps.
//! 5. Context: [`ignore::load`] (or [`choose_ignore_file`] +
//!    [`parse_dockerignore`]) gives patterns; [`IgnoreMatcher::matches`]
//!    decides per path; [`IgnoreMatcher::can_skip_dir`] lets the walker
//!    avoid descending into ignored directories.
//!
//! 6. Build checks: [`lint()`]`(&ast, Some(&plan), &LintOptions)` runs BuildKit's
//!    lint rules (same names and meaning) and honours `# check=`; the
//!    caller passes the `.dockerignore` matcher and what it knows of base
//!    images' Env.
//!
//! Tools that resolve steps without building (`check`, dry runs) seed each
//! scope with [`Plan::known_base_env`] (the parent stages' ENV).
//!
//! Errors are [`Error`] values; Dockerfile errors render as
//! `file:line:col: message`, the line, a caret, and a hint.
//!
//! # Limits on hostile input
//!
//! Expansion and planning are bounded so that no Dockerfile can exhaust
//! memory, the stack or the CPU: one expanded word or value at most
//! [`shell::MAX_WORD_BYTES`] (1 MiB), a heredoc body
//! [`shell::MAX_HEREDOC_BYTES`] (16 MiB), `${...}` nesting
//! [`shell::MAX_NESTING`] (64) levels, and per stage at most
//! [`plan::MAX_ENV_BYTES`], [`plan::MAX_ARG_BYTES`] and
//! [`plan::MAX_LABEL_BYTES`] (4 MiB each) of ENV, ARG and LABEL. Planning is
//! linear in stages and steps, and the pattern operators (`#`, `%`, `/`)
//! linear in the value. Exceeding a limit is a located error.

pub mod error;
pub mod ignore;
pub mod lint;
pub mod parser;
pub mod plan;
pub mod shell;
mod suggest;

pub use error::{Diagnostic, Error};
pub use ignore::{choose_ignore_file, parse_dockerignore, IgnoreMatcher};
pub use lint::{lint, CheckConfig, CheckOptionError, LintOptions, Report, Warning};
pub use parser::{parse, Ast, Heredoc, Node};
pub use plan::{
    parse_trigger, plan, Base, BuildOptions, Command, FromRef, HealthcheckSpec, Instruction, Mount,
    MountKind, Plan, Resolved, Stage, StageScope, Step,
};
pub use shell::{expand_word, expand_words, Lexer};

/// Where something is in a Dockerfile. Lines and columns are 1-based;
/// `column` counts characters (not bytes) of the first physical line;
/// `end_line` is the last physical line the instruction consumed
/// (continuations and heredoc bodies included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Location {
    /// The Dockerfile's name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// 1-based last line.
    pub end_line: usize,
}
