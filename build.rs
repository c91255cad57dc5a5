//! Embeds the directory of the prebuilt DuckDB library as an rpath, so the
//! binary and the tests run without `LD_LIBRARY_PATH` (see DEVELOPERS.md).
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        let lib = std::path::Path::new(&dir).join("libduckdb.so");
        if !lib.exists() {
            println!(
                "cargo:warning=DuckDB library not found at {} — run scripts/fetch-duckdb first",
                lib.display()
            );
        }
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
