//! The layering inside the node's crates (`docs/layout.md`): within each of node/cli, node/daemon, node/market
//! and node/settlement no two files import each other, directly or around a longer cycle. Between crates the
//! arrows are enforced by cargo itself (a lower crate cannot name a higher one).
//!
//! An import is a path through `crate::` or `super::` (and a module imported that way and then named, as in
//! `use crate::commands; commands::init::run(..)`). A parent naming the child modules it declares (`mod jobs;`
//! then `jobs::handler`) is the module tree, not an import; `#[cfg(test)] mod tests` blocks are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose files must not import each other in a cycle.
const CRATES: [&str; 4] = ["node/cli", "node/daemon", "node/market", "node/settlement"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `api/mod.rs` → `api`, `lib.rs` → `` (the crate root), `commands/node.rs` → `commands::node`.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths written after each `prefix` (e.g. `crate::`), one level of `{a, b::c}` groups expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$') {
            continue;
        }
        let mut rest = &code[i + prefix.len()..];
        let mut path = Vec::new();
        loop {
            let id = ident_at(rest);
            if id.is_empty() {
                break;
            }
            path.push(id.to_string());
            rest = &rest[id.len()..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.split(" as ").next().unwrap_or("").trim();
                let mut p = path.clone();
                p.extend(
                    item.split("::")
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(str::to_string),
                );
                out.push(p);
            }
        }
        out.push(path);
    }
    out
}

/// The longest module named by `base` + `path`.
fn resolve(modules: &BTreeSet<String>, base: &[String], path: &[String]) -> String {
    let mut best = base.join("::");
    let mut cur = base.to_vec();
    for seg in path {
        cur.push(seg.clone());
        let name = cur.join("::");
        if !modules.contains(&name) {
            break;
        }
        best = name;
    }
    best
}

/// Which modules `module` imports.
fn imports(module: &str, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let own: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut out = BTreeSet::new();
    for path in paths_after(code, "crate::") {
        out.insert(resolve(modules, &[], &path));
        // `use crate::commands;` then `commands::init::run(..)`.
        let target = path.join("::");
        if let (true, Some(alias)) = (modules.contains(&target), path.last()) {
            for sub in paths_after(code, &format!("{alias}::")) {
                out.insert(resolve(modules, &path, &sub));
            }
        }
    }
    for path in paths_after(code, "super::") {
        let ups = 1 + path.iter().take_while(|s| *s == "super").count();
        let base = &own[..own.len().saturating_sub(ups)];
        let rest: Vec<String> = path.into_iter().skip(ups - 1).collect();
        out.insert(resolve(modules, base, &rest));
    }
    // Naming an ancestor's item is not a cycle with it unless it names us back; the own module is no edge.
    out.remove(module);
    out
}

/// A cycle in the graph, if any, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_name(src, f)).collect();
    files
        .iter()
        .map(|f| {
            let module = module_name(src, f);
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            let edges = imports(&module, &code, &modules);
            (module, edges)
        })
        .collect()
}

#[test]
fn no_two_files_of_a_node_crate_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in CRATES {
        let graph = import_graph(&root.join(krate).join("src"));
        assert!(graph.len() > 2, "{krate}: no modules found");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: an import cycle: {}", cycle.join(" → "));
        }
    }
}

/// The checker sees the cycles the split removed (so the test above cannot pass by seeing nothing).
#[test]
fn the_checker_finds_a_cycle_through_an_imported_module() {
    let modules: BTreeSet<String> = ["", "cli", "commands", "commands::init"]
        .map(String::from)
        .into();
    let cli = imports(
        "cli",
        "use crate::commands;\nfn f() { commands::init::run() }",
        &modules,
    );
    let init = imports("commands::init", "use crate::cli::Context;", &modules);
    let graph = BTreeMap::from([
        ("cli".to_string(), cli),
        ("commands::init".to_string(), init),
    ]);
    assert!(find_cycle(&graph).is_some(), "{graph:?}");
    let sibling = imports("worker", "use super::service::{now_ms, Shared};", &{
        ["", "service", "worker"].map(String::from).into()
    });
    assert!(sibling.contains("service"), "{sibling:?}");
}
