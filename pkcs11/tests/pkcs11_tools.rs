//! The module in third-party clients, through the real pcscd, with a card
//! personalized and activated by cardsmith (the holder's own PINs):
//! OpenSC's pkcs11-tool lists, reads and signs with both keys (the
//! signature key with its context-specific PIN), each signature verified
//! by `openssl dgst -verify` against the certificate read from the card;
//! gnutls' p11tool lists the token and its objects by PKCS#11 URI; OpenSSL
//! signs through Debian's PKCS#11 engine; ssh logs into a local sshd with
//! the authentication key. Each client loads the module by itself, with
//! the profile given in CARDSMITH_PKCS11_PROFILES. The same test code runs
//! on a card of the second card OS (the domestic card, issue 17), with
//! both profiles given and the module picking the card's by its ATR.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run, run_pty, Issued, Os, ID_PIN, SIG_PIN};

struct Tools {
    card: Issued,
    module: PathBuf,
    profiles: PathBuf,
}

impl Tools {
    fn pkcs11_tool(&self, args: &[&str]) -> (bool, String) {
        run(Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(args)
            .env(cardsmith_pkcs11::profiles::ENV, &self.profiles))
    }

    /// pkcs11-tool at a terminal, typing each PIN at its prompt.
    fn pkcs11_tool_typed(&self, args: &[&str], answers: &[(&str, &str)]) -> (bool, String) {
        let mut all: Vec<&std::ffi::OsStr> = vec!["--module".as_ref(), self.module.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        run_pty(
            "pkcs11-tool",
            &all,
            &[(cardsmith_pkcs11::profiles::ENV, self.profiles.as_os_str())],
            answers,
        )
    }

    /// `openssl` with the module's profile in its environment.
    fn openssl(&self, args: &[&str]) -> (bool, String) {
        run(Command::new("openssl")
            .args(args)
            .env(cardsmith_pkcs11::profiles::ENV, &self.profiles)
            .env("PKCS11_MODULE_PATH", &self.module))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.card.path(name)
    }

    fn s(p: &Path) -> &str {
        p.to_str().expect("utf-8 path")
    }

    /// The certificate of key `id` read from the card with pkcs11-tool,
    /// and its public key as PEM.
    fn public_key(&self, id: &str) -> PathBuf {
        let der = self.path(&format!("cert-{id}.der"));
        let (ok, t) = self.pkcs11_tool(&[
            "--read-object",
            "--type",
            "cert",
            "--id",
            id,
            "-o",
            Self::s(&der),
        ]);
        assert!(ok, "{t}");
        let pem = self.path(&format!("pub-{id}.pem"));
        let (ok, t) = self.openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            Self::s(&der),
            "-pubkey",
            "-noout",
            "-out",
            Self::s(&pem),
        ]);
        assert!(ok, "{t}");
        pem
    }

    /// `openssl dgst -verify` of a DER signature over `data`.
    fn verifies(&self, hash: &str, pubkey: &Path, sig: &Path, data: &Path) -> (bool, String) {
        self.openssl(&[
            "dgst",
            hash,
            "-verify",
            Self::s(pubkey),
            "-signature",
            Self::s(sig),
            Self::s(data),
        ])
    }
}

const USER_PROMPT: (&str, &str) = ("Please enter User PIN", ID_PIN);
const CONTEXT_PROMPT: &str = "Please enter context specific PIN";

fn setup(seed: u64) -> Tools {
    let card = Issued::new(seed);
    let profiles = card.profiles_dir();
    Tools {
        module: support::module_path(),
        profiles,
        card,
    }
}

/// A card of `os`, activated for its holder, with the module pointed at
/// the profiles that describe it.
fn setup_os(os: Os, seed: u64) -> Tools {
    match os {
        Os::Reference => setup(seed),
        Os::Domestic => {
            let card = Issued::of(os, seed, true);
            Tools {
                module: support::module_path(),
                profiles: card.profiles_env(),
                card,
            }
        }
    }
}

