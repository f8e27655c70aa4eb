//! Parse + plan + resolve every step of every stage; also the dump and
//! ONBUILD trigger parsing. Any panic or hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_frontend::{parse, parse_trigger, plan, BuildOptions, Location, Resolved, StageScope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ast) = parse(text, "Dockerfile") else {
        return;
    };
    let _ = ast.dump();
    let Ok(p) = plan(&ast, &BuildOptions::default()) else {
        return;
    };
    for i in 0..p.stages.len() {
        let mut scope = StageScope::new(&p, i, &[("PATH".into(), "/bin".into())]);
        for step in &p.stages[i].steps {
            if let Ok(Resolved::Onbuild(t)) = scope.resolve(step) {
                let _ = parse_trigger(&t, Location::default());
            }
        }
        let _ = scope.env();
        let _ = scope.build_args_in_scope();
    }
    let _ = p.build_order();
});
