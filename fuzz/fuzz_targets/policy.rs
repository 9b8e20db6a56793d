//! Policy documents (TOML, docs/POLICY.md) and CODEOWNERS files: text from anywhere, checked
//! without a panic; a document that parses evaluates its classification and rules without one.
//! The first byte picks the parser.
#![no_main]

use ledger_audit::policy::{ClassifyInput, CodeownersFile, Policy};
use ledger_core::record::Stage;
use ledger_core::types::Tier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    if pick % 2 == 0 {
        match Policy::parse(text) {
            Ok(p) => {
                let paths = vec!["src/auth/login.rs".to_string(), "docs/a.md".to_string()];
                let c = p.classify(&ClassifyInput { repo: "acme/shop", paths: Some(&paths), labels: &[], risk_areas: &[] });
                assert!(p.tiers.contains_key(&c.tier), "a parsed policy classifies into a defined tier");
                for t in [Tier::T0, Tier::T1, Tier::T2, Tier::T3] {
                    let rules = p.tier(t);
                    let _ = rules.rules(Stage::Deploy);
                    let _ = rules.first_test_path(&paths);
                    let _ = p.model_approved("gpt-5", t);
                }
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                assert!(errors.iter().all(|e| e.line >= 1 && e.column >= 1), "{errors:?}");
            }
        }
    } else if let Ok(f) = CodeownersFile::parse(text) {
        let _ = f.owners_of("src/auth/login.rs");
        let _ = f.owners_of("");
    }
});
