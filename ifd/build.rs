//! Link the driver with `-z nodelete`: pcscd may dlclose() the library when
//! its last reader goes, and the reader threads must never outlive the code
//! they run. With NODELETE the image stays mapped for the life of pcscd.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
