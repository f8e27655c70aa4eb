//! strata's own rule ToolchainInFinalImage: the final stage runs on a build
//! toolchain (its base is one, or it installs one) and starts a program a
//! RUN of that stage compiles. Also the pure half of
//! `strata check --suggest-multistage`: given what the program needs (found
//! by the caller in a built image), the rewritten Dockerfile.

use super::{Sink, Walk, TOOLCHAIN_IN_FINAL_IMAGE};
use crate::parser::{Ast, Node};
use crate::plan::{Base, Command, Instruction, Plan};

/// Why the final stage carries a toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainFinding {
    /// Index of the final stage (in file order).
    pub stage: usize,
    /// Its FROM line (1-based) and `AS` name.
    pub from_line: usize,
    /// The final stage's `AS` name.
    pub name: Option<String>,
    /// The toolchain base image, when the base (or the stage it is built
    /// on) is one.
    pub base: Option<String>,
    /// The toolchain package a RUN installs, otherwise.
    pub installed: Option<String>,
    /// The RUN that compiles (as written).
    pub compile: String,
    /// The final stage's ENTRYPOINT, as written.
    pub entrypoint: Option<Command>,
    /// The final stage's CMD, as written.
    pub cmd: Option<Command>,
    /// The last WORKDIR of the final stage, as written.
    pub workdir: Option<String>,
}

/// Image repositories that are build toolchains. `node` counts only with
/// dev dependencies installed (checked apart).
const TOOLCHAIN_IMAGES: &[&str] = &[
    "golang",
    "rust",
    "gcc",
    "maven",
    "gradle",
    "openjdk",
    "eclipse-temurin",
    "amazoncorretto",
    "buildpack-deps",
    "swift",
    "haskell",
    "tinygo",
    "dotnet/sdk",
    "node",
];

/// Packages that are toolchains, for apt-get/apk/dnf/yum installs.
const TOOLCHAIN_PACKAGES: &[&str] = &[
    "build-essential",
    "build-base",
    "gcc",
    "g++",
    "clang",
    "make",
    "cmake",
    "golang",
    "golang-go",
    "go",
    "cargo",
    "rustc",
    "default-jdk",
    "maven",
    "gradle",
    "musl-dev",
    "libc6-dev",
];

/// Commands that compile (the first words of a shell command).
const COMPILES: &[&str] = &[
    "go build",
    "go install",
    "cargo build",
    "cargo install",
    "rustc",
    "gcc",
    "g++",
    "cc",
    "c++",
    "clang",
    "make",
    "cmake",
    "mvn",
    "gradle",
    "./gradlew",
    "./mvnw",
    "javac",
    "npm run build",
    "yarn build",
    "tsc",
    "dotnet publish",
    "dotnet build",
    "swift build",
    "tinygo build",
];

/// The repository part of an image reference, lower-case, without the
/// registry (`docker.io/library/golang:1.19` -> `golang`), and its tag.
fn repo_and_tag(image: &str) -> (String, String) {
    let image = image
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (path, tag) = match image.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p.to_string(), t.to_string()),
        _ => (image.clone(), String::new()),
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    if parts.first() == Some(&"library") {
        parts.remove(0);
    }
    (parts.join("/"), tag)
}

/// Whether an image name is a toolchain (`node` excluded: it needs dev
/// dependencies to count).
fn toolchain_image(image: &str) -> Option<&'static str> {
    let (repo, tag) = repo_and_tag(image);
    let t = TOOLCHAIN_IMAGES
        .iter()
        .find(|t| repo == **t || repo.ends_with(&format!("/{t}")))?;
    match *t {
        // JRE tags are runtimes.
        "openjdk" | "eclipse-temurin" | "amazoncorretto" if tag.contains("jre") => None,
        t => Some(t),
    }
}

/// The words of every simple command in a shell string (split at `&&`,
/// `||`, `;`, `|` and newlines).
fn commands(s: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let flat = s.replace("\\\n", " ");
    for part in flat.split(['\n', ';', '|', '&']) {
        let words: Vec<String> = part.split_whitespace().map(str::to_string).collect();
        if !words.is_empty() {
            out.push(words);
        }
    }
    out
}

