//! Building the [`Plan`]: global ARGs, stages and their bases, the
//! dependency graph, `--target`, and pruning of stages the target does not need.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::instruction::{from_node, Instruction, NodeErr};
use super::names::StageNames;
use super::reference::is_valid_reference;
use super::scope::{StageScope, MAX_ARG_BYTES};
use super::{Base, BuildOptions, FromRef, GlobalArg, Plan, Stage, Step};
use crate::error::Diagnostic;
use crate::parser::{parse, Ast, Node};
use crate::shell::{human_bytes, Lexer};
use crate::{suggest, Error, Location};

/// Plans a build: resolves global ARGs and FROM lines, stage references
/// (by name, case-insensitively, or by index), dependencies, and which
/// stages `--target` needs. Errors: missing FROM, unknown instruction or
/// flag, bad stage name, a reference to a later stage or to the stage itself,
/// a FROM that is neither a stage nor a valid image, an unknown target.
pub fn plan(ast: &Ast, opts: &BuildOptions) -> Result<Plan, Error> {
    let names_by_index = all_stage_names(ast);
    let mut predefined = opts.predefined_args();
    // BuildKit's TARGETSTAGE: the target stage's name (`--target`, else the
    // last stage's name; empty when that stage has none).
    let target_stage = match &opts.target {
        Some(t) => t.to_ascii_lowercase(),
        None => names_by_index.last().cloned().flatten().unwrap_or_default(),
    };
    predefined.push(("TARGETSTAGE".to_string(), target_stage));
    let stage_names = StageNames::new(names_by_index);
    let mut globals: Vec<GlobalArg> = Vec::new();
    let mut global_bytes = 0usize;
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.children {
        let line_text = ast.line_text(node.location.line);
        let e = NodeErr { node, line_text };
        let inst = from_node(node, line_text)?;
        match inst {
            Instruction::From {
                image,
                name,
                platform,
            } => {
                let lookup = |n: &str| global_lookup(&globals, &predefined, n);
                let expand = |w: &str| {
                    Lexer::new(ast.escape)
                        .process(w, &lookup)
                        .map(|x| x.word)
                        .map_err(|m| e.err(m.to_string(), None))
                };
                let image = expand(&image)?;
                let platform = platform.as_deref().map(expand).transpose()?;
                let index = stages.len();
                let name = name.map(|n| validate_stage_name(&n, &e)).transpose()?;
                let base = resolve_base(&image, index, &stage_names, &e)?;
                stages.push(Stage {
                    index,
                    name,
                    depends_on: match base {
                        Base::Stage(k) => vec![k],
                        _ => vec![],
                    },
                    base,
                    platform,
                    steps: Vec::new(),
                    needed: false,
                    location: node.location.clone(),
                    source: node.original.clone(),
                });
            }
            Instruction::Arg(decls) if stages.is_empty() => {
                let first_new = globals.len();
                for d in decls {
                    let value = match (opts.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => {
                            let lookup = |n: &str| global_lookup(&globals, &predefined, n);
                            Some(
                                Lexer::new(ast.escape)
                                    .process(def, &lookup)
                                    .map_err(|m| e.err(m.to_string(), None))?
                                    .word,
                            )
                        }
                        (None, None) => None,
                    };
                    globals.push(GlobalArg {
                        name: d.name,
                        value,
                        location: node.location.clone(),
                    });
                }
                global_bytes += globals[first_new..]
                    .iter()
                    .map(|g| g.name.len() + 1 + g.value.as_ref().map_or(0, String::len))
                    .sum::<usize>();
                let total = global_bytes;
                if total > MAX_ARG_BYTES {
                    return Err(e.err(
                        format!(
                            "ARG: the global build arguments would hold {total} bytes, more than the limit of {}",
                            human_bytes(MAX_ARG_BYTES)
                        ),
                        None,
                    ));
                }
            }
            _ if stages.is_empty() => {
                return Err(e.err(
                    format!(
                        "no FROM before {}: a stage must start with FROM",
                        node.keyword.to_uppercase()
                    ),
                    Some("put FROM <image> first (only ARG may come before the first FROM)".into()),
                ));
            }
            instruction => {
                let stage = stages.last_mut().expect("checked non-empty above");
                stage.steps.push(Step {
                    location: node.location.clone(),
                    source: node.original.clone(),
                    line_text: line_text.unwrap_or_default().to_string(),
                    instruction,
                });
            }
        }
    }
    if stages.is_empty() {
        let loc = ast
            .children
            .last()
            .map(|n| n.location.clone())
            .unwrap_or_else(|| Location {
                file: ast.file.clone(),
                line: 1,
                column: 1,
                end_line: 1,
            });
        return Err(Error::diag(
            Diagnostic::new(
                loc,
                "the Dockerfile has no FROM instruction (dockerfile contains no stages to build)",
            )
            .with_hint("add FROM <image> (or FROM scratch) to start a stage"),
        ));
    }
    let mut plan = Plan {
        stages,
        target: 0,
        unused_build_args: unused_build_args(ast, opts, &globals),
        global_args: globals,
        build_args: opts.build_args.clone(),
        predefined_args: predefined,
        escape: ast.escape,
        file: ast.file.clone(),
        names: Arc::new(stage_names),
        ends: Vec::new(),
    };
    compute_dependencies(&mut plan)?;
    plan.target = find_target(&plan, opts.target.as_deref())?;
    mark_needed(&mut plan);
    Ok(plan)
}

