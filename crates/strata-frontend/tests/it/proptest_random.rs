//! Random input never panics, and a few invariants hold.

use proptest::prelude::*;
use strata_frontend::{
    expand_word, expand_words, parse, parse_dockerignore, plan, BuildOptions, IgnoreMatcher, Lexer,
    StageScope,
};

/// Dockerfile-ish text: instruction words, flags, quotes, `$`, heredocs, continuations.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM ".to_string()),
        Just("FROM busybox AS b\n".to_string()),
        Just("RUN ".to_string()),
        Just("COPY --from=b ".to_string()),
        Just("ENV A=1 B=$A\n".to_string()),
        Just("ARG X=${Y:-z}\n".to_string()),
        Just("<<EOF\n".to_string()),
        Just("EOF\n".to_string()),
        Just("\\\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("[\"a\", 1]".to_string()),
        Just("--mount=type=cache,target=/x ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK --interval=1s CMD ".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
        Just("\n".to_string()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn parse_plan_resolve_never_panic(text in dockerfile_text()) {
        if let Ok(ast) = parse(&text, "Dockerfile") {
            // Dump lines correspond one-to-one with instructions.
            prop_assert_eq!(ast.dump().lines().count(), ast.children.len());
            for n in &ast.children {
                prop_assert!(n.location.line >= 1 && n.location.end_line >= n.location.line);
            }
            if let Ok(p) = plan(&ast, &BuildOptions::default()) {
                let order = p.build_order();
                prop_assert!(order.contains(&p.target));
                for s in &p.stages {
                    prop_assert!(s.depends_on.iter().all(|d| *d < s.index), "deps point backwards");
                    if s.needed {
                        prop_assert!(s.depends_on.iter().all(|d| p.stages[*d].needed));
                    }
                    let mut scope = StageScope::new(&p, s.index, &[]);
                    for step in &s.steps {
                        let _ = scope.resolve(step);
                    }
                }
            }
        }
    }

    #[test]
    fn expansion_never_panics(word in "[-a-zA-Z0-9 ${}:?#%/*\\\\'\"`+=.]{0,40}") {
        let env = |n: &str| (n == "A").then(|| "x y".to_string());
        let _ = expand_word(&word, &env, '\\');
        let _ = expand_words(&word, &env, '`');
        let mut lex = Lexer::new('\\');
        lex.skip_unset = true;
        lex.raw_quotes = true;
        let _ = lex.process(&word, &env);
    }

    #[test]
    fn plain_words_expand_to_themselves(word in "[a-zA-Z0-9_./-]{0,30}") {
        let env = |_: &str| None;
        prop_assert_eq!(expand_word(&word, &env, '\\').unwrap(), word);
    }

    #[test]
    fn quoted_text_is_literal(word in "[a-zA-Z0-9 $_{}.]{0,30}") {
        let env = |_: &str| Some("SHOULD-NOT-APPEAR".to_string());
        prop_assert_eq!(expand_word(&format!("'{word}'"), &env, '\\').unwrap(), word);
    }

    #[test]
    fn ignore_matching_never_panics(
        pats in proptest::collection::vec("[!a-c*?/\\[\\]\\\\^.-]{0,8}", 0..5),
        path in "[a-c/.]{0,12}",
    ) {
        if let Ok(m) = IgnoreMatcher::new(&pats) {
            let _ = m.matches(&path);
            // A skippable directory is always itself ignored.
            if m.can_skip_dir(&path) {
                prop_assert!(m.matches(&path).unwrap_or(false));
            }
        }
        let _ = parse_dockerignore(&pats.join("\n"));
    }

    #[test]
    fn skipped_dirs_hide_no_included_file(dir in "[ab]{1,2}", file in "[ab]{1,2}", excl in "[ab*]{1,3}") {
        let pats = vec![dir.clone(), format!("!{dir}/{excl}")];
        let m = IgnoreMatcher::new(&pats).unwrap();
        let inside = format!("{dir}/{file}");
        if m.can_skip_dir(&dir) {
            prop_assert!(m.matches(&inside).unwrap(), "{inside} would be re-included");
        }
    }
}
