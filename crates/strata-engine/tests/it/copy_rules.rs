//! COPY rules, checked in the built image's layers.

use crate::support::Fixture;

crate::tests!(
    last_source_wins,
    directory_contents_not_the_directory,
    chown_and_chmod,
    wildcards,
    copy_from_a_stage,
    dockerignore_excludes,
    missing_source_fails,
);

/// Two sources with the same name: the later one's file is kept.
fn last_source_wins() {
    let fx = Fixture::new();
    fx.write("one/f", "from one");
    fx.write("two/f", "from two");
    fx.write("one/only-one", "1");
    let b = fx.build("FROM scratch\nCOPY one/ two/ /dst/\nCOPY two/f one/f /rev/\n");
    let files = fx.files(b.image());
    assert_eq!(files.text("dst/f"), "from two");
    assert_eq!(files.text("dst/only-one"), "1");
    assert_eq!(files.text("rev/f"), "from one");
}

/// `COPY dir /d` copies what is in dir, not dir itself, with or without
/// a trailing slash, and creates the destination.
fn directory_contents_not_the_directory() {
    let fx = Fixture::new();
    fx.write("dir/x", "x");
    fx.write("dir/sub/y", "y");
    let b = fx.build("FROM scratch\nCOPY dir /d1\nCOPY dir/ /d2/\n");
    let files = fx.files(b.image());
    for d in ["d1", "d2"] {
        assert_eq!(files.text(&format!("{d}/x")), "x");
        assert_eq!(files.text(&format!("{d}/sub/y")), "y");
        assert!(!files.has(&format!("{d}/dir")), "{:?}", files.paths());
    }
}

fn chown_and_chmod() {
    let fx = Fixture::new();
    fx.write("a.txt", "a");
    fx.write("tree/f", "f");
    let b = fx.build(
        "FROM scratch\n\
         COPY --chown=1000:2000 --chmod=0750 a.txt /owned\n\
         COPY --chown=7:8 tree /tree\n\
         COPY a.txt /plain\n",
    );
    let files = fx.files(b.image());
    let owned = files.get("owned");
    assert_eq!((owned.uid, owned.gid, owned.mode), (1000, 2000, 0o750));
    let f = files.get("tree/f");
    assert_eq!((f.uid, f.gid, f.mode), (7, 8, 0o644));
    let plain = files.get("plain");
    assert_eq!((plain.uid, plain.gid, plain.mode), (0, 0, 0o644));
}

fn wildcards() {
    let fx = Fixture::new();
    fx.write("a.txt", "a");
    fx.write("b.txt", "b");
    fx.write("c.md", "c");
    fx.write("sub/d.txt", "d");
    let b = fx.build("FROM scratch\nCOPY *.txt /w/\n");
    let files = fx.files(b.image());
    assert_eq!(files.text("w/a.txt"), "a");
    assert_eq!(files.text("w/b.txt"), "b");
    assert!(!files.has("w/c.md"));
    assert!(!files.has("w/d.txt") && !files.has("w/sub"));
}

/// `COPY --from=STAGE` copies what that stage's RUN wrote, and nothing
/// else of the stage.
fn copy_from_a_stage() {
    let fx = Fixture::new();
    let b = fx.build(
        "FROM scratch AS builder\n\
         RUN mkdir -p /out && echo built > /out/artifact && echo no > /other\n\
         FROM scratch\n\
         COPY --from=builder /out/artifact /bin/artifact\n",
    );
    let files = fx.files(b.image());
    assert_eq!(files.text("bin/artifact"), "built\n");
    assert!(!files.has("other") && !files.has("out"));
}

/// `.dockerignore`'d files are not copied and are no part of a key.
fn dockerignore_excludes() {
    let fx = Fixture::new();
    fx.write(".dockerignore", "secret.txt\n*.log\n");
    fx.write("keep.txt", "k");
    fx.write("secret.txt", "s");
    fx.write("debug.log", "l");
    let df = "FROM scratch\nCOPY . /ctx/\n";
    let b = fx.build(df);
    let files = fx.files(b.image());
    assert_eq!(files.text("ctx/keep.txt"), "k");
    assert!(!files.has("ctx/secret.txt"), "{:?}", files.paths());
    assert!(!files.has("ctx/debug.log"), "{:?}", files.paths());
    fx.write("secret.txt", "changed");
    assert!(fx.build(df).cached("COPY . /ctx/"));
    fx.write("keep.txt", "changed");
    assert!(!fx.build(df).cached("COPY . /ctx/"));
}

fn missing_source_fails() {
    let fx = Fixture::new();
    let e = fx
        .attempt("FROM scratch\nCOPY nothing.txt /x\n", |_| {})
        .error()
        .to_string();
    assert!(e.contains("nothing.txt"), "{e}");
}
