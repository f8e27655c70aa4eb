//! `strata check --suggest-multistage`: the Dockerfile rewritten with a
//! runtime stage. What the program needs comes from a built image
//! (`--image`): the program, the files its command line names, and for an
//! ELF binary its interpreter and libraries (strata_engine::explain::needs).

use std::path::Path;

use anyhow::Context as _;
use strata_engine::explain::needs::{needs, ImageFs};
use strata_frontend::lint::toolchain::{
    effective_argv, find_toolchain_in_final, simple_words, suggest_multistage, RuntimePlan,
    ToolchainFinding,
};
use strata_frontend::{plan, BuildOptions};
use strata_store::Store;

use super::Global;

/// The busybox image a shell comes from (static, ~2 MB).
const SHELL_BASE: &str = "busybox:1.35";

fn join(dir: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", dir.trim_end_matches('/'))
    }
}

/// The program a command line starts: the first word (of the first simple
/// command, for a shell line).
fn program_word(argv: &[String], needs_shell: bool) -> Option<String> {
    if needs_shell {
        let line = argv.get(2)?;
        let first = line.split(['&', '|', ';', '\n']).next()?;
        let words = simple_words(first.trim()).or_else(|| {
            Some(
                first
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
            )
        })?;
        words.into_iter().find(|w| !w.contains('=') && w != "exec")
    } else {
        argv.first().cloned()
    }
}

/// What the runtime stage needs, from the image.
fn runtime_from_image(fs: &ImageFs<'_>, f: &ToolchainFinding) -> anyhow::Result<RuntimePlan> {
    let cfg = fs.image().config.runtime();
    let workdir = if cfg.working_dir.is_empty() {
        f.workdir.clone().unwrap_or_else(|| "/".into())
    } else {
        cfg.working_dir.clone()
    };
    let (argv, needs_shell) = effective_argv(f.entrypoint.as_ref(), f.cmd.as_ref());
    let word = program_word(&argv, needs_shell).ok_or_else(|| {
        anyhow::anyhow!("the final stage starts no program (no ENTRYPOINT or CMD)")
    })?;
    let mut env = Vec::new();
    let program = if word.contains('/') {
        join(&workdir, &word)
    } else {
        // A bare name: the image's PATH.
        let path = cfg
            .env
            .iter()
            .flatten()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let found = path
            .split(':')
            .map(|d| join(d, &word))
            .find(|p| fs.exists(p))
            .ok_or_else(|| anyhow::anyhow!("{word}: not found on the image's PATH ({path})"))?;
        env.push(("PATH".to_string(), path));
        found
    };
    let n =
        needs(fs, &program).map_err(|e| anyhow::anyhow!("reading {program} in the image: {e}"))?;
    let mut files = vec![program.clone()];
    // Other words of the command line that are files in the image.
    for w in argv.iter().skip(1) {
        if needs_shell || w.starts_with('-') {
            continue;
        }
        let p = join(&workdir, w);
        if p != program && fs.exists(&p) && !files.contains(&p) {
            files.push(p);
        }
    }
    let mut notes = Vec::new();
    let mut shell = needs_shell;
    if let Some(interp) = &n.script_interpreter {
        notes.push(format!("{program} is a script for {interp}"));
        if interp.ends_with("/sh") {
            shell = true;
        } else {
            notes.push(format!(
                "{interp} is not copied: use a base image that has it"
            ));
        }
    }
    if n.elf {
        if n.is_static() {
            notes.push(format!(
                "{program} is a static binary: it needs no libraries"
            ));
        } else {
            notes.push(format!(
                "{program} is linked dynamically: its loader and libraries are copied too"
            ));
            for p in n
                .interpreter
                .iter()
                .chain(n.libraries.iter().map(|(p, _)| p))
            {
                if !files.contains(p) {
                    files.push(p.clone());
                }
            }
        }
        for m in &n.missing {
            notes.push(format!("library {m} was not found in the image: add it"));
        }
    }
    let base = if shell {
        notes.push(format!(
            "the command needs /bin/sh: {SHELL_BASE} provides it"
        ));
        SHELL_BASE.to_string()
    } else {
        "scratch".to_string()
    };
    Ok(RuntimePlan {
        base,
        files,
        env,
        notes,
    })
}

/// Without an image: the program only, on a slim glibc base.
fn runtime_guess(f: &ToolchainFinding) -> RuntimePlan {
    let workdir = f.workdir.clone().unwrap_or_else(|| "/".into());
    let (argv, needs_shell) = effective_argv(f.entrypoint.as_ref(), f.cmd.as_ref());
    let files = program_word(&argv, needs_shell)
        .filter(|w| w.contains('/'))
        .map(|w| vec![join(&workdir, &w)])
        .unwrap_or_default();
    RuntimePlan {
        base: "debian:bookworm-slim".into(),
        files,
        notes: vec![
            "no built image given (--image NAME or --build): the program's libraries are unknown,"
                .into(),
            "so it goes onto a glibc base; build, then pass --image for an exact stage".into(),
        ],
        ..Default::default()
    }
}

/// Builds the Dockerfile (untagged, quietly) to read what its program
/// needs; returns the image ID.
fn build_first(store: &Store, dockerfile: &Path, context: &Path) -> anyhow::Result<String> {
    let runc = strata_runtime::Runc::locate()?;
    let req = strata_engine::BuildRequest {
        dockerfile: Some(dockerfile.to_path_buf()),
        context: context.to_path_buf(),
        ..Default::default()
    };
    eprintln!(
        "building {} to read what its program needs...",
        dockerfile.display()
    );
    let out = strata_engine::build(store, &runc, &req, &|_| {})
        .map_err(|e| anyhow::Error::new(e).context("build failed"))?;
    Ok(out.image_id.to_string())
}

/// How `--suggest-multistage` finds the built program.
pub(crate) enum Source<'a> {
    /// No image: a guess from the Dockerfile alone.
    None,
    /// `--image NAME`.
    Image(&'a str),
    /// `--build`: build CONTEXT first.
    Build(&'a Path),
}

/// Prints the rewritten Dockerfile; returns the exit code.
pub(crate) fn run(g: &Global, dockerfile: &Path, source: Source<'_>) -> anyhow::Result<u8> {
    let name = dockerfile.display().to_string();
    let df = strata_engine::dockerfile::Dockerfile::read(dockerfile, name.clone())
        .with_context(|| format!("reading {name}"))?;
    let ast = df.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let planned = plan(&ast, &BuildOptions::default()).ok();
    let Some(f) = find_toolchain_in_final(&ast, planned.as_ref()) else {
        eprintln!(
            "{name}: the final stage carries no build toolchain that builds its program: nothing to rewrite"
        );
        return Ok(0);
    };
    let open = || {
        Store::open(&g.store_root())
            .with_context(|| format!("opening the store at {}", g.store_root().display()))
    };
    let from_image = |store: &Store, img: &str| -> anyhow::Result<RuntimePlan> {
        let fs = ImageFs::open(store, img).map_err(|e| anyhow::anyhow!("image {img}: {e}"))?;
        runtime_from_image(&fs, &f).with_context(|| format!("image {img}"))
    };
    let runtime = match source {
        Source::Image(img) => from_image(&open()?, img)?,
        Source::Build(context) => {
            let store = open()?;
            let id = build_first(&store, dockerfile, context)?;
            from_image(&store, &id)?
        }
        Source::None => runtime_guess(&f),
    };
    print!(
        "{}",
        suggest_multistage(&ast, planned.as_ref(), &f, &runtime)
    );
    Ok(0)
}
