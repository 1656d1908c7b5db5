//! Several line stations on one PostgreSQL register, as separate
//! processes (`cardsmith line run`/`resume` with in-process simulated
//! readers and the card timing model), while the test kills one with
//! SIGKILL, cuts another's database connections (once in the middle of its
//! good commit), restarts PostgreSQL, and pauses a station past its lease.
//! Everything is checked in the register with SQL afterwards: every record
//! on exactly one good card, and no card made good on a claim that was
//! taken away.
//!
//! The stations log in with a `line` role made by `cardsmith journal
//! grant`, their password in a PGPASSFILE (never on the command line), and
//! share one data directory (issuer key, SCP03 keys, CA), created before
//! the first station starts.
//!
//! The readers are in-process: a card lives in its station's process, so a
//! card of a station killed with SIGKILL is gone with it. What the register
//! says about such a card is checked (interrupted: a station it comes back
//! to recovers or terminates it, never takes it as blank); that such cards
//! are recovered or terminated when they come back is shown on physical
//! (pcscd) cards by `tests/line_pcsc.rs`.

mod line_support;
mod pg_support;

use pg_support::Cluster;
use postgres::{Client, NoTls};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A register with a line login, a data directory with the keys, a batch.
struct Env {
    cluster: Cluster,
    dir: tempfile::TempDir,
    /// Superuser URL of the register database (password in it; tests only).
    admin: String,
    /// The stations' URL: the `station` login, no password.
    url: String,
    passfile: PathBuf,
    data: PathBuf,
    batch: PathBuf,
    records: usize,
}

