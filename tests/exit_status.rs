//! Exit statuses, and the init scripts that rely on them: 2 when the command
//! line or configuration is wrong (starting again cannot help), 1 for a
//! failure that may pass on a retry (a port in use, a certificate not there
//! yet). The Tomato Init script stops restarting on 2; the OpenWrt init
//! script refuses to start on a --check that exits 2, and starts (procd
//! retries) on one that exits 1.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

fn s(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn wrong_configuration_exits_2_and_what_may_pass_later_exits_1() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (cert, key) = (s(&pair.cert), s(&pair.key));
    let free = closed_port();
    let route = format!("{free}=127.0.0.1:9");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_route = format!("{}=127.0.0.1:9", busy.local_addr().unwrap());
    let missing = s(&dir.path("not-yet.pem"));
    let tls = ["--cert", cert.as_str(), "--key", key.as_str()];
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--route", "8443=cam"], 2),
        (vec!["--route", &route, "--bogus"], 2),
        (vec!["--route", &route, "--allow", "10.0.0.0/99"], 2),
        (vec!["--route", &route, "--idle-timeout", "0"], 2),
        (vec!["--route", &route, "--user", "camtls-no-such-user"], 2),
        (vec!["--route", &busy_route], 1),
        (
            vec!["--route", &route, "--cert", &missing, "--key", &key],
            1,
        ),
    ];
    for (mut args, status) in cases {
        if !args.contains(&"--cert") {
            args.extend(tls);
        }
        let ran = run_camtls(&args);
        assert_eq!(ran.code, Some(status), "{args:?}: {ran:?}");
        assert!(ran.stderr.contains("camtls: ") || ran.stderr.contains("Run camtls --help"));
        // --check says the same.
        if !args.contains(&"--bogus") && !args.contains(&busy_route.as_str()) {
            args.push("--check");
            let ran = run_camtls(&args);
            assert_eq!(ran.code, Some(status), "{args:?}: {ran:?}");
        }
    }
    // Asking for help is not a failure.
    assert_eq!(run_camtls(&["--help"]).code, Some(0));
}

/// A one-word command for the binary under test (its runner included), for
/// scripts that take a path.
fn wrapper(dir: &TempDir) -> String {
    let words: Vec<String> = camtls_command_words().iter().map(|w| sh_quote(w)).collect();
    let path = dir.path("camtls");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nPATH=/usr/local/bin:/usr/bin:/bin:$PATH exec {} \"$@\"\n",
            words.join(" ")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    s(&path)
}