fn run_text(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => v.join(" "),
    }
}

/// The toolchain package a command installs, if any.
fn installs_toolchain(cmd: &[String]) -> Option<String> {
    let managers = ["apt-get", "apt", "apk", "yum", "dnf", "microdnf"];
    let verbs = ["install", "add"];
    let m = cmd.iter().position(|w| managers.contains(&w.as_str()))?;
    let v = cmd[m..].iter().position(|w| verbs.contains(&w.as_str()))? + m;
    cmd[v + 1..]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .map(|w| w.split('=').next().unwrap_or_default())
        .find(|w| {
            TOOLCHAIN_PACKAGES.contains(w) || (w.starts_with("openjdk-") && w.ends_with("-jdk"))
        })
        .map(str::to_string)
}

/// Whether a command compiles.
fn compiles(cmd: &[String]) -> bool {
    let joined = cmd.join(" ");
    COMPILES.iter().any(|c| {
        joined == *c || joined.starts_with(&format!("{c} ")) || {
            // `/usr/bin/gcc ...`, `env CGO_ENABLED=0 go build`
            let tail: Vec<&str> = cmd
                .iter()
                .skip_while(|w| w.contains('=') || *w == "env")
                .map(String::as_str)
                .collect();
            let first = tail.first().map(|w| w.rsplit('/').next().unwrap_or(w));
            let rest = tail.get(1..).unwrap_or_default().join(" ");
            let t = match first {
                Some(f) if rest.is_empty() => f.to_string(),
                Some(f) => format!("{f} {rest}"),
                None => String::new(),
            };
            t == *c || t.starts_with(&format!("{c} "))
        }
    })
}

/// Installs npm/yarn dependencies with the dev ones.
fn installs_dev_deps(cmd: &[String]) -> bool {
    let j = cmd.join(" ");
    let install = j.starts_with("npm install")
        || j.starts_with("npm i ")
        || j == "npm i"
        || j.starts_with("npm ci")
        || j.starts_with("yarn install")
        || j == "yarn"
        || j.starts_with("pnpm install");
    install
        && !["--production", "--omit=dev", "--prod", "--only=production"]
            .iter()
            .any(|f| j.contains(f))
}

/// Finds the toolchain-in-the-final-image pattern in the last stage.
pub(crate) fn find(w: &Walk<'_>) -> Option<ToolchainFinding> {
    let last = w.stages.len().checked_sub(1)?;
    // The final stage and the stages it is built on (FROM build AS final).
    let mut chain = vec![last];
    while let Base::Stage(i) = w.stages[*chain.last()?].base {
        if chain.contains(&i) {
            break;
        }
        chain.push(i);
    }
    let base_image = match &w.stages[*chain.last()?].base {
        Base::Image(name) => Some(name.clone()),
        _ => None,
    };
    let mut base = base_image
        .as_deref()
        .and_then(|b| toolchain_image(b).map(|t| (t, b.to_string())));
    let mut installed = None;
    let mut compile = None;
    let mut dev_deps = false;
    let (mut entrypoint, mut cmd) = (None, None);
    let mut workdir: Option<String> = None;
    for &i in chain.iter().rev() {
        for (_, inst) in &w.stages[i].steps {
            match inst {
                Instruction::Run { command, .. } => {
                    for c in commands(&run_text(command)) {
                        if installed.is_none() {
                            installed = installs_toolchain(&c);
                        }
                        if compile.is_none() && compiles(&c) {
                            compile = Some(run_text(command));
                        }
                        dev_deps |= installs_dev_deps(&c);
                    }
                }
                Instruction::Entrypoint(c) if i == last || entrypoint.is_none() => {
                    entrypoint = Some(c.clone());
                    // ENTRYPOINT resets an inherited CMD.
                    cmd = None;
                }
                Instruction::Cmd(c) => cmd = Some(c.clone()),
                Instruction::Workdir(d) => {
                    workdir = Some(match (&workdir, d.starts_with('/')) {
                        (Some(prev), false) => format!("{}/{d}", prev.trim_end_matches('/')),
                        _ => d.clone(),
                    })
                }
                _ => {}
            }
        }
    }
    if matches!(base, Some(("node", _))) && !dev_deps {
        base = None;
    }
    if base.is_none() && installed.is_none() {
        return None;
    }
    let compile = compile?;
    if entrypoint.is_none() && cmd.is_none() {
        return None;
    }
    let view = &w.stages[last];
    Some(ToolchainFinding {
        stage: last,
        from_line: view.from.location.line,
        name: view.name.clone(),
        base: base.map(|(_, b)| b),
        installed,
        compile,
        entrypoint,
        cmd,
        workdir,
    })
}

