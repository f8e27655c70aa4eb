//! Typed instructions, located errors, ARG/ENV scoping and the plan.

use strata_frontend::plan::{ArgDecl, CopySpec, HealthcheckRaw};
use strata_frontend::{
    parse, parse_trigger, plan, Base, BuildOptions, Command, Error, FromRef, Instruction, Location,
    MountKind, Plan, Resolved, StageScope,
};

fn plan_of(text: &str) -> Result<Plan, Error> {
    plan(&parse(text, "Dockerfile")?, &BuildOptions::default())
}

fn plan_with(text: &str, args: &[(&str, &str)], target: Option<&str>) -> Result<Plan, Error> {
    let opts = BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: target.map(String::from),
        ..BuildOptions::default()
    };
    plan(&parse(text, "Dockerfile")?, &opts)
}

/// The typed instruction of the only step after `FROM scratch`.
fn one(line: &str) -> Instruction {
    let p = plan_of(&format!("FROM scratch\n{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
    p.stages[0].steps[0].instruction.clone()
}

fn err(text: &str) -> String {
    plan_of(text).unwrap_err().to_string()
}

fn resolve_all(p: &Plan, stage: usize) -> Vec<Resolved> {
    let mut s = StageScope::new(p, stage, &[]);
    p.stages[stage]
        .steps
        .iter()
        .map(|st| s.resolve(st).unwrap())
        .collect()
}

#[test]
fn every_instruction_is_typed() {
    assert_eq!(
        one("RUN --mount=type=cache,target=/c --network=none echo $HOME"),
        Instruction::Run {
            command: Command::Shell("echo $HOME".into()),
            mounts: vec!["type=cache,target=/c".into()],
            network: Some("none".into()),
            security: None,
            heredocs: vec![],
        }
    );
    assert_eq!(
        one("CMD [\"a\", \"b\"]"),
        Instruction::Cmd(Command::Exec(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        one("ENTRYPOINT echo hi"),
        Instruction::Entrypoint(Command::Shell("echo hi".into()))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]"),
        Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert_eq!(
        one("COPY --chown=1:1 --chmod=644 --link --parents --exclude=*.tmp --exclude=x a b /dst/"),
        Instruction::Copy(CopySpec {
            srcs: vec!["a".into(), "b".into()],
            dest: "/dst/".into(),
            chown: Some("1:1".into()),
            chmod: Some("644".into()),
            link: true,
            parents: true,
            exclude: vec!["*.tmp".into(), "x".into()],
            ..CopySpec::default()
        })
    );
    match one("ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tar /y") {
        Instruction::Add(c) => {
            assert_eq!(c.checksum.as_deref(), Some("sha256:abc"));
            assert_eq!(c.keep_git_dir, Some(true));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        one("ENV A=1 B=\"two words\""),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into())
        ])
    );
    assert_eq!(
        one("ENV A legacy value"),
        Instruction::Env(vec![("A".into(), "legacy value".into())])
    );
    assert_eq!(
        one("LABEL a=b"),
        Instruction::Label(vec![("a".into(), "b".into())])
    );
    assert_eq!(
        one("ARG a b=2"),
        Instruction::Arg(vec![
            ArgDecl {
                name: "a".into(),
                default: None
            },
            ArgDecl {
                name: "b".into(),
                default: Some("2".into())
            }
        ])
    );
    assert_eq!(
        one("EXPOSE 80/tcp 443"),
        Instruction::Expose(vec!["80/tcp".into(), "443".into()])
    );
    assert_eq!(
        one("VOLUME [\"/a\", \"/b\"]"),
        Instruction::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("USER nobody:nogroup"),
        Instruction::User("nobody:nogroup".into())
    );
    assert_eq!(one("WORKDIR /app"), Instruction::Workdir("/app".into()));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Instruction::StopSignal("SIGTERM".into())
    );
    assert_eq!(one("MAINTAINER me"), Instruction::Maintainer("me".into()));
    assert_eq!(
        one("ONBUILD RUN echo hi"),
        Instruction::Onbuild("RUN echo hi".into())
    );
    assert_eq!(one("HEALTHCHECK NONE"), Instruction::Healthcheck(None));
    assert_eq!(
        one("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/"),
        Instruction::Healthcheck(Some(HealthcheckRaw {
            test: Command::Shell("curl -f http://x/".into()),
            interval: Some("5s".into()),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some("3".into()),
        }))
    );
    let p = plan_of("FROM --platform=$BUILDPLATFORM busybox AS Build\n").unwrap();
    assert_eq!(p.stages[0].name.as_deref(), Some("build"));
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn heredoc_instructions() {
    let p = plan_of(
        "FROM scratch\nRUN python3 <<EOF\nprint(1)\nEOF\nCOPY <<-EOT /dst\n\thello $X\n\tEOT\n",
    )
    .unwrap();
    let r = resolve_all(&p, 0);
    match &r[0] {
        Resolved::Run {
            command: Command::Shell(c),
            heredocs,
            ..
        } => {
            assert_eq!(c, "python3 <<EOF");
            assert_eq!(heredocs[0].content, "print(1)\n");
        }
        other => panic!("{other:?}"),
    }
    match &r[1] {
        Resolved::Copy {
            srcs,
            dest,
            heredocs,
            ..
        } => {
            assert_eq!(
                (srcs.as_slice(), dest.as_str()),
                (["<<-EOT".to_string()].as_slice(), "/dst")
            );
            assert_eq!(heredocs[0].content, "hello \n", "chomped and expanded");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_are_located_with_caret_and_hint() {
    let e = err("FROM busybox\nRUNN echo\n");
    assert!(e.starts_with("Dockerfile:2:1: unknown instruction: RUNN\n  RUNN echo\n  ^\n  hint: did you mean RUN?"), "{e}");
    let e = err("RUN echo\n");
    assert!(e.starts_with("Dockerfile:1:1: no FROM before RUN"), "{e}");
    let e = err("ARG x\n");
    assert!(e.contains("no FROM instruction"), "{e}");
    let e = err("FROM busybox\n  COPY --from registry.com/a/b /foo /bar\n");
    assert!(
        e.starts_with("Dockerfile:2:8: missing a value on flag --from"),
        "{e}"
    );
    assert!(e.contains("COPY takes --from=<value>"), "{e}");
    let e = err("FROM busybox\nRUN --chown=1 echo\n");
    assert!(
        e.starts_with("Dockerfile:2:5: RUN does not take the flag --chown"),
        "{e}"
    );
    let e = err("FROM busybox\nWORKDIR --link /x\n");
    assert!(
        e.contains("WORKDIR does not take the flag --link") && e.contains("WORKDIR takes no flags"),
        "{e}"
    );
    let e = parse("FROM busybox\nRUN <<EOF\necho\n", "Dockerfile")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("Dockerfile:2:1: unterminated heredoc <<EOF"),
        "{e}"
    );
    let e = parse("# escape=x\nFROM busybox\n", "Dockerfile")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Dockerfile:1:1: invalid escape token"), "{e}");
    let e = err("FROM busybox AS 1bad\n");
    assert!(e.contains("invalid stage name \"1bad\""), "{e}");
    // Durations are checked when the step is resolved.
    let p = plan_of("FROM busybox\nHEALTHCHECK --interval=5 CMD true\n").unwrap();
    let mut s = StageScope::new(&p, 0, &[]);
    let e = s.resolve(&p.stages[0].steps[0]).unwrap_err().to_string();
    assert!(
        e.contains("Dockerfile:2:1: --interval: invalid duration \"5\""),
        "{e}"
    );
}

#[test]
fn global_args_only_in_from_unless_redeclared() {
    let text = "ARG V=1 X=g\nFROM alpine:$V\nRUN echo a\nENV E=$X\nARG X\nENV F=$X\n";
    let p = plan_of(text).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("alpine:1".into()));
    let r = resolve_all(&p, 0);
    assert_eq!(
        r[1],
        Resolved::Env(vec![("E".into(), "".into())]),
        "global not visible before ARG X"
    );
    assert_eq!(r[2], Resolved::Arg(vec![("X".into(), Some("g".into()))]));
    assert_eq!(r[3], Resolved::Env(vec![("F".into(), "g".into())]));
    // --build-arg overrides the global default, in FROM and in the stage.
    let p = plan_with(text, &[("V", "2"), ("X", "cli")], None).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("alpine:2".into()));
    assert_eq!(
        resolve_all(&p, 0)[2],
        Resolved::Arg(vec![("X".into(), Some("cli".into()))])
    );
}

#[test]
fn same_instruction_sees_only_earlier_values() {
    let p =
        plan_of("FROM scratch\nENV A=1\nENV A=2 B=$A\nARG C=3 D=$C\nLABEL L=$A M=$B\n").unwrap();
    let mut s = StageScope::new(&p, 0, &[("PATH".into(), "/bin".into())]);
    let r: Vec<Resolved> = p.stages[0]
        .steps
        .iter()
        .map(|st| s.resolve(st).unwrap())
        .collect();
    assert_eq!(
        r[1],
        Resolved::Env(vec![("A".into(), "2".into()), ("B".into(), "1".into())])
    );
    assert_eq!(
        r[2],
        Resolved::Arg(vec![
            ("C".into(), Some("3".into())),
            ("D".into(), Some(String::new()))
        ])
    );
    assert_eq!(
        r[3],
        Resolved::Label(vec![("L".into(), "2".into()), ("M".into(), "1".into())])
    );
    assert_eq!(
        s.env(),
        vec![
            ("PATH".into(), "/bin".into()),
            ("A".into(), "2".into()),
            ("B".into(), "1".into())
        ]
    );
    assert_eq!(
        s.build_args_in_scope(),
        vec![("C".into(), "3".into()), ("D".into(), "".into())]
    );
}

#[test]
fn env_wins_over_arg_and_base_env_is_seeded() {
    let p = plan_of("FROM scratch\nARG X=arg\nENV X=env\nWORKDIR /$X/$HOME\n").unwrap();
    let mut s = StageScope::new(&p, 0, &[("HOME".into(), "root".into())]);
    let r: Vec<Resolved> = p.stages[0]
        .steps
        .iter()
        .map(|st| s.resolve(st).unwrap())
        .collect();
    assert_eq!(r[2], Resolved::Workdir("/env/root".into()));
    assert!(s.build_args_in_scope().is_empty(), "ARG shadowed by ENV");
}

#[test]
fn predefined_and_proxy_args() {
    let p = plan_with(
        "FROM scratch\nARG TARGETARCH\nRUN true\n",
        &[("HTTP_PROXY", "http://p")],
        None,
    )
    .unwrap();
    let mut s = StageScope::new(&p, 0, &[]);
    let r = s.resolve(&p.stages[0].steps[0]).unwrap();
    assert_eq!(
        r,
        Resolved::Arg(vec![("TARGETARCH".into(), Some("amd64".into()))])
    );
    assert_eq!(
        s.build_args_in_scope(),
        vec![
            ("TARGETARCH".into(), "amd64".into()),
            ("HTTP_PROXY".into(), "http://p".into())
        ]
    );
    assert!(p.unused_build_args.is_empty());
}

#[test]
fn words_that_are_not_expanded() {
    let p =
        plan_of("FROM scratch\nENV X=1\nRUN echo $X\nCMD echo $X\nONBUILD RUN echo $X\n").unwrap();
    let r = resolve_all(&p, 0);
    assert_eq!(
        r[1],
        Resolved::Run {
            command: Command::Shell("echo $X".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
    assert_eq!(r[2], Resolved::Cmd(Command::Shell("echo $X".into())));
    assert_eq!(r[3], Resolved::Onbuild("RUN echo $X".into()));
}

#[test]
fn escape_directive_applies_to_expansion() {
    let p = plan_of("# escape=`\nFROM scratch\nENV A=x\nWORKDIR C:\\`$A\\$A\n").unwrap();
    assert_eq!(resolve_all(&p, 0)[1], Resolved::Workdir("C:\\$A\\x".into()));
}

#[test]
fn plan_prunes_and_orders() {
    let text =
        "FROM busybox AS a\nFROM busybox AS b\nRUN --mount=type=bind,from=a,target=/a true\n\
                FROM busybox AS unused\nFROM b AS c\nCOPY --from=0 /x /x\n";
    let p = plan_of(text).unwrap();
    assert_eq!(p.target, 3);
    assert_eq!(p.stages[1].depends_on, vec![0]);
    assert_eq!(p.stages[3].depends_on, vec![0, 1]);
    assert_eq!(p.build_order(), vec![0, 1, 3]);
    assert!(!p.stages[2].needed);
    let r = resolve_all(&p, 1);
    match &r[0] {
        Resolved::Run { mounts, .. } => {
            assert_eq!(mounts[0].kind, MountKind::Bind);
            assert_eq!(mounts[0].from, Some(FromRef::Stage(0)));
            assert!(mounts[0].readonly);
        }
        other => panic!("{other:?}"),
    }
    let p = plan_with(text, &[], Some("B")).unwrap();
    assert_eq!(p.build_order(), vec![0, 1]);
    assert_eq!(p.stage_by_ref("C"), Some(3));
}

#[test]
fn unknown_target_lists_stages() {
    let e = plan_with("FROM a AS one\nFROM b AS two\n", &[], Some("three")).unwrap_err();
    assert!(matches!(e, Error::UnknownTarget { .. }));
    assert_eq!(
        e.to_string(),
        "target stage \"three\" could not be found; stages in this Dockerfile: one, two"
    );
}

#[test]
fn misspelled_target_gets_a_suggestion() {
    let e = plan_with(
        "FROM a AS build
FROM b AS test
",
        &[],
        Some("bulid"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "target stage \"bulid\" could not be found; stages in this Dockerfile: build, test (did you mean \"build\"?)"
    );
}

#[test]
fn self_and_forward_references_are_errors() {
    let e = err("FROM busybox AS a\nCOPY --from=a /x /y\n");
    assert!(
        e.starts_with("Dockerfile:2:1: --from=a: stage \"a\" depends on itself"),
        "{e}"
    );
    let e = err("FROM busybox AS a\nCOPY --from=b /x /y\nFROM busybox AS b\n");
    assert!(
        e.contains("defined later in the Dockerfile (forward reference)"),
        "{e}"
    );
    let e = err("FROM busybox\nCOPY --from=1 /x /y\nFROM busybox\n");
    assert!(e.contains("forward reference"), "{e}");
    let e = err("FROM later\nFROM busybox AS later\n");
    assert!(e.contains("forward reference"), "{e}");
    let e = err("FROM busybox\nCOPY --from=Not_An_Image! /x /y\n");
    assert!(e.contains("no stage or image found with that name"), "{e}");
    // An unknown name that is a valid reference is an image, as in Docker.
    let p = plan_of("FROM busybox\nCOPY --from=alpine:3 /x /y\n").unwrap();
    assert_eq!(p.stages[0].depends_on, Vec::<usize>::new());
    let e = err("ARG X\nFROM base-$X\n");
    assert!(e.contains("invalid reference format"), "{e}");
}

#[test]
fn stage_args_are_inherited_through_from_stage() {
    let p = plan_of("FROM busybox AS a\nARG N=one\nFROM a\nRUN x\nENV E=$N\n").unwrap();
    assert_eq!(
        resolve_all(&p, 1)[1],
        Resolved::Env(vec![("E".into(), "one".into())])
    );
}

#[test]
fn onbuild_triggers_parse_later() {
    let loc = Location {
        file: "child".into(),
        line: 1,
        column: 1,
        end_line: 1,
    };
    let step = parse_trigger("RUN echo hi", loc.clone()).unwrap();
    assert_eq!(
        step.instruction,
        Instruction::Run {
            command: Command::Shell("echo hi".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
    assert!(parse_trigger("FROM x", loc.clone()).is_err());
    assert!(parse_trigger("ONBUILD RUN x", loc.clone()).is_err());
    assert!(parse_trigger("NOPE x", loc)
        .unwrap_err()
        .to_string()
        .contains("unknown instruction"));
    let e = err("FROM busybox\nONBUILD ONBUILD RUN x\n");
    assert!(e.contains("isn't allowed"), "{e}");
}

#[test]
fn healthcheck_resolves_durations() {
    let p = plan_of("FROM scratch\nHEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD [\"curl\", \"x\"]\n").unwrap();
    match &resolve_all(&p, 0)[0] {
        Resolved::Healthcheck(Some(h)) => {
            assert_eq!(h.test, vec!["CMD", "curl", "x"]);
            assert_eq!(h.interval, Some(std::time::Duration::from_secs(90)));
            assert_eq!(h.timeout, Some(std::time::Duration::from_millis(500)));
            assert_eq!(h.retries, Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mount_options_use_env_inherited_from_a_parent_stage() {
    let text = "FROM busybox AS base\nENV T=cache ID=mycache DIR=/cache\nFROM base\nRUN --mount=type=$T,id=$ID,target=$DIR true\n";
    // Planning used to expand the mount without the parent's ENV and fail
    // with 'unsupported mount type ""'.
    let p = plan_of(text).unwrap();
    let check = |env: &[(String, String)]| {
        let mut s = StageScope::new(&p, 1, env);
        match s.resolve(&p.stages[1].steps[0]).unwrap() {
            Resolved::Run { mounts, .. } => {
                assert_eq!(mounts[0].kind, MountKind::Cache);
                assert_eq!(mounts[0].id.as_deref(), Some("mycache"));
                assert_eq!(mounts[0].target.as_deref(), Some("/cache"));
            }
            other => panic!("{other:?}"),
        }
    };
    // As `strata check` seeds it, and as a build does (the parent's config Env).
    check(&p.known_base_env(1));
    check(&[
        ("T".into(), "cache".into()),
        ("ID".into(), "mycache".into()),
        ("DIR".into(), "/cache".into()),
    ]);
    // A value expanding to a comma stays one value (fields split before expansion).
    let p = plan_of("FROM busybox\nENV D=/a,b\nRUN --mount=type=tmpfs,target=$D true\n").unwrap();
    match resolve_all(&p, 0).pop().unwrap() {
        Resolved::Run { mounts, .. } => assert_eq!(mounts[0].target.as_deref(), Some("/a,b")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn variables_in_mount_from_are_refused_with_buildkit_wording() {
    let e = err("FROM busybox AS a\nFROM busybox\nARG X=a\nRUN --mount=from=$X,target=/x true\n");
    assert!(e.starts_with("Dockerfile:4:1: "), "{e}");
    assert!(
        e.contains("'from' doesn't support variable expansion, define alias stage instead"),
        "{e}"
    );
    let p =
        plan_of("FROM busybox AS a\nFROM busybox\nRUN --mount=from=a,target=/x true\n").unwrap();
    assert_eq!(p.stages[1].depends_on, vec![0]);
}

#[test]
fn expose_splits_expanded_words_into_ports() {
    let p = plan_of("FROM busybox\nENV PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS 5000\n").unwrap();
    assert_eq!(
        resolve_all(&p, 0).pop().unwrap(),
        Resolved::Expose(vec!["3000".into(), "4000/udp".into(), "5000".into()])
    );
}

#[test]
fn onbuild_keeps_heredoc_bodies_for_the_child_build() {
    let p = plan_of(
        "FROM busybox\nONBUILD RUN <<EOF\necho hi > /x\nEOF\nONBUILD COPY <<-EOT /greeting\n\thello\n\tEOT\n",
    )
    .unwrap();
    let triggers: Vec<String> = resolve_all(&p, 0)
        .into_iter()
        .map(|r| match r {
            Resolved::Onbuild(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    // BuildKit's form: the text after ONBUILD, then "\n" + body + terminator.
    assert_eq!(
        triggers,
        [
            "RUN <<EOF\necho hi > /x\nEOF",
            "COPY <<-EOT /greeting\n\thello\nEOT"
        ]
    );
    let loc = Location {
        file: "Dockerfile".into(),
        line: 1,
        column: 1,
        end_line: 1,
    };
    let child = plan_of("FROM parent\n").unwrap();
    let run = parse_trigger(&triggers[0], loc.clone()).unwrap();
    let mut scope = StageScope::new(&child, 0, &[]);
    match scope.resolve(&run).unwrap() {
        Resolved::Run { heredocs, .. } => {
            assert_eq!(heredocs.len(), 1);
            assert_eq!(heredocs[0].content, "echo hi > /x\n");
        }
        other => panic!("{other:?}"),
    }
    match scope
        .resolve(&parse_trigger(&triggers[1], loc).unwrap())
        .unwrap()
    {
        Resolved::Copy { heredocs, dest, .. } => {
            assert_eq!(dest, "/greeting");
            assert_eq!(heredocs[0].content, "hello\n");
        }
        other => panic!("{other:?}"),
    }
}

/// BuildKit's testHeredocVarSubstitution and testCopyHeredocSpecialSymbols.
#[test]
fn unquoted_heredoc_bodies_expand_with_buildkit_rules() {
    let cases: [(&str, &str, &str); 13] = [
        ("EOF", "Hello ${name}!\n", "Hello world!\n"),
        ("'EOF'", "Hello ${name}!\n", "Hello ${name}!\n"),
        ("\"EOF\"", "Hello ${name}!\n", "Hello ${name}!\n"),
        ("EOF", "Hello '${name}'!\n", "Hello 'world'!\n"),
        ("EOF", "Hello \"${name}\"!\n", "Hello \"world\"!\n"),
        ("'EOF'", "Hello '${name}'!\n", "Hello '${name}'!\n"),
        ("\"EOF\"", "Hello \"${name}\"!\n", "Hello \"${name}\"!\n"),
        ("EOF", "\"quotes in file\"\n", "\"quotes in file\"\n"),
        ("EOF", "\\\n", "\n"),
        ("EOF", "\\\\\n", "\\\n"),
        ("EOF", "\\$\n", "$\n"),
        ("\"EOF\"", "\\\\\n", "\\\\\n"),
        ("EOF", "a \\\nb\n", "a \nb\n"),
    ];
    for (marker, body, want) in cases {
        let text = format!("FROM busybox\nARG name=world\nCOPY <<{marker} /f\n{body}EOF\n");
        let p = plan_of(&text).unwrap();
        match resolve_all(&p, 0).pop().unwrap() {
            Resolved::Copy { heredocs, .. } => {
                assert_eq!(heredocs[0].content, want, "<<{marker} {body:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn targetstage_is_a_predefined_arg() {
    let text = "FROM busybox AS build\nARG TARGETSTAGE\nRUN echo $TARGETSTAGE\nFROM build AS Final\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\n";
    let value = |p: &Plan, stage: usize| {
        let mut s = StageScope::new(p, stage, &p.known_base_env(stage));
        for step in &p.stages[stage].steps {
            s.resolve(step).unwrap();
        }
        s.lookup("TARGETSTAGE")
    };
    let p = plan_of(text).unwrap();
    assert_eq!(value(&p, 1).as_deref(), Some("final"));
    assert_eq!(value(&p, 0).as_deref(), Some("final"));
    let p = plan_with(text, &[], Some("build")).unwrap();
    assert_eq!(value(&p, 0).as_deref(), Some("build"));
    // Undeclared in a stage, it is not visible (like the platform ARGs).
    let p = plan_of("FROM busybox AS x\nENV T=${TARGETSTAGE:-unset}\n").unwrap();
    assert_eq!(
        resolve_all(&p, 0),
        vec![Resolved::Env(vec![("T".into(), "unset".into())])]
    );
}

#[test]
fn buildkit_wording_and_suggestions_in_errors() {
    let e = err("FROM busybox\nRUN --mont=type=cache,target=/c true\n");
    assert!(
        e.contains("RUN does not take the flag --mont (did you mean --mount?)"),
        "{e}"
    );
    let e = err("FROM busybox\nCOPY --form=a / /\n");
    assert!(e.contains("(did you mean --from?)"), "{e}");
    let e = err("ARG A=1\n");
    assert!(e.contains("no stages to build"), "{e}");
    let e = err("FROM busybox AS one\nCOPY --from=two /x /x\nFROM busybox AS two\n");
    assert!(
        e.contains(
            "cannot copy from stage \"two\", it needs to be defined before current stage \"one\""
        ),
        "{e}"
    );
    let e = err("FROM busybox AS one\nCOPY --from=one /x /x\n");
    assert!(
        e.contains("needs to be defined before current stage"),
        "{e}"
    );
}

#[test]
fn copy_from_a_typo_of_a_stage_suggests_the_stage() {
    let e = err("FROM busybox AS builder\nFROM busybox\nCOPY --from=biulder /x /y\n");
    assert!(
        e.contains("--from=biulder: no stage named \"biulder\"; did you mean stage `builder`?"),
        "{e}"
    );
    // Images far from any stage name, or written as full references, are images.
    plan_of("FROM busybox AS builder\nFROM busybox\nCOPY --from=nginx /x /y\n").unwrap();
    plan_of("FROM busybox AS builder\nFROM busybox\nCOPY --from=docker.io/library/biulder /x /y\n")
        .unwrap();
    let e = err("FROM busybox AS builder\nFROM busybox\nCOPY --from=Not_Valid! /x /y\n");
    assert!(e.contains("no stage or image found"), "{e}");
}
