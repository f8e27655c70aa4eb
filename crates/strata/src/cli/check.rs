//! `strata check`: run the frontend only (parse, plan with default options,
//! resolve every step, load and validate `.dockerignore`).

use std::path::{Path, PathBuf};

use strata_frontend::{ignore, parse, plan, BuildOptions, IgnoreMatcher, StageScope};

use super::Global;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

/// The problems the frontend finds in a Dockerfile and its ignore file.
pub fn problems(dockerfile: &Path, context: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let name = dockerfile.display().to_string();
    match strata_engine::context::read_dockerfile(dockerfile) {
        Err(e) => out.push(format!("cannot read {name}: {e}")),
        Ok(text) => {
            match parse(&text, &name).and_then(|ast| plan(&ast, &BuildOptions::default())) {
                Err(e) => out.push(e.to_string()),
                Ok(p) => {
                    for stage in &p.stages {
                        let mut scope =
                            StageScope::new(&p, stage.index, &p.known_base_env(stage.index));
                        for step in &stage.steps {
                            if let Err(e) = scope.resolve(step) {
                                out.push(e.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    match ignore::load(dockerfile, context) {
        Err(e) => out.push(e.to_string()),
        Ok(patterns) => {
            if let Err(e) = IgnoreMatcher::new(&patterns) {
                out.push(e.to_string());
            }
        }
    }
    out
}

pub fn run(_g: &Global, a: CheckArgs) -> anyhow::Result<u8> {
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| strata_engine::build::default_dockerfile(&a.context));
    let problems = problems(&dockerfile, &a.context);
    if problems.is_empty() {
        println!("{}: no problems found", dockerfile.display());
        return Ok(0);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!("{} problem(s) found", problems.len());
    Ok(1)
}