pub(super) fn check(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let Some(f) = find(w) else { return };
    let what = match (&f.base, &f.installed) {
        (Some(b), _) => format!("runs on the build toolchain image {b}"),
        (None, Some(p)) => format!("installs the toolchain package {p}"),
        (None, None) => return,
    };
    let compile: String = f.compile.chars().take(60).collect();
    let loc = &w.stages[f.stage].from.location;
    sink.warn(
        TOOLCHAIN_IN_FINAL_IMAGE,
        loc,
        None,
        format!(
            "the final stage {what} and starts a program that `{compile}` builds; copy the program into a small runtime stage (strata check --suggest-multistage writes one)"
        ),
    );
}

/// Finds the pattern of ToolchainInFinalImage in a Dockerfile (whatever
/// `# check=skip` says): what `--suggest-multistage` rewrites.
pub fn find_toolchain_in_final(ast: &Ast, plan: Option<&Plan>) -> Option<ToolchainFinding> {
    find(&Walk::new(ast, plan))
}

/// Characters that make a command need a shell.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', '#', '~', '\n',
    '{', '}',
];

/// A shell-form command that is only words (no shell syntax): its words.
pub fn simple_words(s: &str) -> Option<Vec<String>> {
    if s.contains(SHELL_CHARS) {
        return None;
    }
    let w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    (!w.is_empty()).then_some(w)
}

/// The command the container starts, as Docker builds it from ENTRYPOINT
/// and CMD: `(argv, needs_shell)`; a shell form that is plain words is
/// unwrapped (no shell needed).
pub fn effective_argv(entrypoint: Option<&Command>, cmd: Option<&Command>) -> (Vec<String>, bool) {
    let as_argv = |c: &Command| -> (Vec<String>, bool) {
        match c {
            Command::Exec(v) => (v.clone(), false),
            Command::Shell(s) => match simple_words(s) {
                Some(w) => (w, false),
                None => (vec!["/bin/sh".into(), "-c".into(), s.clone()], true),
            },
        }
    };
    match (entrypoint, cmd) {
        (Some(e @ Command::Shell(_)), _) => as_argv(e),
        (Some(Command::Exec(e)), Some(c)) => {
            let (mut v, sh) = (e.clone(), false);
            let (rest, sh2) = as_argv(c);
            v.extend(rest);
            (v, sh || sh2)
        }
        (Some(e), None) => as_argv(e),
        (None, Some(c)) => as_argv(c),
        (None, None) => (Vec::new(), false),
    }
}

/// What the runtime stage gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimePlan {
    /// `scratch`, `busybox:1.35`, ...
    pub base: String,
    /// Absolute paths copied from the build stage to the same place.
    pub files: Vec<String>,
    /// ENV the runtime stage sets (PATH when the program is found on the
    /// base image's PATH).
    pub env: Vec<(String, String)>,
    /// Comment lines explaining the choice.
    pub notes: Vec<String>,
}