fn global_lookup(
    globals: &[GlobalArg],
    predefined: &[(String, String)],
    name: &str,
) -> Option<String> {
    if let Some(g) = globals.iter().rev().find(|g| g.name == name) {
        return g.value.clone();
    }
    predefined
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Every `AS` name, lower-cased, by stage index (needed to spot forward references).
fn all_stage_names(ast: &Ast) -> Vec<Option<String>> {
    ast.children
        .iter()
        .filter(|n| n.name() == "from")
        .map(|n| {
            (n.args.len() == 3 && n.args[1].eq_ignore_ascii_case("as"))
                .then(|| n.args[2].to_ascii_lowercase())
        })
        .collect()
}

/// BuildKit's rule: `^[a-z][a-z0-9-_.]*$` after lower-casing.
fn validate_stage_name(name: &str, e: &NodeErr<'_>) -> Result<String, Error> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(e.at_col(
            e.column_of(name),
            format!("invalid stage name {name:?}"),
            Some(
                "stage names start with a letter and hold only letters, digits, '-', '_' and '.'"
                    .into(),
            ),
        ));
    }
    Ok(lower)
}

fn resolve_base(
    image: &str,
    index: usize,
    names: &StageNames,
    e: &NodeErr<'_>,
) -> Result<Base, Error> {
    if image.eq_ignore_ascii_case("scratch") {
        return Ok(Base::Scratch);
    }
    let lower = image.to_ascii_lowercase();
    if let Some(k) = names.before(&lower, index) {
        return Ok(Base::Stage(k));
    }
    if names.after(&lower, index) {
        return Err(e.err(
            format!("FROM {image}: stage {lower:?} is defined later in the Dockerfile (forward reference)"),
            Some("a stage can only start from an earlier stage; move it up".into()),
        ));
    }
    if !is_valid_reference(image) {
        let what = if image.is_empty() {
            "an empty name".to_string()
        } else {
            format!("{image:?}")
        };
        return Err(e.err(
            format!("invalid reference format: FROM names {what}, which is neither an earlier stage nor a valid image reference"),
            Some("check the ARGs used in FROM (undeclared ones expand to empty) and the stage names".into()),
        ));
    }
    Ok(Base::Image(image.to_string()))
}

