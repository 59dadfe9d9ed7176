use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{endpoint, parse_url};
use crate::{BusConfig, BusError, topology};

/// How long one connection attempt (TCP, TLS, AMQP handshake) may take: a broker that
/// accepts the socket but never answers must not hang a service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One AMQP connection of a [`crate::Bus`] (it has one for publishing and one for consuming),
/// re-established (topology included) by whoever first needs it after it dropped.
pub(crate) struct Link {
    uri: AMQPUri,
    endpoint: String,
    prefix: String,
    connection_name: String,
    current: Mutex<Option<Arc<Connection>>>,
    /// Set once the broker closed a connection instead of declaring a quorum queue.
    classic_only: AtomicBool,
    closed: CancellationToken,
}

impl Link {
    /// Connects and declares the topology, retrying an unreachable broker for `patience`
    /// (`None`: for as long as it takes; a service may start before RabbitMQ is up). `role`
    /// names the connection on the broker (`publish`, `consume`).
    pub(crate) async fn open(
        config: &BusConfig,
        role: &str,
        patience: Option<Duration>,
    ) -> Result<Arc<Self>, BusError> {
        config.validate()?;
        let uri = parse_url(&config.url)?;
        let connection_name = if config.prefix.is_empty() {
            format!("mixsync {role}")
        } else {
            format!("mixsync {role} prefix={}", config.prefix)
        };
        let link = Self {
            endpoint: endpoint(&uri),
            uri,
            prefix: config.prefix.clone(),
            connection_name,
            current: Mutex::new(None),
            classic_only: AtomicBool::new(false),
            closed: CancellationToken::new(),
        };
        let deadline = patience.map(|p| Instant::now() + p);
        let mut backoff = Backoff::new();
        let mut attempts = 0u32;
        loop {
            match link.establish().await {
                Ok(connection) => {
                    if attempts > 0 {
                        tracing::info!(endpoint = %link.endpoint, attempts, "rabbitmq is up");
                    }
                    *link.current.lock().await = Some(Arc::new(connection));
                    return Ok(Arc::new(link));
                }
                Err(error) if error.is_unreachable() => {
                    let delay = backoff.next_delay();
                    if deadline.is_some_and(|d| Instant::now() + delay > d) {
                        return Err(error);
                    }
                    if attempts < 3 || attempts.is_multiple_of(10) {
                        tracing::warn!(endpoint = %link.endpoint, %error, attempts, "waiting for rabbitmq");
                    }
                    attempts += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The live connection, reconnecting with backoff (for as long as it takes) when it
    /// dropped. Fails only once the link is closed.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut current = self.current.lock().await;
        if self.closed.is_cancelled() {
            return Err(BusError::Closed);
        }
        if let Some(connection) = current.as_ref().filter(|c| c.status().connected()) {
            return Ok(Arc::clone(connection));
        }
        *current = None;
        let mut backoff = Backoff::new();
        loop {
            match self.establish().await {
                Ok(connection) => {
                    tracing::info!(endpoint = %self.endpoint, "reconnected to rabbitmq");
                    let connection = Arc::new(connection);
                    *current = Some(Arc::clone(&connection));
                    return Ok(connection);
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(endpoint = %self.endpoint, %error, ?delay, "reconnecting to rabbitmq failed; retrying");
                    self.pause(delay).await?;
                }
            }
        }
    }

    /// Declares the topology again on the live connection (a queue was deleted under us).
    pub(crate) async fn redeclare(&self) -> Result<(), BusError> {
        let connection = self.connection().await?;
        topology::declare(&connection, &self.prefix, self.quorum()).await
    }

    /// Sleeps for `delay`, or fails at once when the link is closed.
    pub(crate) async fn pause(&self, delay: Duration) -> Result<(), BusError> {
        tokio::select! {
            () = self.closed.cancelled() => Err(BusError::Closed),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Cancelled when the link is closed.
    pub(crate) fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Stops every reconnect loop and closes the connection.
    pub(crate) async fn close(&self) {
        self.closed.cancel();
        let Some(connection) = self.current.lock().await.take() else {
            return;
        };
        if let Err(error) = connection.close(200, "OK".into()).await {
            tracing::debug!(%error, "closing the rabbitmq connection failed");
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn prefixed(&self, name: &str) -> String {
        topology::prefixed(&self.prefix, name)
    }

    fn quorum(&self) -> bool {
        !self.classic_only.load(Ordering::Relaxed)
    }

    /// One connection attempt, topology included.
    async fn establish(&self) -> Result<Connection, BusError> {
        loop {
            let properties = ConnectionProperties::default()
                .with_connection_name(self.connection_name.as_str().into());
            let connect = Connection::connect_uri(self.uri.clone(), properties);
            let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| BusError::ConnectTimeout {
                    endpoint: self.endpoint.clone(),
                    after: CONNECT_TIMEOUT,
                })?
                .map_err(|source| BusError::Connect {
                    endpoint: self.endpoint.clone(),
                    source,
                })?;
            let quorum = self.quorum();
            match topology::declare(&connection, &self.prefix, quorum).await {
                Ok(()) => return Ok(connection),
                Err(error) if quorum && topology::refuses_quorum_hard(&error) => {
                    tracing::warn!(%error, "rabbitmq does not support quorum queues; using classic queues");
                    self.classic_only.store(true, Ordering::Relaxed);
                }
                Err(error) => return Err(error),
            }
        }
    }
}
