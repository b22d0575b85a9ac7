//! The key layout, in one place.
//!
//! ```text
//! /{root}/{env}/{service}/{component}/{name}   config values (config centre)
//! /{root}/{env}/_registry/{service}/{id}       registered instances
//! /{root}/{env}/_locks/{name}                  locks
//! /{root}/{env}/_ids/{service}/{n}             instance ids
//! ```
//!
//! System areas start with `_`, which service names may not, so no config can collide with
//! them.

use crate::{Error, config::check_segment, error::Result};

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    base: String,
}

impl Keys {
    pub(crate) fn new(root: &str, env: &str) -> Self {
        Self {
            base: format!("/{root}/{env}"),
        }
    }

    pub(crate) fn registry(&self, service: &str) -> Result<String> {
        Ok(format!(
            "{}/_registry/{}/",
            self.base,
            service_segment(service)?
        ))
    }

    pub(crate) fn lock(&self, name: &str) -> Result<String> {
        Ok(format!("{}/_locks/{}", self.base, path(name, "lock name")?))
    }

    pub(crate) fn ids(&self, service: &str) -> Result<String> {
        Ok(format!("{}/_ids/{}/", self.base, service_segment(service)?))
    }

    pub(crate) fn config_scope(&self, service: &str, component: &str) -> Result<String> {
        let service = service_segment(service)?;
        let component = segment(component, "component")?;
        Ok(format!("{}/{service}/{component}/", self.base))
    }
}

/// A service name: a segment that does not start with `_`.
pub(crate) fn service_segment(service: &str) -> Result<&str> {
    if service.starts_with('_') {
        return Err(Error::InvalidArgument(format!(
            "service name {service:?} may not start with `_` (reserved for coord's own keys)"
        )));
    }
    segment(service, "service name")
}

pub(crate) fn segment<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    check_segment(what, value).map_err(|e| Error::InvalidArgument(e.reason))?;
    Ok(value)
}

/// Segments joined by `/`, each one valid.
pub(crate) fn path<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    for part in value.split('/') {
        segment(part, what)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_layout_exactly() {
        let keys = Keys::new("gochat", "production");
        assert_eq!(
            keys.config_scope("im-logic", "ratelimit").unwrap(),
            "/gochat/production/im-logic/ratelimit/"
        );
        assert_eq!(
            keys.registry("im-repo").unwrap(),
            "/gochat/production/_registry/im-repo/"
        );
        assert_eq!(
            keys.lock("jobs/cleanup").unwrap(),
            "/gochat/production/_locks/jobs/cleanup"
        );
        assert_eq!(
            keys.ids("im-gateway").unwrap(),
            "/gochat/production/_ids/im-gateway/"
        );
        assert!(keys.registry("_locks").is_err());
        assert!(keys.config_scope("svc", "a/b").is_err());
        assert!(keys.lock("a//b").is_err());
    }
}