/// Adds COPY --from / RUN --mount from= dependencies, expanding the values
/// with each stage's ARG and ENV scope as known at plan time (the parent
/// stages' ENV, no base image ENV), and records what each stage ends with
/// ([`Plan::ends`]) so that later scopes start from it without replaying.
/// One pass over the stages, in order: linear in stages and steps.
fn compute_dependencies(plan: &mut Plan) -> Result<(), Error> {
    plan.ends = Vec::with_capacity(plan.stages.len());
    for i in 0..plan.stages.len() {
        let base_env = plan.known_base_env(i);
        let mut scope = StageScope::new(plan, i, &base_env);
        let mut deps: BTreeSet<usize> = plan.stages[i].depends_on.iter().copied().collect();
        for step in &plan.stages[i].steps {
            for r in scope.references_of(step)? {
                if let FromRef::Stage(k) = r {
                    deps.insert(k);
                }
            }
            if matches!(step.instruction, Instruction::Env(_) | Instruction::Arg(_)) {
                // A bad expansion here is reported when the engine resolves the step.
                let _ = scope.resolve(step);
            }
        }
        plan.stages[i].depends_on = deps.into_iter().collect();
        plan.ends.push(scope.into_replayed());
    }
    Ok(())
}

fn find_target(plan: &Plan, target: Option<&str>) -> Result<usize, Error> {
    let Some(t) = target else {
        return Ok(plan.stages.len() - 1);
    };
    let lower = t.to_ascii_lowercase();
    plan.stages
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
        .ok_or_else(|| {
            let names: Vec<String> = plan.stages.iter().filter_map(|s| s.name.clone()).collect();
            let candidates: Vec<&str> = plan.names.names().collect();
            Error::UnknownTarget {
                suggestion: suggest::nearest(&lower, &candidates).map(str::to_string),
                target: t.to_string(),
                available: if names.is_empty() {
                    "(no named stages)".into()
                } else {
                    names.join(", ")
                },
            }
        })
}

fn mark_needed(plan: &mut Plan) {
    let mut stack = vec![plan.target];
    while let Some(i) = stack.pop() {
        if plan.stages[i].needed {
            continue;
        }
        plan.stages[i].needed = true;
        stack.extend(plan.stages[i].depends_on.iter().copied());
    }
}

fn unused_build_args(ast: &Ast, opts: &BuildOptions, globals: &[GlobalArg]) -> Vec<String> {
    let declared: BTreeSet<String> = ast
        .children
        .iter()
        .filter(|n| n.name() == "arg")
        .flat_map(|n| {
            n.args
                .iter()
                .map(|a| a.split('=').next().unwrap_or_default().to_string())
        })
        .chain(globals.iter().map(|g| g.name.clone()))
        .collect();
    opts.build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !super::is_proxy_arg(k))
        .cloned()
        .collect()
}

/// Parses an ONBUILD trigger text (`RUN echo hi`, or with heredoc bodies
/// `RUN <<EOF\necho hi\nEOF`) into a step, for a child build whose base
/// image carries triggers. `location` is where the child's FROM is
/// (triggers run there).
pub fn parse_trigger(text: &str, location: Location) -> Result<Step, Error> {
    let fail = |m: String| {
        Error::diag(Diagnostic::new(
            location.clone(),
            format!("ONBUILD trigger {text:?}: {m}"),
        ))
    };
    let ast = parse(text, &location.file).map_err(|e| match e {
        Error::Dockerfile(d) => fail(d.message),
        other => fail(other.to_string()),
    })?;
    if ast.children.len() != 1 {
        return Err(fail(format!(
            "holds {} instructions, not one",
            ast.children.len()
        )));
    }
    let mut node: Node = ast.children.into_iter().next().expect("one child");
    node.location = location.clone();
    let first_line = text.lines().next().unwrap_or_default();
    let e = NodeErr {
        node: &node,
        line_text: Some(first_line),
    };
    match node.name().as_str() {
        "onbuild" | "from" | "maintainer" => {
            return Err(e.err(
                format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    node.keyword.to_uppercase()
                ),
                None,
            ))
        }
        _ => {}
    }
    let instruction = from_node(&node, Some(first_line))?;
    Ok(Step {
        location,
        source: node.original.clone(),
        line_text: first_line.to_string(),
        instruction,
    })
}
