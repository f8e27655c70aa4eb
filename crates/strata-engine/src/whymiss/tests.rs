//! Tests of the cache-miss explanations.

use super::*;
use serde_json::json;

fn fe(p: &str, mode: u32, d: &str) -> FileEntry {
    FileEntry(p.into(), mode, d.into())
}

fn set(files: Vec<FileEntry>) -> FileSet {
    FileSet {
        files,
        complete: true,
    }
}

fn copy_trace(input: &str) -> Trace {
    Trace {
        def: json!({"instr": {"Copy": {"srcs": ["."], "dest": "/src"}}, "input": input}),
        input: Some("context".into()),
        ..Default::default()
    }
}

#[test]
fn file_diffs_name_content_mode_type_and_membership() {
    let old = vec![
        fe(".", 0o040000, ""),
        fe("a.go", 0o100644, "sha256:1"),
        fe("run.sh", 0o100644, "sha256:2"),
        fe("gone", 0o100644, "sha256:3"),
        fe("l", 0o120777, "x"),
        fe("d", 0o040755, ""),
    ];
    let new = vec![
        fe(".", 0o040000, ""),
        fe("a.go", 0o100644, "sha256:9"),
        fe("run.sh", 0o100755, "sha256:2"),
        fe("new", 0o100644, "sha256:4"),
        fe("l", 0o120777, "y"),
        fe("d", 0o100644, "sha256:5"),
    ];
    let c = diff_files(&old, &new);
    assert_eq!(
        c,
        vec![
            FileChange::Content("a.go".into()),
            FileChange::Kind("d".into()),
            FileChange::Removed("gone".into()),
            FileChange::LinkTarget("l".into()),
            FileChange::Added("new".into()),
            FileChange::Mode("run.sh".into(), 0o100644, 0o100755),
        ]
    );
    assert_eq!(
        describe_file_changes(&c),
        "a.go changed (content), d changed (type), gone removed, and 3 more files"
    );
    assert_eq!(
        describe_file_changes(&c[5..]),
        "run.sh changed (mode 0644 -> 0755)"
    );
    assert!(diff_files(&old, &old).is_empty());
}

#[test]
fn a_copy_names_the_changed_file_only() {
    let old = copy_trace("sha256:old");
    let new = copy_trace("sha256:new");
    let mut old_inputs = Inputs::new();
    old_inputs.insert(
        "input".into(),
        set(vec![
            fe("src/main.go", 0o100644, "sha256:1"),
            fe("b", 0o100644, "sha256:2"),
        ]),
    );
    let mut new_inputs = Inputs::new();
    new_inputs.insert(
        "input".into(),
        set(vec![
            fe("src/main.go", 0o100644, "sha256:9"),
            fe("b", 0o100644, "sha256:2"),
        ]),
    );
    let r = explain_same_parent(&old, &new, || Some(old_inputs.clone()), &new_inputs);
    assert_eq!(r, "src/main.go changed (content)");
    // Without the old list: a generic sentence, never a wrong file.
    let r = explain_same_parent(&old, &new, || None, &new_inputs);
    assert_eq!(r, "the context sources changed");
}

#[test]
fn file_lists_are_read_only_when_needed() {
    let mut old = copy_trace("sha256:same");
    old.def["build_args"] = json!([["V", "1"]]);
    let mut new = copy_trace("sha256:same");
    new.def["build_args"] = json!([["V", "2"]]);
    let r = explain_same_parent(&old, &new, || panic!("files read"), &Inputs::new());
    assert_eq!(r, "build arg V changed (1 -> 2)");
}

#[test]
fn build_args_set_changed_unset() {
    let a = vec![("A".to_string(), "1".to_string()), ("B".into(), "x".into())];
    let b = vec![("A".to_string(), "2".to_string()), ("C".into(), "y".into())];
    assert_eq!(
        describe_args(&a, &b).unwrap(),
        "build arg A changed (1 -> 2), build arg B unset, build arg C set (=y)"
    );
    assert_eq!(describe_args(&a, &a), None);
}

#[test]
fn another_expansion_names_the_build_arg_behind_it() {
    let mk = |dest: &str, v: &str| Trace {
        def: json!({"instr": {"Workdir": dest}}),
        args: [("DIR".to_string(), v.to_string())].into(),
        ..Default::default()
    };
    let r = explain_same_parent(&mk("/a", "a"), &mk("/b", "b"), || None, &Inputs::new());
    assert_eq!(r, "build arg DIR changed (a -> b)");
    let mut n = mk("/b", "a");
    n.def = json!({"instr": {"Run": {"mounts": [1], "command": "x"}}});
    let mut o = mk("/b", "a");
    o.def = json!({"instr": {"Run": {"mounts": [2], "command": "x"}}});
    assert_eq!(
        explain_same_parent(&o, &n, || None, &Inputs::new()),
        "its --mount options changed"
    );
}