fn json_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The Dockerfile rewritten: the final stage renamed `build` (or keeping
/// its name) and a new final stage on `runtime.base` with only
/// `runtime.files`, the WORKDIR, the final stage's ENV, EXPOSE, LABEL, USER
/// and STOPSIGNAL lines, and the start command (exec form when the shell
/// form is plain words).
pub fn suggest_multistage(
    ast: &Ast,
    plan: Option<&Plan>,
    finding: &ToolchainFinding,
    runtime: &RuntimePlan,
) -> String {
    let w = Walk::new(ast, plan);
    let taken: Vec<String> = w.stages.iter().filter_map(|s| s.name.clone()).collect();
    let name = match &finding.name {
        Some(n) => n.clone(),
        None => ["build", "builder", "build-stage"]
            .iter()
            .find(|n| !taken.iter().any(|t| t == *n))
            .map_or_else(|| "build-toolchain".to_string(), |n| n.to_string()),
    };
    let upper = w.stages[finding.stage].from.keyword
        != w.stages[finding.stage].from.keyword.to_ascii_lowercase();
    let mut out = String::new();
    for (i, line) in ast.lines.iter().enumerate() {
        if i + 1 == finding.from_line && finding.name.is_none() {
            let kw = if upper { "AS" } else { "as" };
            out.push_str(&format!("{} {kw} {name}\n", line.trim_end()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let from_kw = |k: &str| {
        if upper {
            k.to_string()
        } else {
            k.to_ascii_lowercase()
        }
    };
    out.push_str("\n# The runtime stage (strata check --suggest-multistage): only what the\n# program needs, without the toolchain.\n");
    for n in &runtime.notes {
        out.push_str(&format!("# {n}\n"));
    }
    out.push_str(&format!("{} {}\n", from_kw("FROM"), runtime.base));
    for f in &runtime.files {
        out.push_str(&format!("{} --from={name} {f} {f}\n", from_kw("COPY")));
    }
    for (k, v) in &runtime.env {
        let v = serde_json::to_string(v).unwrap_or_default();
        out.push_str(&format!("{} {k}={v}\n", from_kw("ENV")));
    }
    if let Some(wd) = &finding.workdir {
        out.push_str(&format!("{} {wd}\n", from_kw("WORKDIR")));
    }
    let keep = ["env", "expose", "label", "user", "stopsignal"];
    let nodes: Vec<&Node> = w.stages[finding.stage]
        .steps
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| keep.contains(&n.name().as_str()))
        .collect();
    for n in nodes {
        out.push_str(&n.original);
        out.push('\n');
    }
    let (argv, needs_shell) = effective_argv(finding.entrypoint.as_ref(), finding.cmd.as_ref());
    if needs_shell {
        // Keep the lines as written: the base has a shell.
        if let Some(e) = &finding.entrypoint {
            out.push_str(&format!("{} {}\n", from_kw("ENTRYPOINT"), command_text(e)));
        }
        if let Some(c) = &finding.cmd {
            if !matches!(finding.entrypoint, Some(Command::Shell(_))) {
                out.push_str(&format!("{} {}\n", from_kw("CMD"), command_text(c)));
            }
        }
    } else if finding.entrypoint.is_some() {
        match (&finding.entrypoint, &finding.cmd) {
            (Some(Command::Exec(e)), Some(_)) => {
                out.push_str(&format!("{} {}\n", from_kw("ENTRYPOINT"), json_list(e)));
                out.push_str(&format!(
                    "{} {}\n",
                    from_kw("CMD"),
                    json_list(&argv[e.len()..])
                ));
            }
            _ => out.push_str(&format!("{} {}\n", from_kw("ENTRYPOINT"), json_list(&argv))),
        }
    } else {
        out.push_str(&format!("{} {}\n", from_kw("CMD"), json_list(&argv)));
    }
    out
}

fn command_text(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => json_list(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const FIRST_TRY: &str = "FROM golang:1.19\nADD . /app\nWORKDIR /app\nRUN go build\nENTRYPOINT /app/app\nCMD ./app\n";

    #[test]
    fn names_and_packages() {
        assert_eq!(
            repo_and_tag("docker.io/library/golang:1.19"),
            ("golang".into(), "1.19".into())
        );
        assert_eq!(toolchain_image("golang:1.19"), Some("golang"));
        assert_eq!(toolchain_image("localhost:5000/rust"), Some("rust"));
        assert_eq!(toolchain_image("eclipse-temurin:21-jre"), None);
        assert_eq!(toolchain_image("busybox:1.35"), None);
        assert_eq!(
            toolchain_image("mcr.microsoft.com/dotnet/sdk:8.0"),
            Some("dotnet/sdk")
        );
        let w = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            installs_toolchain(&w(
                "apt-get install -y --no-install-recommends build-essential"
            )),
            Some("build-essential".into())
        );
        assert_eq!(installs_toolchain(&w("apt-get install -y curl")), None);
        assert!(compiles(&w("go build -o /out/app ./cmd")));
        assert!(compiles(&w("CGO_ENABLED=0 go build")));
        assert!(compiles(&w("/usr/bin/gcc -o hello hello.c")));
        assert!(!compiles(&w("go version")));
        assert!(installs_dev_deps(&w("npm ci")));
        assert!(!installs_dev_deps(&w("npm ci --omit=dev")));
    }

    #[test]
    fn first_try_is_found_and_rewritten() {
        let ast = parse(FIRST_TRY, "Dockerfile").unwrap();
        let f = find_toolchain_in_final(&ast, None).unwrap();
        assert_eq!(f.base.as_deref(), Some("golang:1.19"));
        assert_eq!(f.compile, "go build");
        assert_eq!(f.workdir.as_deref(), Some("/app"));
        let rt = RuntimePlan {
            base: "scratch".into(),
            files: vec!["/app/app".into()],
            ..Default::default()
        };
        let out = suggest_multistage(&ast, None, &f, &rt);
        assert!(out.starts_with("FROM golang:1.19 AS build\n"), "{out}");
        assert!(out.contains("\nFROM scratch\nCOPY --from=build /app/app /app/app\nWORKDIR /app\nENTRYPOINT [\"/app/app\"]\n"), "{out}");
        // The shell-form ENTRYPOINT ignores CMD: none in the new stage.
        assert!(!out.ends_with("CMD [\"./app\"]\n"), "{out}");
        // The result parses, and has no finding any more.
        let again = parse(&out, "Dockerfile").unwrap();
        assert!(find_toolchain_in_final(&again, None).is_none());
    }

    #[test]
    fn multistage_and_runtime_images_are_quiet() {
        for text in [
            "FROM golang:1.19 AS build\nRUN go build -o /app\nFROM busybox\nCOPY --from=build /app /app\nCMD [\"/app\"]\n",
            "FROM golang:1.19\nCMD [\"go\", \"version\"]\n",
            "FROM node:20\nRUN npm ci --omit=dev\nRUN npm run build\nCMD [\"node\", \"dist/x.js\"]\n",
        ] {
            let ast = parse(text, "Dockerfile").unwrap();
            assert_eq!(find_toolchain_in_final(&ast, None), None, "{text}");
        }
        let ast = parse(
            "FROM debian:bookworm\nRUN apt-get update && apt-get install -y gcc\nCOPY x.c .\nRUN gcc -o /x x.c\nCMD [\"/x\"]\n",
            "Dockerfile",
        )
        .unwrap();
        let f = find_toolchain_in_final(&ast, None).unwrap();
        assert_eq!(f.installed.as_deref(), Some("gcc"));
    }

    #[test]
    fn shell_needs() {
        assert_eq!(
            effective_argv(
                Some(&Command::Shell("/app/app".into())),
                Some(&Command::Shell("./x".into()))
            ),
            (vec!["/app/app".to_string()], false)
        );
        assert!(effective_argv(None, Some(&Command::Shell("./app > /tmp/log".into()))).1);
        assert_eq!(
            effective_argv(
                Some(&Command::Exec(vec!["/a".into()])),
                Some(&Command::Exec(vec!["b".into()]))
            )
            .0,
            vec!["/a".to_string(), "b".to_string()]
        );
    }
}
