//! A fresh temporary folder and database per test, and the real hptune binary to run in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("experiments.db");
        Self { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hptune"));
        c.current_dir(self.dir.path()).arg("--db").arg(&self.db).env_remove("HPTUNE_DB").env_remove("HPTUNE_STORAGE");
        c
    }

    /// Starts hptune with its training held at the end of each epoch (`HPTUNE_PAUSE_FILE`, created
    /// here) until `resume`: a test acts on a running trial at a state, whatever the machine's
    /// speed.
    pub fn spawn_paused(&self, args: &[&str]) -> Child {
        let pause = self.path("pause");
        std::fs::write(&pause, "").unwrap();
        self.cmd()
            .args(args)
            .env("HPTUNE_PAUSE_FILE", &pause)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Lets paused training go on.
    pub fn resume(&self) {
        std::fs::remove_file(self.path("pause")).unwrap();
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs hptune and returns stdout; panics with stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(out.status.success(), "hptune {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs hptune expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "hptune {args:?} should have failed; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Every table's full content, as text: equal dumps mean an unchanged database.
    pub fn dump(&self) -> String {
        dump(&self.db)
    }

    pub fn sql_one<T: duckdb::types::FromSql>(&self, sql: &str) -> T {
        let conn = read_only(&self.db);
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub fn read_only(db: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
    duckdb::Connection::open_with_flags(db, config).unwrap()
}

pub fn dump(db: &Path) -> String {
    let conn = read_only(db);
    let tables: Vec<String> = conn
        .prepare("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for t in tables {
        let (n, digest): (i64, Option<String>) = conn
            .query_row(
                &format!("SELECT count(*), md5(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR))) FROM {t} t"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        out.push_str(&format!("{t}: {n} rows, md5 {digest:?}\n"));
    }
    out
}

/// The project's shipped data folder.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// A throwaway PostgreSQL server in a temporary folder (Debian's `postgresql` package: initdb and
/// pg_ctl, run as the `postgres` user when the tests run as root), on a free port of 127.0.0.1,
/// stopped when dropped. `tests/setup.sh` installs the package.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra settings (`-c name=value`), e.g. a time zone.
    pub fn start_with(settings: &[&str]) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).find(|b| b.join("initdb").exists()))
            .expect("PostgreSQL is not installed: tests/setup.sh installs it (apt-get install postgresql)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Self { dir, bin, port };
        let data = server.dir.path().join("data");
        if is_root() {
            Command::new("chown").args(["-R", "postgres"]).arg(server.dir.path()).status().unwrap();
        }
        server.as_postgres(&[server.bin.join("initdb").to_str().unwrap(), "-D", data.to_str().unwrap(), "-A", "trust"]);
        let mut options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", server.dir.path().display());
        for s in settings {
            options.push_str(&format!(" -c {s}"));
        }
        let log = server.dir.path().join("log");
        server.as_postgres(&[
            server.bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        server
    }

    fn as_postgres(&self, args: &[&str]) {
        let out = postgres_command(self.dir.path(), args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new database on the server; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = self.client("postgres");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let (pg_ctl, data) = (self.bin.join("pg_ctl"), self.dir.path().join("data"));
        let args = [pg_ctl.to_str().unwrap(), "-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = postgres_command(self.dir.path(), &args).output();
    }
}

/// A command run as the `postgres` user when the tests run as root (PostgreSQL refuses root), in `dir`.
fn postgres_command(dir: &Path, args: &[&str]) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    c.current_dir(dir);
    c
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Every file under `dir` (by its path below it) with its bytes; none when it is gone.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.exists() {
            out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
        }
    }
    out
}

/// Opens the file read-write from this process (retrying while hptune holds it) and keeps it.
pub fn hold(db: &Path) -> duckdb::Connection {
    let start = std::time::Instant::now();
    loop {
        match duckdb::Connection::open(db) {
            Ok(c) => return c,
            Err(e) if start.elapsed() < std::time::Duration::from_secs(30) => {
                assert!(e.to_string().contains("lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("could not take the file: {e}"),
        }
    }
}
