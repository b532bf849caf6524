//! Probing again over connections already open: apply's second, locked probe runs over
//! the first probe's connections (one SSH handshake per host per apply, not two).

use super::{Connector, RemoteOutput, Transport, TransportError};
use crate::inventory::Host;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A connection shared between its first user and a [`Reuse`] connector.
impl<T: Transport> Transport for Arc<T> {
    fn host(&self) -> &str {
        (**self).host()
    }

    fn run(
        &self,
        script: String,
    ) -> impl Future<Output = Result<RemoteOutput, TransportError>> + Send {
        (**self).run(script)
    }

    fn run_for(
        &self,
        script: String,
        limit: Duration,
    ) -> impl Future<Output = Result<RemoteOutput, TransportError>> + Send {
        (**self).run_for(script, limit)
    }
}

/// Hands out the connections it was given, each once; every other connect (a host
/// that had none, a second connect to the same host, as after a broken connection)
/// opens a new one with the inner connector.
pub struct Reuse<C: Connector> {
    inner: Arc<C>,
    open: Mutex<BTreeMap<String, Arc<C::Conn>>>,
}

impl<C: Connector> Reuse<C> {
    pub fn new(inner: Arc<C>, open: BTreeMap<String, Arc<C::Conn>>) -> Reuse<C> {
        Reuse {
            inner,
            open: Mutex::new(open),
        }
    }
}

impl<C: Connector> Connector for Reuse<C> {
    type Conn = Arc<C::Conn>;

    async fn connect(&self, host: &Host) -> Result<Arc<C::Conn>, TransportError> {
        let open = self
            .open
            .lock()
            .expect("open connections")
            .remove(&host.name);
        match open {
            Some(conn) => Ok(conn),
            None => self.inner.connect(host).await.map(Arc::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts connects; its connections answer with their serial number.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    struct Numbered(String, usize);

    impl Transport for Numbered {
        fn host(&self) -> &str {
            &self.0
        }
        async fn run(&self, _script: String) -> Result<RemoteOutput, TransportError> {
            Ok(RemoteOutput {
                stdout: self.1.to_string(),
                ..RemoteOutput::default()
            })
        }
    }

    impl Connector for Counting {
        type Conn = Numbered;
        async fn connect(&self, host: &Host) -> Result<Numbered, TransportError> {
            Ok(Numbered(
                host.name.clone(),
                self.0.fetch_add(1, Ordering::SeqCst),
            ))
        }
    }

    fn host(name: &str) -> Host {
        Host {
            name: name.into(),
            address: name.into(),
            roles: Vec::new(),
            gpus: None,
            circuit: None,
            base_watts: None,
            psu_watts: None,
            tailscale: Default::default(),
        }
    }

    #[tokio::test]
    async fn hands_out_each_open_connection_once_then_connects_anew() {
        let inner = Arc::new(Counting::default());
        let head = Arc::new(inner.connect(&host("head")).await.unwrap());
        let reuse = Reuse::new(inner.clone(), BTreeMap::from([("head".into(), head)]));
        let again = reuse.connect(&host("head")).await.unwrap();
        assert_eq!(again.run(String::new()).await.unwrap().stdout, "0");
        assert_eq!(inner.0.load(Ordering::SeqCst), 1, "no new connection");
        // A second connect (a release after a broken connection) and a host that had
        // none: new connections.
        let fresh = reuse.connect(&host("head")).await.unwrap();
        assert_eq!(fresh.run(String::new()).await.unwrap().stdout, "1");
        let node = reuse.connect(&host("node1")).await.unwrap();
        assert_eq!(node.host(), "node1");
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
    }
}
