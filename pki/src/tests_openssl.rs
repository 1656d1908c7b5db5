//! Interoperability with the OpenSSL 3 command line tool. These tests fail
//! (they are not skipped) when `openssl` is missing.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use super::ca::{
    certificate_pem, CertificateAuthority, LocalCa, CA_CERT_FILE, CA_KEY_FILE, DS_CERT_FILE,
    DS_KEY_FILE,
};
use super::check::check_certificate;
use super::profile::CertProfile;
use super::sod::{build_sod, lds_security_object, verify_sod, DocumentSigner, SOD_TAG};
use super::test_support::{card_key, card_point, make_csr, subject, terms};
use super::x509::pem_encode;
use der::asn1::AnyRef;
use der::{Decode, Encode, Tag, TagNumber};

fn openssl_bin() -> String {
    std::env::var("OPENSSL_BIN").unwrap_or_else(|_| "openssl".to_string())
}

/// Runs openssl in `dir`; panics with its output unless it succeeds.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let bin = openssl_bin();
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{bin}` ({e}): the OpenSSL 3.x command line tool is required for these tests (apt-get install openssl, or set OPENSSL_BIN)")
        });
    assert!(
        out.status.success(),
        "`openssl {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Env {
    tmp: tempfile::TempDir,
    ca: LocalCa,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_or_create(&tmp.path().join("ca")).unwrap();
        Env { tmp, ca }
    }
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
    fn ca_pem(&self) -> String {
        self.ca.dir().join(CA_CERT_FILE).display().to_string()
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> String {
        fs::write(self.dir().join(name), data).unwrap();
        name.to_string()
    }
}

#[test]
fn openssl_is_version_3() {
    let tmp = tempfile::tempdir().unwrap();
    let out = openssl(tmp.path(), &["version"]);
    assert!(text(&out).starts_with("OpenSSL 3."), "{}", text(&out));
}

#[test]
fn openssl_verifies_csr_and_parses_it() {
    let env = Env::new();
    let key = card_key();
    let csr = make_csr(&key, &subject());
    env.write("csr.pem", pem_encode("CERTIFICATE REQUEST", &csr));
    env.write("csr.der", &csr);
    let out = openssl(env.dir(), &["req", "-verify", "-in", "csr.pem", "-noout"]);
    assert!(text(&out).contains("verify OK"), "{}", text(&out));
    let out = openssl(
        env.dir(),
        &[
            "req", "-in", "csr.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    assert!(
        text(&out).contains("CN=Reza Ahmadi,serialNumber=PNOIR-0012345679,GN=Reza,SN=Ahmadi,C=IR"),
        "{}",
        text(&out)
    );
    openssl(
        env.dir(),
        &["asn1parse", "-inform", "DER", "-in", "csr.der"],
    );
    // A tampered request is rejected by OpenSSL too.
    let mut bad = csr.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    env.write("bad.pem", pem_encode("CERTIFICATE REQUEST", &bad));
    let out = Command::new(openssl_bin())
        .args(["req", "-verify", "-in", "bad.pem", "-noout"])
        .current_dir(env.dir())
        .output()
        .unwrap();
    assert!(!out.status.success() || !text(&out).contains("verify OK"));
}

/// `openssl x509 -text` shows the CRL distribution point, the policy and
/// its CPS on a certificate the CA really issued; its notAfter is the one
/// asked for; and OpenSSL's policy processing accepts the policy (and
/// refuses another one).
#[test]
fn openssl_shows_crl_policy_and_end() {
    use super::test_support::{terms_ending, TEST_CPS, TEST_CRL, TEST_POLICY};
    let env = Env::new();
    let csr = make_csr(&card_key(), &subject());
    let ca = env.ca_pem();
    // 2033-12-03 00:00:00 UTC.
    let end = 2_017_180_800;
    for (profile, file) in [
        (CertProfile::Authentication, "auth.pem"),
        (CertProfile::Signature, "sig.pem"),
    ] {
        let cert = env.ca.issue(&csr, profile, &terms_ending(end)).unwrap();
        env.write(file, certificate_pem(&cert));
        let t = text(&openssl(
            env.dir(),
            &["x509", "-in", file, "-noout", "-text"],
        ));
        let ext = |name: &str| {
            let i = t.find(name).unwrap_or_else(|| panic!("no {name} in:\n{t}"));
            t[i..].lines().take(3).collect::<Vec<_>>().join("\n")
        };
        let crl = ext("X509v3 CRL Distribution Points");
        assert!(crl.contains(&format!("URI:{TEST_CRL}")), "{crl}");
        let pol = ext("X509v3 Certificate Policies");
        assert!(
            pol.contains(&format!("Policy: {TEST_POLICY}"))
                && pol.contains(&format!("CPS: {TEST_CPS}")),
            "{pol}"
        );
        assert!(t.contains("Not After : Dec  3 00:00:00 2033 GMT"), "{t}");
        let out = openssl(
            env.dir(),
            &[
                "verify",
                "-x509_strict",
                "-explicit_policy",
                "-policy",
                TEST_POLICY,
                "-CAfile",
                &ca,
                file,
            ],
        );
        assert!(
            text(&out).contains(&format!("{file}: OK")),
            "{}",
            text(&out)
        );
        let out = Command::new(openssl_bin())
            .args([
                "verify",
                "-explicit_policy",
                "-policy",
                "2.999.364.1.2",
                "-CAfile",
                &ca,
                file,
            ])
            .current_dir(env.dir())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "another policy was accepted: {}",
            text(&out)
        );
    }
}

#[test]
fn openssl_verifies_issued_certificates() {
    let env = Env::new();
    let key = card_key();
    let csr = make_csr(&key, &subject());
    let ca = env.ca_pem();
    for (profile, file) in [
        (CertProfile::Authentication, "auth.pem"),
        (CertProfile::Signature, "sig.pem"),
    ] {
        let cert = env.ca.issue(&csr, profile, &terms()).unwrap();
        env.write(file, certificate_pem(&cert));
        let out = openssl(env.dir(), &["verify", "-x509_strict", "-CAfile", &ca, file]);
        assert!(
            text(&out).contains(&format!("{file}: OK")),
            "{}",
            text(&out)
        );
    }
    // Purpose checks: the authentication certificate is a TLS client cert.
    openssl(
        env.dir(),
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            &ca,
            "auth.pem",
        ],
    );
    let out = Command::new(openssl_bin())
        .args(["verify", "-purpose", "sslclient", "-CAfile", &ca, "sig.pem"])
        .current_dir(env.dir())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "signature cert must not pass as TLS client: {}",
        text(&out)
    );
    // Key usage as OpenSSL reads it.
    let out = openssl(
        env.dir(),
        &[
            "x509",
            "-in",
            "sig.pem",
            "-noout",
            "-ext",
            "keyUsage,basicConstraints",
        ],
    );
    let t = text(&out);
    assert!(
        t.contains("critical") && t.contains("Non Repudiation") && !t.contains("Digital Signature"),
        "{t}"
    );
    // The document signer certificate.
    let ds = env.ca.dir().join(DS_CERT_FILE).display().to_string();
    let out = openssl(env.dir(), &["verify", "-x509_strict", "-CAfile", &ca, &ds]);
    assert!(text(&out).contains(": OK"), "{}", text(&out));
    // The CA certificate is a valid self-signed root.
    let out = openssl(env.dir(), &["verify", "-x509_strict", "-CAfile", &ca, &ca]);
    assert!(text(&out).contains(": OK"), "{}", text(&out));
}

