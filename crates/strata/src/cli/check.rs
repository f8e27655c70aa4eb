//! `strata check` (and `strata build --check`): run the frontend only
//! (parse, plan, resolve every step, load and validate `.dockerignore`)
//! and BuildKit's build checks (`strata_frontend::lint`).

use std::path::{Path, PathBuf};

use strata_frontend::lint::CHECK_BUILD_ARG;
use strata_frontend::{
    ignore, lint, plan, BuildOptions, IgnoreMatcher, LintOptions, Report, StageScope,
};
use strata_store::Store;

use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Output format: text, or json (an array of warnings, for CI)
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Print the Dockerfile rewritten with a small runtime stage when the
    /// final stage carries a build toolchain (ToolchainInFinalImage)
    #[arg(long)]
    pub suggest_multistage: bool,
    /// A built image of this Dockerfile, to find what its program needs
    /// (with --suggest-multistage)
    #[arg(long, value_name = "NAME", conflicts_with = "build")]
    pub image: Option<String>,
    /// Build the Dockerfile first (untagged) to find what its program
    /// needs (with --suggest-multistage)
    #[arg(long)]
    pub build: bool,
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

/// What checking a Dockerfile found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Errors: the Dockerfile or its ignore file cannot be built as written.
    pub problems: Vec<String>,
    /// Build-check warnings and the `# check=` settings.
    pub report: Report,
    /// `--build-arg` names no ARG declares (Docker warns about these).
    pub unused_build_args: Vec<String>,
    /// The Dockerfile's text as read (a build reuses it: a Dockerfile
    /// given as a pipe can be read only once).
    pub text: Option<String>,
}

impl Outcome {
    /// Errors, or warnings under `# check=error=true`.
    pub(crate) fn failed(&self) -> bool {
        !self.problems.is_empty() || self.report.fails()
    }
}

/// The store, when one already exists (checking never creates a store).
fn existing_store(g: &Global) -> Option<Store> {
    let root = g.store_root();
    if !root.join("meta.db").exists() {
        return None;
    }
    Store::open(&root).ok()
}

/// The Env names of a base image found in the local store.
fn image_env_names(store: Option<&Store>, name: &str) -> Option<Vec<String>> {
    let img = strata_engine::images::load_image(store?, name).ok()?;
    let env = img.config.runtime().env.clone().unwrap_or_default();
    Some(
        env.iter()
            .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
            .collect(),
    )
}

/// The platform (`os/arch[/variant]`) of a base image found in the local store.
fn image_platform(store: Option<&Store>, name: &str) -> Option<String> {
    let img = strata_engine::images::load_image(store?, name).ok()?;
    let c = &img.config;
    if c.os.is_empty() || c.architecture.is_empty() {
        return None;
    }
    Some(match &c.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", c.os, c.architecture),
        _ => format!("{}/{}", c.os, c.architecture),
    })
}

/// Checks `dockerfile` with `opts` (build args, target): frontend errors
/// and build-check warnings.
pub(crate) fn evaluate(
    g: &Global,
    dockerfile: &Path,
    context: &Path,
    opts: &BuildOptions,
) -> Outcome {
    let mut out = Outcome::default();
    let name = dockerfile.display().to_string();
    let matcher = match ignore::load(dockerfile, context) {
        Err(e) => {
            out.problems.push(e.to_string());
            None
        }
        Ok(patterns) => match IgnoreMatcher::new(&patterns) {
            Ok(m) => Some(m),
            Err(e) => {
                out.problems.push(e.to_string());
                None
            }
        },
    };
    let df = match strata_engine::dockerfile::Dockerfile::read(dockerfile, name.clone()) {
        Ok(df) => df,
        Err(e) => {
            out.problems.insert(0, format!("cannot read {name}: {e}"));
            return out;
        }
    };
    out.text = Some(df.text.clone());
    let ast = match df.parse() {
        Ok(a) => a,
        Err(e) => {
            out.problems.insert(0, e.to_string());
            return out;
        }
    };
    let mut frontend = Vec::new();
    let planned = match plan(&ast, opts) {
        Err(e) => {
            frontend.push(e.to_string());
            None
        }
        Ok(p) => {
            for stage in &p.stages {
                let mut scope = StageScope::new(&p, stage.index, &p.known_base_env(stage.index));
                for step in &stage.steps {
                    if let Err(e) = scope.resolve(step) {
                        frontend.push(e.to_string());
                    }
                }
            }
            out.unused_build_args = p
                .unused_build_args
                .iter()
                .filter(|a| *a != CHECK_BUILD_ARG)
                .cloned()
                .collect();
            Some(p)
        }
    };
    let store = existing_store(g);
    let env_of = |image: &str| image_env_names(store.as_ref(), image);
    let platform_of = |image: &str| image_platform(store.as_ref(), image);
    let lint_opts = LintOptions {
        ignore: matcher.as_ref(),
        image_env: Some(&env_of),
        image_platform: Some(&platform_of),
        check_override: opts.build_args.get(CHECK_BUILD_ARG).map(String::as_str),
    };
    match lint(&ast, planned.as_ref(), &lint_opts) {
        Ok(r) => out.report = r,
        Err(e) => frontend.push(e.to_string()),
    }
    frontend.append(&mut out.problems);
    out.problems = frontend;
    out
}