impl Env {
    fn setup(records: usize, seed: u64) -> Env {
        let cluster = Cluster::start();
        let admin = cluster.register("register");
        let dir = tempfile::Builder::new()
            .prefix("cardsmith-stations")
            .tempdir()
            .expect("tempdir");
        let admin_pw = cluster
            .admin
            .strip_prefix("postgresql://postgres:")
            .and_then(|r| r.split_once('@'))
            .map(|(pw, _)| pw.to_string())
            .expect("superuser password in the admin URL");
        let station_pw = format!(
            "st-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1)
        );
        let pwfile = dir.path().join("station.pw");
        std::fs::write(&pwfile, format!("{station_pw}\n")).expect("password file");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let passfile = pg_support::passfile(
            dir.path(),
            cluster.port,
            &[("postgres", &admin_pw), ("station", &station_pw)],
        );
        // The stations' login: the programme's line role, nothing more.
        let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
            .args(["journal", "grant", "station", "--role", "line"])
            .arg("--password-file")
            .arg(&pwfile)
            .arg("--journal")
            .arg(cluster.url_for("postgres", "register"))
            .env("PGPASSFILE", &passfile)
            .env_remove("PGPASSWORD")
            .env_remove("CARDSMITH_JOURNAL")
            .output()
            .expect("cardsmith journal grant");
        assert!(
            out.status.success(),
            "journal grant: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let data = dir.path().join("data");
        // The first use creates the issuer key, the SCP03 keys and the CA;
        // done here once so that the stations never race to create them.
        let _ = line_support::issuer(&data);
        let batch = dir.path().join("batch.jsonl");
        let recs = line_support::batch(&batch, records, seed);
        assert_eq!(recs.len(), records);
        let url = cluster.url_for("station", "register");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        Env {
            cluster,
            dir,
            admin,
            url,
            passfile,
            data,
            batch,
            records,
        }
    }

    /// A superuser connection to the register, or `None` while it is down.
    fn try_db(&self) -> Option<Client> {
        Client::connect(&self.admin, NoTls).ok()
    }

    /// A superuser connection, waiting through a restart.
    fn db(&self) -> Client {
        let started = Instant::now();
        loop {
            if let Some(c) = self.try_db() {
                return c;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the register did not come back"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One value from the register, waiting through a restart.
    fn one_i64(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> i64 {
        let started = Instant::now();
        loop {
            if let Some(mut c) = self.try_db() {
                if let Ok(r) = c.query_one(sql, params) {
                    return r.get(0);
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the register did not answer {sql}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn now_ms(&self) -> i64 {
        self.one_i64("SELECT cardsmith_now_ms()", &[])
    }

    fn good(&self) -> i64 {
        self.one_i64("SELECT COUNT(*) FROM records WHERE state = 'good'", &[])
    }

    /// `cardsmith line ARGS` as station `name`, logging to a file.
    fn station(&self, name: &str, args: &[&str], extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cardsmith"));
        c.arg("line")
            .args(args)
            .arg("--journal")
            .arg(&self.url)
            .args(["--station", name, "--plain", "--operator"])
            .arg(format!("op-{name}"))
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--report-dir")
            .arg(self.dir.path().join(format!("reports-{name}")))
            .args(extra)
            .env("PGPASSFILE", &self.passfile)
            .env("RUST_LOG", "warn")
            .env_remove("PGPASSWORD")
            .env_remove("CARDSMITH_JOURNAL")
            .env_remove("CARDSMITH_DATA_DIR")
            .env_remove("CARDSMITH_ISSUER_KEY")
            .env_remove("CARDSMITH_SCP03_KEYS");
        c
    }

    fn log_path(&self, label: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{label}.log"))
    }
}

/// The station processes of a test. Every one still running when the test
/// ends (or fails) is continued and killed, by its own pid.
#[derive(Default)]
struct Procs {
    kids: Vec<(String, Child, PathBuf)>,
}

impl Procs {
    fn spawn(&mut self, label: &str, mut cmd: Command, log: &Path) -> usize {
        let f = File::create(log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone().expect("log file")))
            .stderr(Stdio::from(f))
            .spawn()
            .expect("start a station");
        self.kids
            .push((label.to_string(), child, log.to_path_buf()));
        self.kids.len() - 1
    }

    fn signal(&self, i: usize, sig: libc::c_int) {
        let pid = self.kids[i].1.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of a child this test started and has
        // not reaped yet.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "signal {sig} to {}", self.kids[i].0);
    }

    /// SIGKILL and reap.
    fn kill(&mut self, i: usize) {
        let (_, child, _) = &mut self.kids[i];
        let _ = child.kill();
        let _ = child.wait();
    }

    fn running(&mut self, i: usize) -> bool {
        matches!(self.kids[i].1.try_wait(), Ok(None))
    }

    fn logs(&self) -> String {
        self.kids
            .iter()
            .map(|(label, _, p)| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                format!(
                    "--- station {label} (last 40 lines of {}):\n{tail}\n",
                    p.display()
                )
            })
            .collect()
    }

    /// Wait for the process to exit; its exit code.
    fn wait(&mut self, i: usize, limit: Duration) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(st) = self.kids[i].1.try_wait().expect("wait") {
                return st.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                panic!(
                    "station {} did not finish within {limit:?}\n{}",
                    self.kids[i].0,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.kids {
            if let Ok(None) = child.try_wait() {
                // SAFETY: as in `signal`; a stopped child must be continued
                // or at least killed: SIGKILL works on it either way.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGCONT);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Poll `f` until it gives a value, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, procs: &Procs, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if started.elapsed() > limit {
            panic!("{what}: not within {limit:?}\n{}", procs.logs());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A small xorshift: random chaos points that can be replayed from the
/// printed seed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("CARDSMITH_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64 | 1)
                    .unwrap_or(7)
            });
        eprintln!("chaos points from seed {seed} (replay with CARDSMITH_CHAOS_SEED={seed})");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

fn ids(c: &mut Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Vec<i64> {
    c.query(sql, params)
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Everything the issue asks of the register once all stations are done,
/// in SQL. Returns a one-line account.
fn check_register(env: &Env, expect_stations: &[&str]) -> String {
    let mut db = env.db();
    let n = env.records as i64;
    // Every record of the batch is good, and nothing is left to do.
    let states: BTreeMap<String, i64> = db
        .query("SELECT state, COUNT(*) FROM records GROUP BY state", &[])
        .expect("states")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([("good".to_string(), n)]),
        "every record good, none pending, in progress or held"
    );
    // Exactly one good attempt per record: none has two …
    let twice = db
        .query(
            "SELECT record_id, COUNT(*) FROM attempts WHERE outcome = 'good' GROUP BY 1 HAVING COUNT(*) > 1",
            &[],
        )
        .expect("duplicates");
    assert!(
        twice.is_empty(),
        "records on more than one good card: {:?}",
        twice
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>()
    );
    // … and each has one, on the card the record names.
    let mismatched = db
        .query(
            "SELECT r.record_id, r.card_serial, a.card_serial FROM records r
             LEFT JOIN attempts a ON a.record_id = r.record_id AND a.outcome = 'good'
             WHERE a.id IS NULL OR r.card_serial IS DISTINCT FROM a.card_serial",
            &[],
        )
        .expect("good attempts");
    assert!(
        mismatched.is_empty(),
        "records without their good attempt: {:?}",
        mismatched
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    );
    // Every good card is a different card.
    let (goods, serials): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT COUNT(*), COUNT(DISTINCT card_serial) FROM attempts WHERE outcome = 'good'",
                &[],
            )
            .expect("serials");
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (goods, serials),
        (n, n),
        "one good card per record, all distinct"
    );
    // No attempt is left running.
    let running = ids(
        &mut db,
        "SELECT id FROM attempts WHERE outcome = 'in_progress'",
        &[],
    );
    assert!(
        running.is_empty(),
        "attempts still in progress: {running:?}"
    );
    // A good card holds nothing else: no other attempt was made on it
    // after it became good, and it was never rejected.
    let reused = db
        .query(
            "SELECT g.card_serial FROM attempts g
             WHERE g.outcome = 'good' AND (
               EXISTS (SELECT 1 FROM attempts o WHERE o.card_serial = g.card_serial AND o.id > g.id)
               OR EXISTS (SELECT 1 FROM rejected_cards x WHERE x.serial = g.card_serial))",
            &[],
        )
        .expect("reuse");
    assert!(
        reused.is_empty(),
        "good cards touched again or rejected: {:?}",
        reused
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    );
    // Every station did work and put its name on it.
    let per_station: BTreeMap<String, (i64, i64)> = db
        .query(
            "SELECT station, COUNT(*), COUNT(*) FILTER (WHERE outcome = 'good') FROM attempts GROUP BY station",
            &[],
        )
        .expect("stations")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    for s in expect_stations {
        assert!(
            per_station.get(*s).is_some_and(|(all, _)| *all > 0),
            "station {s} has no attempts: {per_station:?}"
        );
    }
    assert!(
        per_station
            .keys()
            .all(|s| expect_stations.contains(&s.as_str())),
        "attempts of an unknown station: {per_station:?}"
    );
    let (attempts, interrupted, rejected): (i64, i64, i64) = {
        let r = db
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome = 'interrupted'),
                        COUNT(*) FILTER (WHERE outcome = 'rejected') FROM attempts",
                &[],
            )
            .expect("counts");
        (r.get(0), r.get(1), r.get(2))
    };
    format!(
        "{n} records on {n} distinct good cards; {attempts} attempts ({interrupted} interrupted, {rejected} rejected); per station (attempts, good): {per_station:?}"
    )
}

/// A card that was handed a record and is not that record's good card,
/// taken by a station process that lived on (so the card was still in its
/// reader at the end): it was terminated, by its failed attempt or through
/// the rejected-cards list. An attempt of such a station that did not end
/// good ended because its card or its claim failed, and the station then
/// makes the card unusable.
fn assert_terminated_cards(env: &Env, stations: &[&str], since: i64) {
    let mut db = env.db();
    let rows = db
        .query(
            "SELECT a.id, a.station, a.card_serial, a.outcome, COALESCE(a.reason_class, '')
             FROM attempts a
             WHERE a.station = ANY($1) AND a.started_at >= $2 AND a.outcome <> 'good'
               AND NOT a.card_terminated
               AND NOT EXISTS (SELECT 1 FROM rejected_cards x WHERE x.serial = a.card_serial AND x.terminated)
               AND NOT EXISTS (SELECT 1 FROM attempts g WHERE g.card_serial = a.card_serial AND g.outcome = 'good')",
            &[&stations, &since],
        )
        .expect("cards");
    assert!(
        rows.is_empty(),
        "cards of live stations that are neither good nor terminated: {:?}",
        rows.iter()
            .map(|r| (
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4)
            ))
            .collect::<Vec<_>>()
    );
}

/// Lock the records of station `name`'s attempts in progress, so that its
/// next good commit stops in the middle (attempt row locked, record row
/// awaited); cut the station's connections while it waits there; release.
/// True when a commit was caught and cut.
fn cut_mid_commit(env: &Env, name: &str, procs: &Procs) -> bool {
    let mut holder = env.db();
    let mut watcher = env.db();
    let app = format!("cardsmith {name}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut t = holder.transaction().expect("begin");
        let locked = t
            .query(
                "SELECT record_id FROM records WHERE record_id IN
                   (SELECT record_id FROM attempts WHERE station = $1 AND outcome = 'in_progress')
                 FOR UPDATE",
                &[&name],
            )
            .expect("lock")
            .len();
        if locked == 0 {
            drop(t);
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        // The station's commit reaches the record lock within one card.
        let until = Instant::now() + Duration::from_secs(15);
        let mut caught = false;
        while Instant::now() < until {
            let waiting = watcher
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1
                       AND wait_event_type = 'Lock' AND query LIKE '%claim_token FROM records%'",
                    &[&app],
                )
                .expect("activity");
            if !waiting.is_empty() {
                caught = env.cluster.terminate(&app) > 0;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        t.rollback().expect("rollback");
        if caught {
            return true;
        }
    }
    eprintln!(
        "no commit of station {name} to cut within 60 s\n{}",
        procs.logs()
    );
    false
}

/// Three stations share one batch. Station B is killed with SIGKILL at
/// random points of a card and restarted; station C's connections are cut
/// (once in the middle of its good commit, then at random moments);
/// PostgreSQL is restarted once mid-batch. All three finish by themselves
/// (exit 0), and the register holds every record on exactly one good card.
#[test]
fn three_stations_killed_cut_off_and_a_register_restart_keep_one_good_card_per_record() {
    let env = Env::setup(36, 141);
    let mut procs = Procs::default();
    let mut rng = Rng::from_env();
    let batch = env.batch.display().to_string();
    let common = ["--sim-readers", "2", "--timing", "typical", "--lease", "3s"];
    let a = procs.spawn(
        "A",
        env.station("A", &["run", &batch], &common),
        &env.log_path("A"),
    );
    let batch_id = wait_for(
        "station A loads the batch",
        Duration::from_secs(120),
        &procs,
        || {
            env.try_db()?
                .query_opt("SELECT id FROM batches", &[])
                .ok()?
                .map(|r| r.get::<_, i64>(0))
        },
    );
    let id = batch_id.to_string();
    let resume = ["resume", "--batch", id.as_str()];
    let mut b = procs.spawn(
        "B",
        env.station("B", &resume, &common),
        &env.log_path("B-0"),
    );
    let c = procs.spawn("C", env.station("C", &resume, &common), &env.log_path("C"));

    // SIGKILL station B in the middle of a card, then start it again.
    let mut killed_attempts: Vec<i64> = Vec::new();
    let mut kills = 0;
    let mut b_started = env.now_ms();
    let mut kill_b = |procs: &mut Procs, rng: &mut Rng, b: &mut usize, b_started: &mut i64| {
        let busy = wait_for(
            "station B works on a card",
            Duration::from_secs(120),
            procs,
            || {
                let n = env
                .try_db()?
                .query_one(
                    "SELECT COUNT(*) FROM attempts WHERE station = 'B' AND outcome = 'in_progress'",
                    &[],
                )
                .ok()?
                .get::<_, i64>(0);
                let done = env.good() == env.records as i64;
                (n > 0 || done).then_some(n > 0)
            },
        );
        if !busy {
            return false;
        }
        std::thread::sleep(rng.millis(0, 3000));
        procs.kill(*b);
        // What was running at B when it died: never good.
        let mut db = env.db();
        killed_attempts.extend(ids(
            &mut db,
            "SELECT id FROM attempts WHERE station = 'B' AND outcome = 'in_progress'",
            &[],
        ));
        kills += 1;
        *b_started = env.now_ms();
        *b = procs.spawn(
            "B",
            env.station("B", &resume, &common),
            &env.log_path(&format!("B-{kills}")),
        );
        true
    };

    let mut chaos = Vec::new();
    if kill_b(&mut procs, &mut rng, &mut b, &mut b_started) {
        chaos.push("B killed");
    }
    let mid_commit = cut_mid_commit(&env, "C", &procs);
    if mid_commit {
        chaos.push("C cut mid-commit");
    }
    // PostgreSQL restarts once, with about a quarter of the batch done.
    wait_for(
        "a quarter of the batch good",
        Duration::from_secs(180),
        &procs,
        || (env.good() >= env.records as i64 / 4).then_some(()),
    );
    let good_before_restart = env.good();
    env.cluster.restart();
    chaos.push("PostgreSQL restarted");
    if kill_b(&mut procs, &mut rng, &mut b, &mut b_started) {
        chaos.push("B killed");
    }
    let mut random_cuts = 0;
    for _ in 0..2 {
        std::thread::sleep(rng.millis(300, 2500));
        if env.cluster.terminate("cardsmith C") > 0 {
            random_cuts += 1;
            chaos.push("C cut");
        }
    }
    if kill_b(&mut procs, &mut rng, &mut b, &mut b_started) {
        chaos.push("B killed");
    }
    eprintln!("chaos: {chaos:?}");
    assert!(
        kills >= 2,
        "station B was killed only {kills} time(s): {chaos:?}"
    );
    assert!(mid_commit, "station C's commit was never cut: {chaos:?}");
    assert!(
        random_cuts >= 1,
        "station C's connections were never cut at random: {chaos:?}"
    );
    assert!(
        good_before_restart < env.records as i64,
        "PostgreSQL restarted after the batch was done"
    );

    // Every station finishes by itself.
    for (i, name) in [(a, "A"), (b, "B"), (c, "C")] {
        let code = procs.wait(i, Duration::from_secs(300));
        assert_eq!(code, 0, "station {name} exit code\n{}", procs.logs());
    }
    assert!(!procs.running(a) && !procs.running(b) && !procs.running(c));

    // A and C lived through the restart and the cuts: they waited for the
    // register and reconnected by themselves.
    for name in ["A", "C"] {
        let log = std::fs::read_to_string(env.log_path(name)).unwrap_or_default();
        assert!(
            log.contains("waiting and reconnecting") && log.contains("is back"),
            "station {name} did not report waiting for the register:\n{log}"
        );
    }
    let account = check_register(&env, &["A", "B", "C"]);
    eprintln!("{account}");

    let mut db = env.db();
    // The attempts that were running when B was killed never became good:
    // B found them on its restart (station stopped), or another station
    // took their records back when their leases ran out.
    assert!(
        !killed_attempts.is_empty(),
        "no kill hit station B in the middle of a card"
    );
    let killed: Vec<(i64, String, String)> = db
        .query(
            "SELECT id, outcome, COALESCE(reason_class, '') FROM attempts WHERE id = ANY($1)",
            &[&killed_attempts],
        )
        .expect("killed attempts")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (id, outcome, class) in &killed {
        assert!(
            outcome == "interrupted" && (class == "station stopped" || class == "lease expired"),
            "attempt {id} of a killed station ended {outcome} ({class})"
        );
    }
    // Their cards (gone with the killed process) are known to the register
    // as interrupted: if one came back to any station it would be
    // recovered against its record or terminated, never taken as blank.
    let unaccounted = db
        .query(
            "SELECT a.card_serial FROM attempts a WHERE a.id = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM attempts g WHERE g.card_serial = a.card_serial AND g.outcome = 'good')
               AND (SELECT o.outcome FROM attempts o WHERE o.card_serial = a.card_serial ORDER BY o.id DESC LIMIT 1)
                   NOT IN ('interrupted', 'rejected')",
            &[&killed_attempts],
        )
        .expect("killed cards");
    assert!(unaccounted.is_empty());
    // The stations that lived to the end (A, C, and B's last run) left no
    // card that holds a record without being its good card.
    assert_terminated_cards(&env, &["A", "C"], 0);
    assert_terminated_cards(&env, &["B"], b_started);
    // A fenced card is always one the station terminated.
    let fenced_alive = ids(
        &mut db,
        "SELECT id FROM rejected_cards WHERE reason LIKE 'fenced:%' AND NOT terminated",
        &[],
    );
    assert!(
        fenced_alive.is_empty(),
        "fenced cards left usable: {fenced_alive:?}"
    );

    // The line's own query agrees, through the station login.
    let out = Command::new(env!("CARGO_BIN_EXE_cardsmith"))
        .args([
            "line",
            "status",
            "--json",
            "--batch",
            &id,
            "--journal",
            &env.url,
        ])
        .env("PGPASSFILE", &env.passfile)
        .env_remove("PGPASSWORD")
        .env_remove("CARDSMITH_JOURNAL")
        .output()
        .expect("line status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(v["summary"]["good"], env.records as u64, "{v}");
    assert_eq!(v["summary"]["pending"], 0, "{v}");
    assert_eq!(v["summary"]["in_progress"], 0, "{v}");
    let events = ids(
        &mut db,
        "SELECT COUNT(*) FROM events WHERE kind IN ('resume', 'lease expired')",
        &[],
    );
    eprintln!(
        "kills at B hit {} attempt(s); resume/lease-expired events: {events:?}",
        killed_attempts.len()
    );
}

/// How a station is paused in the fencing tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pause {
    /// Right after its claim, while it personalizes the card.
    AfterClaim,
    /// Inside its lease renewal: the transaction is open on the server,
    /// holding the row of its attempt, with nobody to commit it.
    InsideRenewal,
    /// Inside its good commit, after the card passed verification: the
    /// transaction holds the rows of its attempt and of its record.
    InsideGoodCommit,
}

/// Station P claims the batch's only record, and is stopped (SIGSTOP) for
/// longer than its lease; station Q takes the record when the lease has run
/// out and makes it good. P is continued and finishes its card: the
/// register refuses its good commit, P terminates the card and journals it
/// as fenced.
fn paused_station_is_fenced(pause: Pause) {
    let env = Env::setup(1, 151);
    let mut procs = Procs::default();
    let batch = env.batch.display().to_string();
    let p = procs.spawn(
        "P",
        env.station(
            "P",
            &["run", &batch],
            &["--sim-readers", "1", "--timing", "slow", "--lease", "2s"],
        ),
        &env.log_path("P"),
    );
    let (attempt, serial, record): (i64, String, String) = wait_for(
        "station P claims the record",
        Duration::from_secs(120),
        &procs,
        || {
            let r = env
                .try_db()?
                .query_opt(
                    "SELECT id, card_serial, record_id FROM attempts
                     WHERE station = 'P' AND outcome = 'in_progress'",
                    &[],
                )
                .ok()??;
            Some((r.get(0), r.get(1), r.get(2)))
        },
    );
    match pause {
        Pause::AfterClaim => procs.signal(p, libc::SIGSTOP),
        Pause::InsideRenewal | Pause::InsideGoodCommit => {
            // Hold a row P's transaction needs so that it stops at that
            // statement; stop P while it waits; let the statement through.
            // P's transaction is then open on the server, holding its rows,
            // and P is not there to commit it.
            let (lock, statement, within) = if pause == Pause::InsideRenewal {
                (
                    "SELECT id FROM attempts WHERE id = $1 FOR UPDATE",
                    "UPDATE attempts SET lease_until%",
                    Duration::from_secs(30),
                )
            } else {
                (
                    "SELECT record_id FROM records WHERE record_id = (SELECT record_id FROM attempts WHERE id = $1) FOR UPDATE",
                    "%claim_token FROM records%",
                    Duration::from_secs(240),
                )
            };
            let mut holder = env.db();
            let mut watcher = env.db();
            let mut t = holder.transaction().expect("begin");
            t.query(lock, &[&attempt]).expect("lock a row of P's");
            let pid: i32 = wait_for("P waits on the row", within, &procs, || {
                let r = watcher
                    .query_opt(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'cardsmith P'
                           AND wait_event_type = 'Lock' AND query LIKE $1",
                        &[&statement],
                    )
                    .ok()??;
                Some(r.get(0))
            });
            procs.signal(p, libc::SIGSTOP);
            t.rollback().expect("release");
            wait_for(
                "P's transaction open and idle",
                Duration::from_secs(10),
                &procs,
                || {
                    let r = watcher
                        .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
                        .ok()??;
                    (r.get::<_, String>(0) == "idle in transaction").then_some(())
                },
            );
        }
    }
    let stopped_at = env.now_ms();
    let id = env.one_i64("SELECT id FROM batches", &[]).to_string();
    let q = procs.spawn(
        "Q",
        env.station(
            "Q",
            &["resume", "--batch", &id],
            &["--sim-readers", "1", "--timing", "fast", "--lease", "2s"],
        ),
        &env.log_path("Q"),
    );
    // Q finishes the batch while P is still stopped.
    let code = procs.wait(q, Duration::from_secs(150));
    assert_eq!(code, 0, "station Q exit code\n{}", procs.logs());
    assert!(procs.running(p), "P is still there, stopped");
    let mut db = env.db();
    let r = db
        .query_one(
            "SELECT a.outcome, COALESCE(a.reason_class, ''), a.finished_at, r.state,
                    (SELECT card_serial FROM attempts WHERE record_id = r.record_id AND outcome = 'good' AND station = 'Q')
             FROM attempts a JOIN records r ON r.record_id = a.record_id WHERE a.id = $1",
            &[&attempt],
        )
        .expect("P's attempt");
    let (outcome, class, finished, state, q_card): (String, String, i64, String, Option<String>) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!(
        (outcome.as_str(), class.as_str(), state.as_str()),
        ("interrupted", "lease expired", "good"),
        "{}",
        procs.logs()
    );
    let q_card = q_card.expect("the record is good on station Q's card");
    assert_ne!(q_card, serial);
    // Q took the record over with one claim, on one card: its own claim,
    // even one that had to wait for P's stalled transaction, was live.
    let q_attempts: Vec<(String, String)> = db
        .query(
            "SELECT outcome, COALESCE(reason_class, '') FROM attempts WHERE station = 'Q'",
            &[],
        )
        .expect("Q's attempts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        q_attempts,
        vec![("good".to_string(), String::new())],
        "station Q's attempts\n{}",
        procs.logs()
    );
    // The claim was taken away only after P had been stopped past its lease.
    assert!(
        finished - stopped_at >= 1000,
        "P's claim was reaped {} ms after P stopped",
        finished - stopped_at
    );

    // P goes on with its card, which it may no longer make good.
    procs.signal(p, libc::SIGCONT);
    let code = procs.wait(p, Duration::from_secs(240));
    assert_eq!(code, 0, "station P exit code\n{}", procs.logs());

    let r = db
        .query_one(
            "SELECT outcome, COALESCE(reason_class, '') FROM attempts WHERE id = $1",
            &[&attempt],
        )
        .expect("P's attempt");
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, String>(1)),
        ("interrupted".to_string(), "lease expired".to_string()),
        "P's attempt never becomes good"
    );
    let p_good = env.one_i64(
        "SELECT COUNT(*) FROM attempts WHERE station = 'P' AND outcome = 'good'",
        &[],
    );
    assert_eq!(p_good, 0, "station P made no card good");
    // P's card was finished, refused at the good commit, and terminated.
    let fenced: Vec<(String, bool, String)> = db
        .query(
            "SELECT reason, terminated, station FROM rejected_cards WHERE serial = $1",
            &[&serial],
        )
        .expect("rejected cards")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        fenced.len() == 1
            && fenced[0].0.starts_with("fenced:")
            && fenced[0].0.contains(&record)
            && fenced[0].1
            && fenced[0].2 == "P",
        "P's card {serial} in rejected_cards: {fenced:?}\n{}",
        procs.logs()
    );
    // The record is on exactly one good card, station Q's.
    let goods: Vec<(String, String)> = db
        .query(
            "SELECT card_serial, station FROM attempts WHERE record_id = $1 AND outcome = 'good'",
            &[&record],
        )
        .expect("good attempts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(goods, vec![(q_card.clone(), "Q".to_string())]);
    eprintln!("{}", check_register(&env, &["P", "Q"]));
    assert_terminated_cards(&env, &["P", "Q"], 0);
}

#[test]
fn station_paused_past_its_lease_after_claiming_never_makes_its_card_good() {
    paused_station_is_fenced(Pause::AfterClaim);
}

/// A station stopped inside a register transaction (its lease renewal)
/// holds the row the others must update to take its expired claim back;
/// the register must not wait for it for ever.
#[test]
fn station_paused_inside_its_lease_renewal_does_not_hold_up_the_others() {
    paused_station_is_fenced(Pause::InsideRenewal);
}

/// A station stopped inside its good commit: the others take the record
/// once the register has ended the stalled session, and when the station
/// wakes up its commit is retried, refused, and its card terminated.
#[test]
fn station_paused_inside_its_good_commit_is_fenced_when_it_wakes() {
    paused_station_is_fenced(Pause::InsideGoodCommit);
}

/// A TCP front for the cluster that passes connections through, except
/// that while `refuse` is above zero it answers a new connection's startup
/// as a PostgreSQL server that is starting up does (FATAL 57P03) and closes
/// it, counting down.
struct Front {
    port: u16,
    refuse: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Front {
    fn start(server_port: u16) -> Front {
        use std::io::Write;
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let refuse = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (rf, rd) = (refuse.clone(), refused.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let take = rf
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if take {
                    // The startup packet (after a refused SSL request,
                    // if the client asks for one).
                    let Some(body) = startup_packet(&mut s) else {
                        continue;
                    };
                    if body == [0x04, 0xd2, 0x16, 0x2f] {
                        let _ = s.write_all(b"N");
                        if startup_packet(&mut s).is_none() {
                            continue;
                        }
                    }
                    let mut fields = Vec::new();
                    for (k, v) in [
                        (b'S', "FATAL"),
                        (b'V', "FATAL"),
                        (b'C', "57P03"),
                        (b'M', "the database system is starting up"),
                    ] {
                        fields.push(k);
                        fields.extend_from_slice(v.as_bytes());
                        fields.push(0);
                    }
                    fields.push(0);
                    let mut msg = vec![b'E'];
                    msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
                    msg.extend_from_slice(&fields);
                    let _ = s.write_all(&msg);
                    rd.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let (Ok(mut s2), Ok(mut up2)) = (s.try_clone(), up.try_clone()) else {
                    continue;
                };
                let mut up = up;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut up);
                    let _ = up.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up2, &mut s);
                    let _ = s.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Front {
            port,
            refuse,
            refused,
        }
    }
}

/// One length-prefixed packet of a client's startup.
fn startup_packet(s: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = u32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; n.checked_sub(4)?];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A register that restarts answers new connections with "the database
/// system is starting up" for a moment. A station's call waits that out
/// and reconnects, as it does for a refused connection, instead of failing
/// (which ended a station, or left a good card unjournaled, when it fell
/// in the window of a restart).
#[test]
fn a_station_waits_for_a_register_that_is_starting_up() {
    use cardsmith::register::journal::Journal;
    use cardsmith::register::pg::{PgJournal, PgOptions};
    use std::sync::atomic::Ordering;
    let cluster = Cluster::start();
    let admin = cluster.register("register");
    let front = Front::start(cluster.port);
    let url = admin.replace(
        &format!("@127.0.0.1:{}/", cluster.port),
        &format!("@127.0.0.1:{}/", front.port),
    );
    assert_ne!(url, admin);
    let mut t = cardsmith::register::pgconf::parse(&url, false).expect("url");
    t.config.application_name("cardsmith front-test");
    let j = PgJournal::open(
        t,
        PgOptions {
            lease: Duration::from_secs(30),
            retry_for: Duration::from_secs(60),
            max_connections: 1,
        },
    )
    .expect("open through the front");
    assert_eq!(j.batch(None).expect("batch"), None);
    // Cut the station's connection; the next three connections meet a
    // server that is starting up.
    front.refuse.store(3, Ordering::SeqCst);
    assert!(cluster.terminate("front-test") >= 1);
    let r = j.batch(None);
    assert!(
        matches!(r, Ok(None)),
        "the call gave up while the register was starting up: {r:?}"
    );
    assert_eq!(front.refused.load(Ordering::SeqCst), 3);
}
