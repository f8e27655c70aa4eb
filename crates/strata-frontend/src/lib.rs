//! strata-frontend: the Dockerfile frontend. It turns Dockerfile text into an
//! AST (with line and column on every node), expands shell words with
//! BuildKit's rules, matches `.dockerignore` patterns, and resolves stages,
//! ARG/ENV scoping and `--target` into a `Plan` for the engine.
//!
//! It is pure: it never touches the filesystem for writing and never starts
//! a process.
