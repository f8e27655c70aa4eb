//! The typed instruction layer: a raw [`Node`] becomes an [`Instruction`]
//! with its flags checked and its arguments sorted into fields. Words are
//! NOT expanded here (see `StageScope::resolve`).

use super::flags::{self, Flags};
use crate::error::Diagnostic;
use crate::parser::{Heredoc, Node};
use crate::{suggest, Error, Location};

/// Every instruction name, upper case (for messages and suggestions).
pub const INSTRUCTIONS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// A command in shell form (run through the stage's SHELL) or exec form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Command {
    /// Shell form: the text after the keyword.
    Shell(String),
    /// Exec form: the JSON array's strings.
    Exec(Vec<String>),
}

/// One `ARG` declaration: name and raw (unexpanded) default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default after `=`, unexpanded.
    pub default: Option<String>,
}

/// COPY and ADD arguments, raw.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CopySpec {
    /// Sources, as written.
    pub srcs: Vec<String>,
    /// Destination, as written.
    pub dest: String,
    /// COPY only: `--from` as written.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// COPY only.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: Option<bool>,
    /// ADD only.
    pub unpack: Option<bool>,
    /// Heredocs named on the instruction line.
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthcheckRaw {
    /// The command (`CMD` or `CMD-SHELL` form).
    pub test: Command,
    /// `--interval`.
    pub interval: Option<String>,
    /// `--timeout`.
    pub timeout: Option<String>,
    /// `--start-period`.
    pub start_period: Option<String>,
    /// `--start-interval`.
    pub start_interval: Option<String>,
    /// `--retries`.
    pub retries: Option<String>,
}

/// A typed instruction; every string is as written (not expanded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Instruction {
    /// `FROM`.
    From {
        /// The base image or stage, as written.
        image: String,
        /// `AS name`.
        name: Option<String>,
        /// `--platform`.
        platform: Option<String>,
    },
    /// `RUN`.
    Run {
        /// The command.
        command: Command,
        /// Raw `--mount` specs, in order.
        mounts: Vec<String>,
        /// `--network`.
        network: Option<String>,
        /// `--security`.
        security: Option<String>,
        /// Heredocs named on the instruction line.
        heredocs: Vec<Heredoc>,
    },
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`.
    Add(CopySpec),
    /// `ENV` pairs.
    Env(Vec<(String, String)>),
    /// `LABEL` pairs.
    Label(Vec<(String, String)>),
    /// `ARG` declarations.
    Arg(Vec<ArgDecl>),
    /// `EXPOSE` ports.
    Expose(Vec<String>),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `None` = `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthcheckRaw>),
    /// The trigger text after `ONBUILD`.
    Onbuild(String),
    /// `MAINTAINER`.
    Maintainer(String),
}

/// Builds located errors for one node.
pub(crate) struct NodeErr<'a> {
    pub node: &'a Node,
    pub line_text: Option<&'a str>,
}

impl NodeErr<'_> {
    pub(crate) fn at_col(
        &self,
        column: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Error {
        let loc = Location {
            column,
            ..self.node.location.clone()
        };
        let mut d = Diagnostic::new(loc, message);
        if let Some(t) = self.line_text {
            d = d.with_line(t);
        }
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        Error::diag(d)
    }

    pub(crate) fn err(&self, message: impl Into<String>, hint: Option<String>) -> Error {
        self.at_col(self.node.location.column, message, hint)
    }

    /// The column of `needle` in the first line, else the keyword column.
    pub(crate) fn column_of(&self, needle: &str) -> usize {
        self.line_text
            .and_then(|t| t.find(needle).map(|b| t[..b].chars().count() + 1))
            .unwrap_or(self.node.location.column)
    }
}

fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn pairs(args: &[String]) -> Vec<(String, String)> {
    args.chunks(3)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

/// Parses one node into a typed instruction.
pub fn from_node(node: &Node, line_text: Option<&str>) -> Result<Instruction, Error> {
    let e = NodeErr { node, line_text };
    let name = node.name();
    let upper = name.to_uppercase();
    if !INSTRUCTIONS.contains(&upper.as_str()) {
        let hint = match suggest::nearest(&node.keyword, &INSTRUCTIONS) {
            Some(s) => format!("did you mean {s}?"),
            None => format!("instructions are {}", INSTRUCTIONS.join(", ")),
        };
        return Err(e.err(format!("unknown instruction: {}", node.keyword), Some(hint)));
    }
    let fl: Flags = flags::parse(&name, &node.flags).map_err(|f| {
        e.at_col(
            e.column_of(&format!("--{}", f.flag.trim_start_matches('-'))),
            f.message,
            Some(f.hint),
        )
    })?;
    let args = &node.args;
    let need = |ok: bool, what: &str| -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(e.err(format!("{upper} {what}"), None))
        }
    };
    Ok(match name.as_str() {
        "from" => {
            let ok = args.len() == 1 || (args.len() == 3 && args[1].eq_ignore_ascii_case("as"));
            if !ok {
                return Err(e.err(
                    "FROM requires either one or three arguments",
                    Some("write FROM <image> or FROM <image> AS <name>".into()),
                ));
            }
            Instruction::From {
                image: args[0].clone(),
                name: args.get(2).cloned(),
                platform: fl.str("platform"),
            }
        }
        "run" => {
            need(
                !args.is_empty() || !node.heredocs.is_empty(),
                "requires at least one argument",
            )?;
            Instruction::Run {
                command: command(node),
                mounts: fl.list("mount"),
                network: fl.str("network"),
                security: fl.str("security"),
                heredocs: node.heredocs.clone(),
            }
        }
        "cmd" => Instruction::Cmd(command(node)),
        "entrypoint" => Instruction::Entrypoint(command(node)),
        "shell" => {
            need(
                node.json,
                "requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]",
            )?;
            need(!args.is_empty(), "requires at least one argument")?;
            Instruction::Shell(args.clone())
        }
        "copy" | "add" => {
            let min = if node.heredocs.is_empty() { 2 } else { 1 };
            if args.len() < min {
                return Err(e.err(
                    format!("{upper} requires at least two arguments, but only one was provided. Destination could not be determined"),
                    Some(format!("write {upper} <src>... <dest>")),
                ));
            }
            let spec = CopySpec {
                srcs: args[..args.len() - 1].to_vec(),
                dest: args[args.len() - 1].clone(),
                from: fl.str("from"),
                chown: fl.str("chown"),
                chmod: fl.str("chmod"),
                link: fl.flag("link"),
                parents: fl.flag("parents"),
                exclude: fl.list("exclude"),
                checksum: fl.str("checksum"),
                keep_git_dir: fl.opt_bool("keep-git-dir"),
                unpack: fl.opt_bool("unpack"),
                heredocs: node.heredocs.clone(),
            };
            if name == "copy" {
                Instruction::Copy(spec)
            } else {
                Instruction::Add(spec)
            }
        }
        "env" => {
            need(!args.is_empty(), "requires at least one argument")?;
            Instruction::Env(pairs(args))
        }
        "label" => {
            need(!args.is_empty(), "requires at least one argument")?;
            Instruction::Label(pairs(args))
        }
        "arg" => {
            need(!args.is_empty(), "requires at least one argument")?;
            let decls = args
                .iter()
                .map(|w| match w.split_once('=') {
                    Some((n, v)) => ArgDecl {
                        name: n.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: w.clone(),
                        default: None,
                    },
                })
                .collect::<Vec<_>>();
            if let Some(bad) = decls.iter().find(|d| d.name.is_empty()) {
                return Err(e.err(
                    format!("ARG names cannot be empty ({:?})", bad.default),
                    None,
                ));
            }
            Instruction::Arg(decls)
        }
        "expose" => {
            need(!args.is_empty(), "requires at least one argument")?;
            Instruction::Expose(args.clone())
        }
        "volume" => {
            need(!args.is_empty(), "requires at least one argument")?;
            Instruction::Volume(args.clone())
        }
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            need(args.len() == 1, "requires exactly one argument")?;
            let v = args[0].clone();
            match name.as_str() {
                "user" => Instruction::User(v),
                "workdir" => Instruction::Workdir(v),
                "stopsignal" => Instruction::StopSignal(v),
                _ => Instruction::Maintainer(v),
            }
        }
        "onbuild" => {
            let Some(sub) = &node.onbuild else {
                return Err(e.err(
                    "ONBUILD requires at least one argument",
                    Some("write ONBUILD <INSTRUCTION>".into()),
                ));
            };
            match sub.name().as_str() {
                "onbuild" => {
                    return Err(e.err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", None))
                }
                "from" | "maintainer" => {
                    return Err(e.err(
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            sub.keyword.to_uppercase()
                        ),
                        None,
                    ))
                }
                _ => {}
            }
            from_node(sub, line_text)?;
            Instruction::Onbuild(trigger_text(node))
        }
        "healthcheck" => healthcheck(node, &fl, &e)?,
        _ => unreachable!("checked against INSTRUCTIONS above"),
    })
}

/// The trigger as stored in the image config's `OnBuild` list, as BuildKit
/// stores it: the text after `ONBUILD`, then for each heredoc a newline, its
/// raw body and its terminator (`RUN <<EOF\necho hi\nEOF`), so that a child
/// build parsing the trigger gets the bodies back.
pub(crate) fn trigger_text(node: &Node) -> String {
    let (_, rest) = split_flags_text(&node.rest);
    let mut text = rest.to_string();
    for h in &node.heredocs {
        text.push('\n');
        text.push_str(&h.content);
        text.push_str(&h.name);
    }
    text
}

/// ONBUILD's own flags are dropped from the stored trigger text.
fn split_flags_text(rest: &str) -> (&str, &str) {
    let mut r = rest.trim_start();
    while r.starts_with("--") {
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        r = r[end..].trim_start();
    }
    ("", r)
}

fn healthcheck(node: &Node, fl: &Flags, e: &NodeErr<'_>) -> Result<Instruction, Error> {
    let Some(typ) = node.args.first() else {
        return Err(e.err(
            "HEALTHCHECK requires an argument",
            Some("write HEALTHCHECK CMD <command> or HEALTHCHECK NONE".into()),
        ));
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 {
                return Err(e.err("HEALTHCHECK NONE takes no arguments", None));
            }
            if !node.flags.is_empty() {
                return Err(e.err("HEALTHCHECK NONE takes no flags", None));
            }
            Ok(Instruction::Healthcheck(None))
        }
        "CMD" => {
            if node.args.len() < 2 {
                return Err(e.err("Missing command after HEALTHCHECK CMD", None));
            }
            let test = if node.json {
                Command::Exec(node.args[1..].to_vec())
            } else {
                Command::Shell(node.args[1].clone())
            };
            Ok(Instruction::Healthcheck(Some(HealthcheckRaw {
                test,
                interval: fl.str("interval"),
                timeout: fl.str("timeout"),
                start_period: fl.str("start-period"),
                start_interval: fl.str("start-interval"),
                retries: fl.str("retries"),
            })))
        }
        other => Err(e.err(
            format!("Unknown type {other:?} in HEALTHCHECK"),
            Some("the type is CMD or NONE".into()),
        )),
    }
}