#[test]
fn pkcs11_tool_lists_reads_and_signs_with_both_keys() {
    lists_reads_and_signs(&setup(61));
}

/// The domestic card (issue 17) through the same test: its profile found
/// among both by its ATR, its authentication key behind the ID PIN, its
/// DER signatures and bare points converted, its PIN state from VERIFY
/// without data, and no logout command (the module resets the card).
#[test]
fn pkcs11_tool_lists_reads_and_signs_with_both_keys_of_the_domestic_card() {
    lists_reads_and_signs(&setup_os(Os::Domestic, 71));
}

fn lists_reads_and_signs(t: &Tools) {
    let (auth_id, sig_id) = t.card.os.key_ids();
    let label = format!("cardsmith {}", t.card.serial);

    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(ok, "{out}");
    assert!(out.contains("Virtual PCD 00 00"), "{out}");
    assert!(out.contains(&label), "{out}");
    assert!(
        out.contains(&format!("serial num         : {}", t.card.serial)),
        "{out}"
    );
    assert!(out.contains("PIN initialized"), "{out}");

    // Without login: both certificates, both public keys, and the
    // signature key (guarded by its own PIN at every use); the
    // authentication key only after login with the ID PIN.
    let (ok, out) = t.pkcs11_tool(&["-O"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("Certificate Object").count(), 2, "{out}");
    assert_eq!(out.matches("Public Key Object").count(), 2, "{out}");
    assert_eq!(out.matches("Private Key Object").count(), 1, "{out}");
    assert!(out.contains("label:      signature"), "{out}");
    let (ok, out) = t.pkcs11_tool(&["-O", "--login", "--pin", ID_PIN]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("Private Key Object").count(), 2, "{out}");
    assert!(
        out.contains(&format!("ID:         {auth_id}"))
            && out.contains(&format!("ID:         {sig_id}")),
        "{out}"
    );
    assert!(
        out.contains("Access:     sensitive, always sensitive, never extractable, local"),
        "{out}"
    );
    assert!(out.contains("always authenticate"), "{out}");

    let data = t.path("message.txt");
    std::fs::write(&data, "a document the holder signs\n").expect("data");

    // The authentication key after --login (the ID PIN).
    let auth_pub = t.public_key(auth_id);
    let sig = t.path("auth.sig");
    let (ok, out) = t.pkcs11_tool(&[
        "--login",
        "--pin",
        ID_PIN,
        "--sign",
        "--id",
        auth_id,
        "-m",
        "ECDSA-SHA256",
        "--signature-format",
        "openssl",
        "-i",
        Tools::s(&data),
        "-o",
        Tools::s(&sig),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = t.verifies("-sha256", &auth_pub, &sig, &data);
    assert!(ok && out.contains("Verified OK"), "{out}");

    // The signature key with its context-specific PIN, typed as a holder
    // does. pkcs11-tool logs in first (the token requires login for
    // signing) and, the key having CKA_ALWAYS_AUTHENTICATE, asks for the
    // context-specific PIN after C_SignInit. (With --pin it would give
    // the same value to both logins, which suits only a card whose two
    // PINs are equal.) Each hash the module offers.
    let sig_pub = t.public_key(sig_id);
    for (mech, hash) in [
        ("ECDSA-SHA256", "-sha256"),
        ("ECDSA-SHA384", "-sha384"),
        ("ECDSA-SHA512", "-sha512"),
    ] {
        let sig = t.path(&format!("sign-{mech}.sig"));
        let (ok, out) = t.pkcs11_tool_typed(
            &[
                "--sign",
                "--id",
                sig_id,
                "-m",
                mech,
                "--signature-format",
                "openssl",
                "-i",
                Tools::s(&data),
                "-o",
                Tools::s(&sig),
            ],
            &[USER_PROMPT, (CONTEXT_PROMPT, SIG_PIN)],
        );
        assert!(ok, "{out}");
        assert!(
            !out.contains(SIG_PIN) && !out.contains(ID_PIN),
            "a PIN was echoed: {out}"
        );
        let (ok, out) = t.verifies(hash, &sig_pub, &sig, &data);
        assert!(ok && out.contains("Verified OK"), "{mech}: {out}");
        // Not with the other key's certificate.
        let (ok, out) = t.verifies(hash, &auth_pub, &sig, &data);
        assert!(!ok && out.contains("Verification failure"), "{mech}: {out}");
    }

    // CKM_ECDSA: the caller hashes.
    let digest = t.path("message.sha256");
    let (ok, out) = t.openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        Tools::s(&digest),
        Tools::s(&data),
    ]);
    assert!(ok, "{out}");
    let sig = t.path("raw.sig");
    let (ok, out) = t.pkcs11_tool_typed(
        &[
            "--sign",
            "--id",
            sig_id,
            "-m",
            "ECDSA",
            "--signature-format",
            "openssl",
            "-i",
            Tools::s(&digest),
            "-o",
            Tools::s(&sig),
        ],
        &[USER_PROMPT, (CONTEXT_PROMPT, SIG_PIN)],
    );
    assert!(ok, "{out}");
    let (ok, out) = t.verifies("-sha256", &sig_pub, &sig, &data);
    assert!(ok && out.contains("Verified OK"), "{out}");

    // A wrong signature PIN: CKR_PIN_INCORRECT, and one try used on the
    // card (the signature PIN's, not the ID PIN's).
    let sig_ref = t.card.side.profile.signature_pin.reference;
    let id_ref = t.card.side.profile.id_pin.reference;
    assert_eq!(t.card.tries(sig_ref), 3);
    let (ok, out) = t.pkcs11_tool_typed(
        &[
            "--sign",
            "--id",
            sig_id,
            "-m",
            "ECDSA-SHA256",
            "-i",
            Tools::s(&data),
            "-o",
            Tools::s(&t.path("wrong.sig")),
        ],
        &[USER_PROMPT, (CONTEXT_PROMPT, "11112222")],
    );
    assert!(!ok && out.contains("CKR_PIN_INCORRECT"), "{out}");
    assert_eq!(t.card.tries(sig_ref), 2);
    assert_eq!(t.card.tries(id_ref), 3);
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(ok, "{out}");

    // A wrong ID PIN: CKR_PIN_INCORRECT, and the token says so in its flags.
    let (ok, out) = t.pkcs11_tool(&["--login", "--pin", "999999", "-O"]);
    assert!(!ok && out.contains("CKR_PIN_INCORRECT"), "{out}");
    assert_eq!(t.card.tries(id_ref), 2);
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    match t.card.os {
        Os::Reference => assert!(ok && out.contains("user PIN count low"), "{out}"),
        // Without a status list the try limit is unknown: the count left
        // is not called low, and the PIN is neither locked nor on its last
        // try.
        Os::Domestic => assert!(
            ok && out.contains("PIN initialized")
                && !out.contains("locked")
                && !out.contains("final"),
            "{out}"
        ),
    }
    // The right one restores the tries.
    let (ok, out) = t.pkcs11_tool(&["--login", "--pin", ID_PIN, "-O"]);
    assert!(ok, "{out}");
    assert_eq!(t.card.tries(id_ref), 3);
}

#[test]
fn p11tool_lists_the_token_and_its_objects_by_uri() {
    p11tool_lists(&setup(62));
}

#[test]
fn p11tool_lists_the_domestic_token_and_its_objects_by_uri() {
    p11tool_lists(&setup_os(Os::Domestic, 72));
}

fn p11tool_lists(t: &Tools) {
    let (auth_id, sig_id) = t.card.os.key_ids();
    let run_p11tool = |args: &[&str], pin: Option<&str>| {
        let mut c = Command::new("p11tool");
        c.arg("--provider")
            .arg(&t.module)
            .args(args)
            .env(cardsmith_pkcs11::profiles::ENV, &t.profiles);
        if let Some(p) = pin {
            c.env("GNUTLS_PIN", p);
        }
        run(&mut c)
    };
    let token = format!("pkcs11:token=cardsmith%20{}", t.card.serial);
    let (ok, out) = run_p11tool(&["--list-tokens"], None);
    assert!(ok, "{out}");
    assert!(out.contains(&token[7..]), "{out}");
    assert!(out.contains("manufacturer=cardsmith"), "{out}");
    assert!(out.contains(&format!("serial={}", t.card.serial)), "{out}");

    // Without login, the certificates; after login (the ID PIN), every
    // object, each by its URI.
    let (ok, out) = run_p11tool(&["--list-all-certs", &token], None);
    assert!(ok, "{out}");
    assert_eq!(out.matches("type=cert").count(), 2, "{out}");
    let (ok, out) = run_p11tool(&["--login", "--list-all", &token], Some(ID_PIN));
    assert!(ok, "{out}");
    for object in [
        format!("id=%{auth_id};object=authentication;type=cert"),
        format!("id=%{sig_id};object=signature;type=cert"),
        format!("id=%{auth_id};object=authentication;type=public"),
        format!("id=%{sig_id};object=signature;type=public"),
        format!("id=%{auth_id};object=authentication;type=private"),
        format!("id=%{sig_id};object=signature;type=private"),
    ] {
        assert!(out.contains(&object), "{object}:\n{out}");
    }
    assert!(out.contains("model=cardsmith%20card"), "{out}");
    // The certificate by its URI.
    let uri = format!("{token};id=%{auth_id};object=authentication;type=cert");
    let (ok, out) = run_p11tool(&["--export", &uri], None);
    assert!(ok && out.contains("-----BEGIN CERTIFICATE-----"), "{out}");
}

#[test]
fn openssl_signs_through_the_pkcs11_engine() {
    openssl_engine_signs(&setup(63));
}

#[test]
fn openssl_signs_through_the_pkcs11_engine_with_the_domestic_card() {
    openssl_engine_signs(&setup_os(Os::Domestic, 73));
}

fn openssl_engine_signs(t: &Tools) {
    let (auth_id, sig_id) = t.card.os.key_ids();
    let data = t.path("message.txt");
    std::fs::write(&data, "signed through OpenSSL's PKCS#11 engine\n").expect("data");
    let digest = t.path("message.sha256");
    let (ok, out) = t.openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        Tools::s(&digest),
        Tools::s(&data),
    ]);
    assert!(ok, "{out}");
    let token = format!("pkcs11:token=cardsmith%20{}", t.card.serial);
    // The authentication key with the ID PIN in the key's URI; the
    // signature key asks for its PIN at every use, and the engine prompts
    // for it on the terminal.
    for (id, object, pin) in [
        (auth_id, "authentication", ID_PIN),
        (sig_id, "signature", SIG_PIN),
    ] {
        let public = t.public_key(id);
        let sig = t.path(&format!("engine-{object}.sig"));
        let key = match object {
            "authentication" => format!("{token};object={object};type=private;pin-value={pin}"),
            _ => format!("{token};object={object};type=private"),
        };
        let args = [
            "pkeyutl",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-inkey",
            &key,
            "-sign",
            "-in",
            Tools::s(&digest),
            "-out",
            Tools::s(&sig),
        ];
        let (ok, out) = match object {
            "authentication" => t.openssl(&args),
            _ => run_pty(
                "openssl",
                &args.map(std::ffi::OsStr::new),
                &[
                    (cardsmith_pkcs11::profiles::ENV, t.profiles.as_os_str()),
                    ("PKCS11_MODULE_PATH", t.module.as_os_str()),
                ],
                &[("PIN for signature", pin)],
            ),
        };
        assert!(ok, "{object}: {out}");
        if object == "signature" {
            assert!(!out.contains(pin), "a PIN was echoed: {out}");
        }
        let (ok, out) = t.verifies("-sha256", &public, &sig, &data);
        assert!(ok && out.contains("Verified OK"), "{object}: {out}");
    }
}