fn wait_for_text(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got.contains(text) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {}:\n{got}",
            path.display()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the Tomato Init script with ROUTES, as on the router but in `dir`;
/// returns the file its log lines go to.
fn tomato_init(dir: &TempDir, routes: &str) -> std::path::PathBuf {
    let pair = write_pair(dir, KeyKind::Ecdsa);
    let bin = wrapper(dir);
    let run = dir.path("run");
    let tools = dir.path("tools");
    let log = dir.path("syslog");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&tools).unwrap();
    let logger = tools.join("logger");
    std::fs::write(
        &logger,
        format!("#!/bin/sh\necho \"$*\" >>{}\n", sh_quote(&s(&log))),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = std::fs::read_to_string("tomato-scripts/camtls.init").unwrap();
    let set = |text: String, name: &str, value: &str| {
        let start = text.find(&format!("\n{name}=")).expect(name) + 1;
        let end = start + text[start..].find('\n').unwrap();
        format!(
            "{}{name}={}{}",
            &text[..start],
            sh_quote(value),
            &text[end..]
        )
    };
    let script = set(script, "ROUTES", routes);
    let script = set(script, "BIN", &bin);
    let script = set(script, "CERT", &s(&pair.cert));
    let script = set(script, "KEY", &s(&pair.key));
    let script = set(script, "RUN", &s(&run));
    let path = dir.path("camtls.init");
    std::fs::write(&path, script).unwrap();
    let status = Command::new("sh")
        .arg(&path)
        .env(
            "PATH",
            format!("{}:{}", s(&tools), std::env::var("PATH").unwrap()),
        )
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    log
}

/// Stops the Init script's loop (and the camtls it runs).
fn stop_loop(dir: &TempDir) {
    let pid = std::fs::read_to_string(dir.path("run").join("camtls.loop").join("pid"));
    if let Ok(pid) = pid {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

#[test]
fn tomato_init_stops_on_a_wrong_route_and_retries_a_busy_port() {
    let dir = TempDir::new();
    let log = tomato_init(&dir, "8443=cam");
    let got = wait_for_text(&log, "not restarted");
    stop_loop(&dir);
    assert!(
        got.contains("not restarted: camtls refused its options (exit 2)"),
        "{got}"
    );
    assert!(!got.contains("restarting in"), "{got}");

    let dir = TempDir::new();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let route = format!("{}=127.0.0.1:9", busy.local_addr().unwrap());
    let log = tomato_init(&dir, &route);
    let got = wait_for_text(&log, "restarting in");
    stop_loop(&dir);
    assert!(
        got.contains("camtls exited (status 1); restarting in"),
        "{got}"
    );
}

/// The few UCI, procd and logd shell functions the init script's start
/// calls, standing in for OpenWrt's (tests/openwrt runs it under the real
/// ones): `CONFIG_<section>_<option>` variables are the configuration,
/// ROUTE_SECTIONS lists the route sections, and what procd and logd are told
/// is appended to $CALLS.
const OPENWRT_STUBS: &str = r#"
config_load() { :; }
config_get() { eval "v=\${CONFIG_$2_$3-}"; [ -n "$v" ] || v=$4; eval "$1=\$v"; }
config_get_bool() { config_get "$@"; }
config_foreach() { for sec in $ROUTE_SECTIONS; do "$1" "$sec"; done; }
config_list_foreach() { eval "l=\${CONFIG_$1_$2-}"; for x in $l; do "$3" "$x"; done; }
uci() { :; }
logger() { echo "log $*" >>"$CALLS"; }
procd_open_instance() { echo "instance $1" >>"$CALLS"; }
procd_set_param() { :; }
procd_close_instance() { :; }
procd_set_config_changed() { :; }
"#;

/// Sources the OpenWrt init script with `config` (shell assignments) and
/// runs its start_service under busybox ash; returns what procd and logd
/// were told and the exit status.
fn openwrt_start(dir: &TempDir, config: &str) -> String {
    let calls = dir.path("calls");
    std::fs::write(&calls, "").unwrap();
    let script = format!(
        "{OPENWRT_STUBS}\n. ./openwrt-package/camtls/files/camtls.init\nPROG={}\nACME_DIR={}\nCERT_DIR={}\nRUN_DIR={}\n{config}\nstart_service\n",
        sh_quote(&wrapper(dir)),
        sh_quote(&s(&dir.path("acme"))),
        sh_quote(&s(&dir.path("etc-camtls"))),
        sh_quote(&s(&dir.path("run"))),
    );
    let out = Command::new("busybox")
        .args(["ash", "-c", &script])
        .env("CALLS", s(&calls))
        .stdin(Stdio::null())
        .output()
        .expect("busybox (Debian package busybox)");
    let record = std::fs::read_to_string(&calls).unwrap();
    format!(
        "{record}\nexit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn openwrt_init_refuses_a_wrong_configuration_and_starts_one_that_may_pass() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let main = format!(
        "CONFIG_main_user=root\nCONFIG_main_cert={}\nCONFIG_main_key={}\nROUTE_SECTIONS=door\nCONFIG_door_listen=8443\nCONFIG_door_backend=192.168.1.20:80\n",
        sh_quote(&s(&pair.cert)),
        sh_quote(&s(&pair.key))
    );
    // An address range the binary refuses: exit 2, no instance.
    let record = openwrt_start(&dir, &format!("{main}CONFIG_door_allow=10.0.0.0/99\n"));
    assert!(
        record.contains("not started, the configuration was refused"),
        "{record}"
    );
    assert!(!record.contains("instance camtls"), "{record}");

    // A certificate not there yet: exit 1, started, for procd to retry.
    let renewing = sh_quote(&s(&dir.path("renewing.pem")));
    let record = openwrt_start(&dir, &format!("{main}CONFIG_main_cert={renewing}\n"));
    assert!(record.contains("instance camtls"), "{record}");
    assert!(
        record.contains("starting, though the check failed (status 1"),
        "{record}"
    );
}
