//! Bundles the knowledge base (`kb/*.md`) into the library, so the binaries need no files,
//! and rebuilds the library when a migration is added (`sqlx::migrate!` embeds them).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("kb");
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../migrations/postgres");
    println!("cargo:rerun-if-changed=../migrations/sqlite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("kb/ exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// The bundled articles: (file name, contents).\npub(crate) static BUNDLED: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name");
        writeln!(out, "    ({name:?}, include_str!({:?})),", path.display().to_string()).expect("write to String");
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("kb_bundle.rs");
    std::fs::write(target, out).expect("write kb_bundle.rs");
}