/// Docker's line for build args nothing consumed.
fn unused_line(names: &[String]) -> String {
    format!(
        "[Warning] One or more build-args [{}] were not consumed",
        names.join(" ")
    )
}

/// Prints an outcome as `check` does; returns the exit code.
fn render(dockerfile: &Path, o: &Outcome, json: bool) -> anyhow::Result<u8> {
    for p in &o.problems {
        eprintln!("{p}");
    }
    if !o.unused_build_args.is_empty() {
        eprintln!("{}", unused_line(&o.unused_build_args));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&o.report.warnings)?);
    } else {
        for w in &o.report.warnings {
            println!("{w}\n");
        }
        let n = o.report.warnings.len();
        if n == 0 && o.problems.is_empty() {
            println!("{}: no problems found", dockerfile.display());
        } else if n > 0 {
            let plural = if n == 1 { "" } else { "s" };
            let fatal = if o.report.config.error {
                " (check=error=true: failing)"
            } else {
                ""
            };
            println!("{n} warning{plural} found{fatal}");
        }
    }
    if !o.problems.is_empty() {
        eprintln!("{} problem(s) found", o.problems.len());
    }
    Ok(u8::from(o.failed()))
}

pub(crate) fn run(g: &Global, a: CheckArgs) -> anyhow::Result<u8> {
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| strata_engine::build::default_dockerfile(&a.context));
    if a.suggest_multistage {
        let source = match (&a.image, a.build) {
            (Some(img), _) => super::suggest::Source::Image(img),
            (None, true) => super::suggest::Source::Build(&a.context),
            (None, false) => super::suggest::Source::None,
        };
        return super::suggest::run(g, &dockerfile, source);
    }
    let o = evaluate(g, &dockerfile, &a.context, &BuildOptions::default());
    render(&dockerfile, &o, a.format == "json")
}

/// `strata build --check`: the checks only, no build; exit as `check`.
pub(crate) fn run_for_build(g: &Global, a: &super::build::BuildArgs) -> anyhow::Result<u8> {
    let dockerfile = a.dockerfile();
    let o = evaluate(g, &dockerfile, &a.context, &a.plan_options());
    render(&dockerfile, &o, false)
}

/// Before a build: the warnings in human form on stderr, unless `quiet`
/// (errors are left to the build itself, which reports them). Under
/// `# check=error=true` any warning stops the build, as in BuildKit.
/// Prints the build checks' warnings before a build; fails under
/// `# check=error=true`. Returns the Dockerfile's text, for the build to
/// use as read.
pub(crate) fn warn_before_build(
    g: &Global,
    a: &super::build::BuildArgs,
    quiet: bool,
) -> anyhow::Result<Option<String>> {
    let dockerfile = a.dockerfile();
    let o = evaluate(g, &dockerfile, &a.context, &a.plan_options());
    if !quiet {
        for w in &o.report.warnings {
            eprintln!("warning: {w}");
        }
        if !o.unused_build_args.is_empty() {
            eprintln!("{}", unused_line(&o.unused_build_args));
        }
    }
    if o.report.fails() {
        anyhow::bail!(
            "{}: build checks failed: {} warning(s) and # check=error=true (fix them, or skip rules with # check=skip=RULE)",
            dockerfile.display(),
            o.report.warnings.len()
        );
    }
    Ok(o.text)
}
