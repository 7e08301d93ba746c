//! Connections to a backend: an address as it is, a host name looked up at
//! each connect (a camera's DHCP address may change) on one resolver thread
//! of its own, with a short memory of answers.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use smol::Async;

use crate::config::Backend;
use crate::deadline::Deadlines;

/// Why no connection to the backend was made: the status for the client
/// (502, or 504 when a wait ran out) and a line for the log.
#[derive(Debug)]
pub struct ConnectFailure {
    pub status: u16,
    pub why: String,
}

impl ConnectFailure {
    fn new(status: u16, why: String) -> ConnectFailure {
        ConnectFailure { status, why }
    }
}

/// Connects to the backend, resolving a name at each connect (a camera's
/// DHCP address may change). Names are resolved off the event loop.
pub async fn connect(
    deadlines: &Deadlines,
    backend: &Backend,
    timeout: Duration,
) -> Result<Async<TcpStream>, ConnectFailure> {
    let addrs: Vec<SocketAddr> = match backend.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, backend.port)],
        Err(_) => {
            let lookup = resolve(&backend.host, backend.port);
            match deadlines.limit_for(timeout, lookup).await {
                Some(Some(addrs)) => addrs,
                Some(None) => {
                    return Err(ConnectFailure::new(
                        502,
                        format!("cannot resolve {}", backend.host),
                    ))
                }
                None => {
                    return Err(ConnectFailure::new(
                        504,
                        format!("resolving {} timed out", backend.host),
                    ))
                }
            }
        }
    };
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    for addr in addrs {
        match deadlines
            .limit(deadline, Async::<TcpStream>::connect(addr))
            .await
        {
            Some(Ok(socket)) => {
                // Heads and small frames must not wait for Nagle's timer.
                let _ = socket.get_ref().set_nodelay(true);
                return Ok(socket);
            }
            Some(Err(e)) => last_error = Some(format!("connecting to {backend}: {e}")),
            None => {
                return Err(ConnectFailure::new(
                    504,
                    format!("connecting to {backend} timed out"),
                ))
            }
        }
    }
    Err(ConnectFailure::new(502, last_error.unwrap_or_default()))
}

/// How long a name's addresses are used before it is looked up again: a
/// page's burst of connections costs one lookup, and a camera whose DHCP
/// address changed is found within seconds. A failed lookup is kept for
/// less, so that a camera coming up is not kept waiting.
const NAME_KEPT: Duration = Duration::from_secs(10);
const NAME_FAILURE_KEPT: Duration = Duration::from_secs(2);

/// One lookup's answer, filled in by the resolver thread; None while it runs.
type Answer = Arc<Mutex<Option<Option<Vec<SocketAddr>>>>>;

struct Job {
    host: String,
    port: u16,
    answer: Answer,
    /// Dropped when the answer is in, which wakes every waiter.
    _done: smol::channel::Sender<()>,
}

enum Name {
    Known(Instant, Option<Vec<SocketAddr>>),
    Looking(Answer, smol::channel::Receiver<()>),
}

thread_local! {
    /// By backend name and port; a handful of routes, so a list.
    static NAMES: RefCell<Vec<(String, u16, Name)>> = const { RefCell::new(Vec::new()) };
}

/// The resolver thread's queue.
static JOBS: Mutex<Vec<Job>> = Mutex::new(Vec::new());
static JOB_ADDED: Condvar = Condvar::new();
static RESOLVER_STARTED: AtomicBool = AtomicBool::new(false);

/// The backend's addresses, or None when the name does not resolve.
/// getaddrinfo blocks, so names are looked up on one thread of their own,
/// started at the first lookup, one name at a time: stalled lookups never
/// add threads (on a 32 MB router a thread each would be the end), and a
/// stalled name delays only the routes to names, never an address route.
/// Connections asking for a name already being looked up share that lookup.
async fn resolve(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let find = |names: &mut Vec<(String, u16, Name)>| {
        names.iter().position(|(h, p, _)| h == host && *p == port)
    };
    let known = NAMES.with_borrow_mut(|names| {
        let at = find(names);
        match at.map(|i| &names[i].2) {
            Some(Name::Known(until, addrs)) if Instant::now() < *until => return Ok(addrs.clone()),
            Some(Name::Looking(answer, done)) => return Err((answer.clone(), done.clone())),
            _ => {}
        }
        let answer = Answer::default();
        let (done_tx, done) = smol::channel::bounded(1);
        let job = Job {
            host: host.to_string(),
            port,
            answer: answer.clone(),
            _done: done_tx,
        };
        if !queue_lookup(job) {
            return Ok(None);
        }
        let entry = (
            host.to_string(),
            port,
            Name::Looking(answer.clone(), done.clone()),
        );
        match at {
            Some(i) => names[i] = entry,
            None => names.push(entry),
        }
        Err((answer, done))
    });
    let (answer, done) = match known {
        Ok(addrs) => return addrs,
        Err(looking) => looking,
    };
    let _ = done.recv().await;
    let addrs = answer.lock().ok()?.clone()?;
    NAMES.with_borrow_mut(|names| {
        if let Some(i) = find(names) {
            if matches!(&names[i].2, Name::Looking(a, _) if Arc::ptr_eq(a, &answer)) {
                let kept = if addrs.is_some() {
                    NAME_KEPT
                } else {
                    NAME_FAILURE_KEPT
                };
                names[i].2 = Name::Known(Instant::now() + kept, addrs.clone());
            }
        }
    });
    addrs
}

/// Hands a lookup to the resolver thread, starting it the first time;
/// false if it cannot be started.
fn queue_lookup(job: Job) -> bool {
    if !RESOLVER_STARTED.swap(true, Ordering::Relaxed) {
        let started = std::thread::Builder::new()
            .name("resolver".into())
            .stack_size(256 * 1024)
            .spawn(resolver_thread);
        if started.is_err() {
            RESOLVER_STARTED.store(false, Ordering::Relaxed);
            return false;
        }
    }
    let Ok(mut jobs) = JOBS.lock() else {
        return false;
    };
    jobs.push(job);
    JOB_ADDED.notify_one();
    true
}

fn resolver_thread() {
    loop {
        let job = {
            let Ok(mut jobs) = JOBS.lock() else { return };
            while jobs.is_empty() {
                let Ok(woken) = JOB_ADDED.wait(jobs) else {
                    return;
                };
                jobs = woken;
            }
            jobs.remove(0)
        };
        let found = (job.host.as_str(), job.port)
            .to_socket_addrs()
            .ok()
            .map(Vec::from_iter)
            .filter(|addrs| !addrs.is_empty());
        if let Ok(mut answer) = job.answer.lock() {
            *answer = Some(found);
        }
        drop(job);
    }
}
