//! The layout shows the architecture: within each crate of the workspace, no module depends on
//! another that depends back on it, directly or through others. A module is a source file; it
//! depends on every module a path in its code names (`crate::a::b`, `super::x`, a child's
//! `child::y`, its `use` declarations), resolved to the file that defines it. A path through a
//! re-export (`crate::Thing` from `lib.rs`) depends on the re-exporting file: definitions are
//! imported from where they live. Comments are not code (a doc link is no dependency), nor are
//! `#[cfg(test)]` modules (tests use what they test).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type ModulePath = Vec<String>;

/// Every `.rs` file of a crate's library (`src/`, but a binary's `main.rs` beside a `lib.rs`: a
/// crate of its own), by module path (`src/a/b.rs` and `src/a/b/mod.rs`: `a::b`).
fn modules(src: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let binary_beside_library = src.join("lib.rs").is_file();
    let mut found = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            if binary_beside_library && path == src.join("main.rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut segments: ModulePath =
                relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segments.last().map(String::as_str), Some("lib" | "main" | "mod")) {
                segments.pop();
            }
            found.insert(segments, path);
        }
    }
    found
}

/// The paths a file's code names, each with the module path it is written in (inline modules
/// included).
struct Paths {
    inline: ModulePath,
    named: Vec<(ModulePath, Vec<String>)>,
}

impl Paths {
    fn push(&mut self, segments: Vec<String>) {
        self.named.push((self.inline.clone(), segments));
    }
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([prefix.clone(), vec![n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([prefix.clone(), vec![r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|item| use_paths(item, prefix, out)),
    }
}

/// Whether `attrs` hold `#[cfg(test)]`: test code uses what it tests, and is no part of it.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|ident| ident == "test"))
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_test(&item.attrs) {
            return;
        }
        if item.content.is_some() {
            self.inline.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.inline.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut found = Vec::new();
        use_paths(&item.tree, &mut Vec::new(), &mut found);
        for segments in found {
            self.push(segments);
        }
    }

    /// `pub(crate)`, `pub(super)`: who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// The file module a path written in `at` (a module path, inline modules included) names, if it
/// names one of this crate's: the longest known prefix of its absolute form.
fn resolve(
    known: &BTreeMap<ModulePath, PathBuf>,
    at: &ModulePath,
    segments: &[String],
) -> Option<ModulePath> {
    let mut absolute: ModulePath = match segments.first().map(String::as_str) {
        Some("crate") => segments[1..].to_vec(),
        Some("self") => [at.clone(), segments[1..].to_vec()].concat(),
        Some("super") => {
            let mut base = at.clone();
            let mut rest = segments;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            [base, rest.to_vec()].concat()
        }
        // A child module of the one it is written in.
        Some(first) if known.contains_key(&[at.clone(), vec![first.to_owned()]].concat()) => {
            [at.clone(), segments.to_vec()].concat()
        }
        _ => return None,
    };
    while !known.contains_key(&absolute) {
        absolute.pop()?;
    }
    Some(absolute)
}

/// The file module that owns `at` (inline modules belong to their file).
fn file_of(known: &BTreeMap<ModulePath, PathBuf>, at: &ModulePath) -> ModulePath {
    let mut owner = at.clone();
    while !known.contains_key(&owner) {
        owner.pop();
    }
    owner
}

/// The crate's modules that take part in a cycle, as strongly connected components.
fn cycles(src: &Path) -> Vec<BTreeSet<String>> {
    let known = modules(src);
    let mut edges: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (module, file) in &known {
        let parsed = syn::parse_file(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        let mut paths = Paths { inline: module.clone(), named: Vec::new() };
        paths.visit_file(&parsed);
        for (at, segments) in paths.named {
            let from = file_of(&known, &at);
            if let Some(to) = resolve(&known, &at, &segments)
                && to != from
            {
                edges.entry(from).or_default().insert(to);
            }
        }
    }
    // Tarjan's strongly connected components.
    struct Tarjan<'e> {
        edges: &'e BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        index: BTreeMap<ModulePath, usize>,
        low: BTreeMap<ModulePath, usize>,
        stack: Vec<ModulePath>,
        on_stack: BTreeSet<ModulePath>,
        found: Vec<BTreeSet<String>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &ModulePath) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            self.on_stack.insert(v.clone());
            for w in self.edges.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(&w) {
                    self.visit(&w);
                    let low = self.low[v].min(self.low[&w]);
                    self.low.insert(v.clone(), low);
                } else if self.on_stack.contains(&w) {
                    let low = self.low[v].min(self.index[&w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = &w == v;
                    component.insert(if w.is_empty() { "(crate root)".to_owned() } else { w.join("::") });
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for module in known.keys() {
        if !tarjan.index.contains_key(module) {
            tarjan.visit(module);
        }
    }
    tarjan.found
}

/// Every crate's `src/` in the workspace.
fn crates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    for group in ["shared", "adapters", "functions", "tests", "tools"] {
        let dir = root.join(group);
        if dir.join("src").is_dir() {
            found.push(dir.join("src"));
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                found.push(src);
            }
        }
    }
    found
}

#[test]
fn no_crate_has_an_import_cycle() {
    let crates = crates();
    assert!(crates.len() >= 15, "every crate found: {crates:?}");
    let mut report = Vec::new();
    for src in crates {
        for cycle in cycles(&src) {
            report.push(format!(
                "{}: {}",
                src.parent().unwrap().display(),
                cycle.into_iter().collect::<Vec<_>>().join(" <-> ")
            ));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let dir = std::env::temp_dir().join(format!("layout-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "mod inner;\nuse crate::b::Thing;\npub fn f() {}\n").unwrap();
    std::fs::write(dir.join("a/inner.rs"), "/// Not `crate::b`.\npub struct Inner;\n").unwrap();
    std::fs::write(dir.join("b.rs"), "pub struct Thing;\nfn g() { crate::a::f() }\n").unwrap();
    let found = cycles(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, vec![BTreeSet::from(["a".to_owned(), "b".to_owned()])]);
}