#[test]
fn openssl_reads_pkcs8_keys() {
    let env = Env::new();
    for f in [CA_KEY_FILE, DS_KEY_FILE] {
        let p = env.ca.dir().join(f).display().to_string();
        let out = openssl(
            env.dir(),
            &["pkey", "-inform", "DER", "-in", &p, "-noout", "-text_pub"],
        );
        assert!(
            text(&out).contains("prime256v1") || text(&out).contains("P-256"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn openssl_verifies_sod_and_extracts_lds_object() {
    let env = Env::new();
    let dgs: Vec<(u8, &[u8])> = vec![(1, b"\x61\x03abc"), (2, b"\x75\x02xy"), (15, b"\x6f\x01z")];
    let sod = build_sod(&dgs, env.ca.document_signer()).unwrap();
    assert_eq!(sod[0], SOD_TAG);
    let inner = AnyRef::from_der(&sod).unwrap().value().to_vec();
    env.write("sod.der", &sod);
    env.write("sod_without_77_wrapper.der", &inner);
    let ca = env.ca_pem();
    openssl(
        env.dir(),
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "sod_without_77_wrapper.der",
            "-CAfile",
            &ca,
            "-binary",
            "-purpose",
            "any",
            "-out",
            "econtent.der",
        ],
    );
    let econtent = fs::read(env.dir().join("econtent.der")).unwrap();
    assert_eq!(econtent, lds_security_object(&dgs).unwrap());
    // asn1parse accepts both the wrapped EF.SOD and the bare ContentInfo.
    let out = openssl(
        env.dir(),
        &["asn1parse", "-inform", "DER", "-in", "sod.der"],
    );
    assert!(text(&out).contains("pkcs7-signedData"), "{}", text(&out));
    assert!(text(&out).contains("2.23.136.1.1.1"), "{}", text(&out));
    openssl(
        env.dir(),
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            "sod_without_77_wrapper.der",
        ],
    );
    // A tampered SOD fails OpenSSL's verification as well.
    let mut bad = inner.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    env.write("bad.der", &bad);
    let out = Command::new(openssl_bin())
        .args([
            "cms", "-verify", "-inform", "DER", "-in", "bad.der", "-CAfile", &ca, "-binary",
            "-purpose", "any", "-out", "x.der",
        ])
        .current_dir(env.dir())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "tampered SOD verified by openssl: {}",
        text(&out)
    );
}

#[test]
fn sod_signed_by_openssl_verifies_here() {
    let env = Env::new();
    let dgs: Vec<(u8, &[u8])> = vec![(1, b"one"), (2, b"two")];
    let lds = lds_security_object(&dgs).unwrap();
    env.write("lds.der", &lds);
    let ds_cert = env.ca.dir().join(DS_CERT_FILE).display().to_string();
    let ds_key = env.ca.dir().join(DS_KEY_FILE).display().to_string();
    openssl(
        env.dir(),
        &[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            "lds.der",
            "-signer",
            &ds_cert,
            "-inkey",
            &ds_key,
            "-keyform",
            "DER",
            "-md",
            "sha256",
            "-econtent_type",
            "2.23.136.1.1.1",
            "-outform",
            "DER",
            "-out",
            "cms.der",
        ],
    );
    let cms = fs::read(env.dir().join("cms.der")).unwrap();
    let wrapper = Tag::Application {
        constructed: true,
        number: TagNumber::N23,
    };
    let sod = AnyRef::new(wrapper, &cms).unwrap().to_der().unwrap();
    assert_eq!(sod[0], SOD_TAG);
    let out = verify_sod(&sod, &env.ca.chain(), SystemTime::now()).unwrap();
    assert_eq!(out.hashes.len(), 2);
    assert_eq!(
        out.signer_certificate,
        env.ca.document_signer().certificate()
    );
}

#[test]
fn certificate_issued_by_openssl_passes_our_checks() {
    let env = Env::new();
    let key = card_key();
    let csr = make_csr(&key, &subject());
    env.write("csr.pem", pem_encode("CERTIFICATE REQUEST", &csr));
    env.write(
        "ext.cnf",
        "keyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\nbasicConstraints = critical, CA:FALSE\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    );
    let ca_key = env.ca.dir().join(CA_KEY_FILE).display().to_string();
    let ca = env.ca_pem();
    openssl(
        env.dir(),
        &[
            "x509",
            "-req",
            "-in",
            "csr.pem",
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAkeyform",
            "DER",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-set_serial",
            "0x1234",
            "-outform",
            "DER",
            "-out",
            "os.der",
        ],
    );
    let cert = fs::read(env.dir().join("os.der")).unwrap();
    check_certificate(
        &cert,
        card_point(&key),
        CertProfile::Authentication,
        &env.ca.chain(),
        SystemTime::now(),
    )
    .unwrap();
    let e = check_certificate(
        &cert,
        card_point(&key),
        CertProfile::Signature,
        &env.ca.chain(),
        SystemTime::now(),
    );
    assert!(e.is_err());
}