#[test]
fn stage_and_image_inputs() {
    let mk = |label: &str, d: &str| Trace {
        def: json!({"instr": {}, "input": d}),
        input: Some(label.into()),
        ..Default::default()
    };
    assert_eq!(
        explain_same_parent(
            &mk("stage build", "k1"),
            &mk("stage build", "k2"),
            || None,
            &Inputs::new()
        ),
        "stage build changed"
    );
    assert_eq!(
        explain_same_parent(
            &mk("image a", "sha256:1111111111111111"),
            &mk("image a", "sha256:2222222222222222"),
            || None,
            &Inputs::new()
        ),
        "image a changed (sha256:111111111111 -> sha256:222222222222)"
    );
}

#[test]
fn a_bind_mount_names_its_files() {
    let mk = |d: &str| Trace {
        def: json!({"instr": {}, "mount_inputs": ["same", d]}),
        mounts: vec!["bind mount a".into(), "bind mount src".into()],
        ..Default::default()
    };
    let mut oi = Inputs::new();
    oi.insert("mount:1".into(), set(vec![fe("src/x", 0o100644, "1")]));
    let mut ni = Inputs::new();
    ni.insert("mount:1".into(), set(vec![fe("src/x", 0o100600, "1")]));
    assert_eq!(
        explain_same_parent(&mk("d1"), &mk("d2"), || Some(oi), &ni),
        "bind mount src: src/x changed (mode 0644 -> 0600)"
    );
}

#[test]
fn identical_definitions_mean_missing_layers() {
    let t = copy_trace("sha256:x");
    assert!(explain_same_parent(&t, &t, || None, &Inputs::new()).contains("no longer"));
}

#[test]
fn parent_changes_name_the_step_above_or_the_base() {
    assert_eq!(
        explain_parent_change(&Above::Step("RUN echo b".into()), None),
        "the step above changed: RUN echo b"
    );
    let t = Trace::default();
    assert_eq!(
        explain_parent_change(&Above::Step("RUN echo b".into()), Some(("RUN echo b", &t))),
        "the step above changed: RUN echo b"
    );
    assert_eq!(
        explain_parent_change(&Above::Step("RUN echo b".into()), Some(("RUN  echo a", &t))),
        "the step above changed: RUN echo b (was: RUN echo a)"
    );
    let base = |id: &str, from: &str| Trace {
        def: json!({"base": id, "platform": "linux/amd64"}),
        from: Some(from.into()),
        ..Default::default()
    };
    let new = Above::Base {
        trace: base("sha256:bbbbbbbbbbbbbbbbbbbb", "busybox:1.35"),
    };
    assert_eq!(
        explain_parent_change(
            &new,
            Some((
                "FROM busybox:1.35",
                &base("sha256:aaaaaaaaaaaaaaaaaaaa", "busybox:1.35")
            ))
        ),
        "the base image busybox:1.35 changed (sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb)"
    );
    assert_eq!(
        explain_parent_change(
            &new,
            Some(("FROM busybox:1.36", &base("sha256:aaaa", "busybox:1.36")))
        ),
        "the base changed: FROM busybox:1.35 (was busybox:1.36)"
    );
    assert_eq!(
        explain_parent_change(&new, None),
        "the base image changed (busybox:1.35)"
    );
    let step = Trace {
        def: json!({"instr": {}}),
        ..Default::default()
    };
    assert_eq!(
        explain_parent_change(&new, Some(("RUN x", &step))),
        "the step above changed: FROM busybox:1.35 (was: RUN x)"
    );
    assert_eq!(
        explain_parent_change(&Above::Stage("build".into()), None),
        "the base stage build changed"
    );
}

#[test]
fn file_sets_are_bounded() {
    let mut s = FileSet::default();
    assert!(s.complete);
    for i in 0..MAX_FILES + 2 {
        s.push(format!("f{i}"), 0o100644, String::new());
    }
    assert_eq!(s.files.len(), MAX_FILES);
    assert!(!s.complete);
    let json = serde_json::to_string(&FileSet {
        files: vec![fe("a", 0o100644, "sha256:1")],
        complete: true,
    })
    .unwrap();
    assert_eq!(
        json,
        r#"{"files":[["a",33188,"sha256:1"]],"complete":true}"#
    );
}

#[test]
fn short_digests() {
    assert_eq!(
        short_digest("sha256:0123456789abcdef"),
        "sha256:0123456789ab"
    );
    assert_eq!(
        short_digest("dir:sha256:0123456789abcdef"),
        "dir:sha256:0123456789ab"
    );
    assert_eq!(short_digest("scratch"), "scratch");
}

#[test]
fn one_line_collapses_and_cuts() {
    assert_eq!(one_line("RUN a \\\n    && b"), "RUN a \\ && b");
    assert_eq!(one_line(&"x".repeat(100)).len(), 80);
}
