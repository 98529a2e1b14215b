//! Link options of the binaries.
fn main() {
    // Pack the relative relocations of the position-independent binaries
    // (DT_RELR: glibc 2.36, binutils 2.38): the dynamic loader reads a few
    // KiB of bitmaps at start instead of ~450 KiB of RELA entries, which
    // stayed resident in every cordon process (sentry, gofers, stand-ins).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
