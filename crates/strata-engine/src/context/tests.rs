//! Tests of the build context: sources, digests, the stat cache.

use super::*;

struct IgnoreTxt;
impl Ignore for IgnoreTxt {
    fn ignored(&self, rel: &str) -> bool {
        rel.ends_with(".txt")
    }
    fn can_skip_dir(&self, _: &str) -> bool {
        true
    }
}

#[test]
fn listed_digest_names_every_hashed_entry() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("src")).unwrap();
    std::fs::write(d.path().join("src/main.go"), "package main\n").unwrap();
    std::fs::write(d.path().join("src/empty"), "").unwrap();
    std::fs::set_permissions(
        d.path().join("src/main.go"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("main.go", d.path().join("src/link")).unwrap();
    let ctx = BuildContext::open(d.path(), Box::new(NoIgnore), None).unwrap();
    let rels = [PathBuf::from("src")];
    let mut list = crate::whymiss::FileSet::default();
    let listed = ctx.digest_sources_listed(&rels, Some(&mut list)).unwrap();
    assert_eq!(listed, ctx.digest_sources(&rels).unwrap());
    let mut files = list.files.clone();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["src", "src/empty", "src/link", "src/main.go"]);
    assert_eq!(files[0].1, 0o040000, "the source dir's mode is not keyed");
    assert_eq!(files[1].2, EMPTY_SHA256);
    assert_eq!(files[2].2, "main.go");
    assert_eq!(files[3].1, 0o100640);
    assert_eq!(
        files[3].2,
        hash_file(&d.path().join("src/main.go")).unwrap()
    );
    assert!(list.complete);
    // The whole context is listed as ".".
    let mut all = crate::whymiss::FileSet::default();
    ctx.digest_sources_listed(&[PathBuf::new()], Some(&mut all))
        .unwrap();
    assert!(all.files.iter().any(|f| f.0 == "."));
}

#[test]
fn rejects_paths_outside() {
    let d = tempfile::tempdir().unwrap();
    let ctx = BuildContext::open(d.path(), Box::new(NoIgnore), None).unwrap();
    assert!(matches!(
        ctx.clean_source("../x"),
        Err(ContextError::OutsideContext(_))
    ));
    assert!(matches!(
        ctx.clean_source("a/../../x"),
        Err(ContextError::OutsideContext(_))
    ));
    assert_eq!(ctx.clean_source("./a/./b/../c/").unwrap(), "a/c");
    assert_eq!(ctx.clean_source(".").unwrap(), "");
}

#[test]
fn digest_follows_content_not_mtime_and_caches() {
    let d = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("src")).unwrap();
    fs::write(d.path().join("src/a.go"), "package a").unwrap();
    fs::write(d.path().join("src/notes.txt"), "x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("src/link")).unwrap();
    // Make the files old so the racy check does not force re-hashing.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
    for f in ["src/a.go", "src/notes.txt"] {
        File::options()
            .write(true)
            .open(d.path().join(f))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
    let open = || BuildContext::open(d.path(), Box::new(IgnoreTxt), Some(cache.path())).unwrap();
    let ctx = open();
    let srcs = ctx.resolve_source("src").unwrap();
    let d1 = ctx.digest_sources(&srcs).unwrap();
    assert_eq!(ctx.files_hashed(), 1, "the .txt is ignored");
    ctx.save();

    // ctime is fresh (just written), so the entry is racy and re-hashed
    // until 2 s have passed; the digest must not change either way.
    let ctx = open();
    assert_eq!(ctx.digest_sources(&srcs).unwrap(), d1);

    // The ignored file changes nothing.
    fs::write(d.path().join("src/notes.txt"), "yy").unwrap();
    let ctx = open();
    assert_eq!(ctx.digest_sources(&srcs).unwrap(), d1);

    // Same size, mtime forced back: still a miss.
    fs::write(d.path().join("src/a.go"), "package b").unwrap();
    File::options()
        .write(true)
        .open(d.path().join("src/a.go"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let ctx = open();
    assert_ne!(ctx.digest_sources(&srcs).unwrap(), d1);
}

/// A context file that turns into a FIFO between the walk's stat and
/// the read (or any FIFO handed to the digest): refused, never opened
/// for reading (a plain open blocks until a writer comes: forever).
#[test]
fn a_fifo_is_never_read_for_a_digest() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("f"), b"regular").unwrap();
    let meta = fs::symlink_metadata(d.path().join("f")).unwrap();
    fs::remove_file(d.path().join("f")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.path().join("f"),
        FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let root = d.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ctx = BuildContext::open(&root, Box::new(NoIgnore), None).unwrap();
        let r = ctx.file_digest("f", &root.join("f"), &meta).map(|_| ());
        let _ = tx.send(r.map_err(|e| crate::error::chain(&e)));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the digest blocked on a FIFO");
    let e = r.unwrap_err();
    assert!(e.contains("FIFO"), "{e}");
    assert!(hash_file(&d.path().join("f")).is_err());
}

#[test]
fn trusts_old_entries() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("f"), "data").unwrap();
    let ctx = BuildContext::open(d.path(), Box::new(NoIgnore), None).unwrap();
    let meta = fs::symlink_metadata(d.path().join("f")).unwrap();
    let digest = ctx.file_digest("f", &d.path().join("f"), &meta).unwrap();
    // Pretend it was hashed long after its last change.
    ctx.stat_cache
        .lock()
        .unwrap()
        .entries
        .get_mut("f")
        .unwrap()
        .hashed_at_ns += 10 * RACY_WINDOW_NS;
    assert_eq!(
        ctx.file_digest("f", &d.path().join("f"), &meta).unwrap(),
        digest
    );
    assert_eq!(ctx.files_hashed(), 1);
}
