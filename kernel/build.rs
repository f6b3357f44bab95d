//! Links the kernel's images (the binary and the examples) with `linker.ld`
//! (fixed physical and virtual addresses for PVH boot).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "x86_64-unknown-none" {
        // The binary and the examples (applications linked with the
        // kernel library, docs/RUNTIME.md) are images of the same layout.
        for kind in ["bins", "examples"] {
            println!("cargo:rustc-link-arg-{kind}=-T{dir}/linker.ld");
            println!("cargo:rustc-link-arg-{kind}=--no-pie");
            println!("cargo:rustc-link-arg-{kind}=-zmax-page-size=4096");
        }
    }
    println!("cargo:rerun-if-changed=linker.ld");
}
