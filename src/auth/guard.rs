//! A route's access rules, loaded from its configuration at start and on
//! SIGHUP: its logins, its address ranges and the login camtls gives the
//! device; and the check a new connection passes before its TLS handshake.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use crate::auth::allow::Allow;
use crate::auth::lockout::Lockout;
use crate::auth::users::Users;
use crate::auth::{device, secret_file};
use crate::config::{BackendAuth, Route};
use crate::Error;

/// A route's access rules, loaded at start.
#[derive(Default)]
pub struct RouteGuard {
    /// Logins camtls checks itself (shared between routes naming one file).
    pub users: Option<Rc<Users>>,
    /// Client ranges allowed; empty allows everyone.
    pub allow: Allow,
    /// The Authorization value camtls sends the device.
    pub backend_authorization: Option<String>,
}

impl RouteGuard {
    /// Whether a new connection from `ip` may go on to the TLS handshake.
    pub fn admits(&self, ip: IpAddr, lockout: &RefCell<Lockout>) -> bool {
        self.allow.allows(ip)
            && !(self.users.is_some() && lockout.borrow_mut().is_blocked(ip, Instant::now()))
    }
}

/// Each route's access rules, with every file read and checked now, so a
/// mistake stops camtls before it serves. Routes naming the same auth file
/// share one set of users (and one cache of verified logins).
pub fn load_guards(routes: &[Route]) -> Result<Vec<RouteGuard>, Error> {
    let mut users_by_file: HashMap<PathBuf, Rc<Users>> = HashMap::new();
    let mut guards = Vec::with_capacity(routes.len());
    for route in routes {
        let at = |why: String| Error::new(format!("route {}: {why}", route.listen));
        let users = match &route.guard.auth_file {
            None => None,
            Some(path) => Some(match users_by_file.get(path) {
                Some(users) => users.clone(),
                None => {
                    let users = Rc::new(Users::load(path).map_err(at)?);
                    if let Some(warning) = secret_file::permission_warning("auth file", path) {
                        log::warn!("{warning}");
                    }
                    users_by_file.insert(path.clone(), users.clone());
                    users
                }
            }),
        };
        let backend_authorization = match &route.guard.backend_auth {
            None => None,
            Some(BackendAuth::Inline(authorization)) => Some(authorization.clone()),
            Some(BackendAuth::File(path)) => {
                if let Some(warning) = secret_file::permission_warning("backend auth file", path) {
                    log::warn!("{warning}");
                }
                Some(device::load_backend_auth(path).map_err(at)?)
            }
        };
        if users.is_some() && !route.guard.allow.is_empty() {
            log::info!(
                "route {}: login required, and only from the allowed ranges",
                route.listen
            );
        }
        guards.push(RouteGuard {
            users,
            allow: route.guard.allow.clone(),
            backend_authorization,
        });
    }
    Ok(guards)
}