/// A throwaway sshd on a free local port, in the foreground, logging to
/// its standard error; stopped (by its own process id) when dropped.
struct Sshd {
    child: std::process::Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, authorized_keys: &str) -> Sshd {
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
        let host = dir.join("ssh_host_ed25519_key");
        let (ok, out) = run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host));
        assert!(ok, "{out}");
        let keys = dir.join("authorized_keys");
        std::fs::write(&keys, authorized_keys).expect("authorized_keys");
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
                 AuthorizedKeysFile {}\nPermitRootLogin yes\nUsePAM no\nStrictModes no\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAuthenticationMethods publickey\n\
                 LogLevel VERBOSE\n",
                host.display(),
                keys.display()
            ),
        )
        .expect("sshd_config");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sshd;
            }
            if let Ok(Some(st)) = sshd.child.try_wait() {
                panic!("sshd ended: {st}: {}", sshd.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("sshd does not listen on port {port}: {}", sshd.log());
    }

    /// Stop sshd; what it logged.
    fn log(&mut self) -> String {
        use std::io::Read as _;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_logs_in_with_the_cards_authentication_key() {
    ssh_logs_in(&setup(64));
}

/// The domestic card's authentication key needs the ID PIN: ssh logs in
/// with it and the module gives it to the card with the signature.
#[test]
fn ssh_logs_in_with_the_domestic_cards_authentication_key() {
    ssh_logs_in(&setup_os(Os::Domestic, 74));
}

fn ssh_logs_in(t: &Tools) {
    // The authorized key: the authentication certificate's public key,
    // as ssh-keygen converts it.
    let pem = t.public_key(t.card.os.key_ids().0);
    let (ok, converted) = run(Command::new("ssh-keygen")
        .args(["-i", "-m", "PKCS8", "-f"])
        .arg(&pem));
    assert!(ok, "{converted}");
    let auth_key = converted
        .lines()
        .find(|l| l.starts_with("ecdsa-sha2-nistp256 "))
        .expect("an ECDSA key")
        .to_string();
    let blob = auth_key.split(' ').nth(1).expect("key blob").to_string();
    // ssh-keygen -D reads both keys from the card through the module.
    let (ok, out) = run(Command::new("ssh-keygen")
        .arg("-D")
        .arg(&t.module)
        .env(cardsmith_pkcs11::profiles::ENV, &t.profiles));
    assert!(ok, "{out}");
    assert_eq!(out.matches("ecdsa-sha2-nistp256 ").count(), 2, "{out}");
    assert!(out.contains(&blob), "{out}");

    let mut sshd = Sshd::start(t.card.dir.path(), &format!("{auth_key}\n"));
    // The ID PIN comes from an askpass program: no terminal.
    let askpass = t.path("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\necho {ID_PIN}\n")).expect("askpass");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    // (Not IdentitiesOnly=yes: OpenSSH then drops PKCS#11 keys that are
    // not also given as identity files.)
    let (ok, out) = run(Command::new("ssh")
        .args(["-F", "/dev/null", "-I"])
        .arg(&t.module)
        .args(["-p", &sshd.port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentityAgent=none",
            "-o",
            "PreferredAuthentications=publickey",
            "root@127.0.0.1",
            "echo logged in with the national card",
        ])
        .env(cardsmith_pkcs11::profiles::ENV, &t.profiles)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0"));
    let log = sshd.log();
    assert!(
        ok && out.contains("logged in with the national card"),
        "{out}\nsshd:\n{log}"
    );
    assert!(log.contains("Accepted publickey for root"), "{log}");
    assert!(
        !out.contains(ID_PIN) && !log.contains(ID_PIN),
        "{out}\n{log}"
    );
}

/// Another programme's card: its PKI application, files, key references,
/// labels and PIN references differ from the reference card's, and only
/// its profile says where they are.
fn other_profile() -> (String, String) {
    use cardsmith_host::perso::profile::{REFERENCE_FILESYSTEM, REFERENCE_PROFILE};
    let mut toml = REFERENCE_PROFILE.to_string();
    for (from, to) in [
        (
            "aid = \"F043534D504B01\"\nfid = \"6000\"",
            "aid = \"F043534D504B07\"\nfid = \"7000\"",
        ),
        ("certificate_fid = \"6101\"", "certificate_fid = \"7101\""),
        ("certificate_fid = \"6102\"", "certificate_fid = \"7102\""),
        (
            "name = \"authentication\"\nreference = 1",
            "name = \"holder authentication\"\nreference = 3",
        ),
        (
            "name = \"signature\"\nreference = 2",
            "name = \"qualified signature\"\nreference = 4",
        ),
        ("id_pin = { reference = 0x81", "id_pin = { reference = 0x8X"),
        (
            "signature_pin = { reference = 0x82",
            "signature_pin = { reference = 0x81",
        ),
        ("id_pin = { reference = 0x8X", "id_pin = { reference = 0x82"),
    ] {
        assert!(toml.contains(from), "{from}");
        toml = toml.replace(from, to);
    }
    let mut script = REFERENCE_FILESYSTEM.to_string();
    for (from, to) in [
        ("F0 43 53 4D 50 4B 01", "F0 43 53 4D 50 4B 07"),
        ("tlv(83, 6000)", "tlv(83, 7000)"),
        ("02 6000", "02 7000"),
        ("tlv(83, 6101)", "tlv(83, 7101)"),
        ("tlv(83, 6102)", "tlv(83, 7102)"),
    ] {
        assert!(script.contains(from), "{from}");
        script = script.replace(from, to);
    }
    (toml, script)
}

#[test]
fn a_card_of_another_profile_works_by_its_profile() {
    let (toml, script) = other_profile();
    let card = Issued::with_profile(65, Some(("other-card", &toml, &script)));
    let reference_only = card.profiles_dir().join("reference-card");
    let mut t = Tools {
        module: support::module_path(),
        profiles: reference_only,
        card,
    };
    // With only the reference profile, the card is no token.
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(ok, "{out}");
    assert!(
        !out.contains(&format!("cardsmith {}", t.card.serial)),
        "{out}"
    );
    // With both profiles, it is one, read by its own.
    t.profiles = t.card.profiles_dir();
    let (ok, out) = t.pkcs11_tool(&["-O", "--login", "--pin", ID_PIN]);
    assert!(ok, "{out}");
    assert!(out.contains("label:      holder authentication"), "{out}");
    assert!(out.contains("label:      qualified signature"), "{out}");
    assert!(
        out.contains("ID:         03") && out.contains("ID:         04"),
        "{out}"
    );
    assert_eq!(out.matches("Private Key Object").count(), 2, "{out}");

    let data = t.path("message.txt");
    std::fs::write(&data, "signed with another programme's card\n").expect("data");
    let auth_pub = t.public_key("03");
    let sig = t.path("auth.sig");
    let (ok, out) = t.pkcs11_tool(&[
        "--login",
        "--pin",
        ID_PIN,
        "--sign",
        "--id",
        "03",
        "-m",
        "ECDSA-SHA256",
        "--signature-format",
        "openssl",
        "-i",
        Tools::s(&data),
        "-o",
        Tools::s(&sig),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = t.verifies("-sha256", &auth_pub, &sig, &data);
    assert!(ok && out.contains("Verified OK"), "{out}");
    // The signature key's PIN is the profile's signature PIN (reference
    // 81 on this card).
    let sig_pub = t.public_key("04");
    let sig = t.path("sign.sig");
    let (ok, out) = t.pkcs11_tool_typed(
        &[
            "--sign",
            "--id",
            "04",
            "-m",
            "ECDSA-SHA256",
            "--signature-format",
            "openssl",
            "-i",
            Tools::s(&data),
            "-o",
            Tools::s(&sig),
        ],
        &[USER_PROMPT, (CONTEXT_PROMPT, SIG_PIN)],
    );
    assert!(ok, "{out}");
    let (ok, out) = t.verifies("-sha256", &sig_pub, &sig, &data);
    assert!(ok && out.contains("Verified OK"), "{out}");
}

#[test]
fn a_profile_that_does_not_load_is_named_and_the_module_does_not_initialize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("broken");
    std::fs::create_dir_all(&bad).expect("dir");
    std::fs::write(
        bad.join("profile.toml"),
        cardsmith_host::perso::profile::REFERENCE_PROFILE
            .replace("aid = \"F043534D504B01\"", "aid = \"F04353\""),
    )
    .expect("profile");
    std::fs::write(
        bad.join("filesystem.apdu"),
        cardsmith_host::perso::profile::REFERENCE_FILESYSTEM,
    )
    .expect("script");
    let module = support::module_path();
    let (ok, out) = run(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .arg("-L")
        .env(cardsmith_pkcs11::profiles::ENV, &bad));
    assert!(!ok, "{out}");
    assert!(out.contains("CKR_GENERAL_ERROR"), "{out}");
    assert!(
        out.contains(&format!(
            "cardsmith-pkcs11: card profile {}: pki.aid: an AID has 5 to 16 bytes, found 3",
            bad.join("profile.toml").display()
        )),
        "{out}"
    );
    // An entry that holds no profile at all.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let (ok, out) = run(Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .arg("-L")
        .env(cardsmith_pkcs11::profiles::ENV, &empty));
    assert!(!ok && out.contains("no profile.toml there"), "{out}");
}

#[test]
fn a_card_not_yet_handed_to_its_holder_has_no_user_pin_yet() {
    let card = Issued::personalized(66);
    not_yet_handed(&Tools {
        module: support::module_path(),
        profiles: card.profiles_dir(),
        card,
    });
}

/// A domestic card still holds its factory PINs, whose values are no
/// secret: the module does not try them (they would match).
#[test]
fn a_domestic_card_not_yet_handed_to_its_holder_has_no_user_pin_yet() {
    let card = Issued::of(Os::Domestic, 76, false);
    let t = Tools {
        module: support::module_path(),
        profiles: card.profiles_env(),
        card,
    };
    not_yet_handed(&t);
    let (ok, out) = t.pkcs11_tool(&["--login", "--pin", "123456", "-O"]);
    assert!(!ok && out.contains("CKR_USER_PIN_NOT_INITIALIZED"), "{out}");
    assert_eq!(t.card.tries(t.card.side.profile.id_pin.reference), 3);
}

fn not_yet_handed(t: &Tools) {
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("cardsmith {}", t.card.serial)),
        "{out}"
    );
    assert!(!out.contains("PIN initialized"), "{out}");
    // Certificates and public keys are there; no PIN works until the
    // holder has chosen theirs at a counter, and trying costs no try.
    let (ok, out) = t.pkcs11_tool(&["-O"]);
    assert!(
        ok && out.matches("Certificate Object").count() == 2,
        "{out}"
    );
    let (ok, out) = t.pkcs11_tool(&["--login", "--pin", ID_PIN, "-O"]);
    assert!(!ok && out.contains("CKR_USER_PIN_NOT_INITIALIZED"), "{out}");
    let id_ref = t.card.side.profile.id_pin.reference;
    assert_eq!(t.card.tries(id_ref), 3);
}

/// A card that no profile given to the module names by its ATR (a
/// domestic card, the module told of the reference profile only) is no
/// token, and gets not a single command: the module matches the ATR
/// first, as the line and the counter do. Given both profiles, the module
/// reads it by the domestic one.
#[test]
fn a_card_whose_atr_no_profile_names_gets_no_command() {
    let card = Issued::of(Os::Domestic, 77, true);
    let mut t = Tools {
        module: support::module_path(),
        profiles: card.profiles_dir().join("reference-card"),
        card,
    };
    t.card.pull();
    t.card.insert();
    assert_eq!(t.card.apdus(), 0);
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(ok, "{out}");
    assert!(
        !out.contains(&format!("cardsmith {}", t.card.serial)),
        "{out}"
    );
    assert_eq!(t.card.apdus(), 0, "a command reached the card");
    t.profiles = t.card.profiles_env();
    let (ok, out) = t.pkcs11_tool(&["-L"]);
    assert!(
        ok && out.contains(&format!("cardsmith {}", t.card.serial)),
        "{out}"
    );
    assert!(t.card.apdus() > 0);
}
