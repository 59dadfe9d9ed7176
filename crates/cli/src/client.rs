//! The gRPC connection every client command uses: server address, TLS (`https://` servers, a
//! CA, a client certificate for mutual TLS: `docs/tls.md`) and bearer token.

use std::path::PathBuf;

use anyhow::Context;
use mixsync_proto::v1::control_client::ControlClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The control plane client.
pub(crate) type Control = ControlClient<InterceptedService<Channel, Bearer>>;

/// Where the control plane is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
    /// The control plane's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MIXSYNC_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub(crate) server: String,
    /// Bearer token for the gRPC API (the control plane's MIXSYNC_API_TOKEN).
    #[arg(
        long = "api-token",
        global = true,
        env = "MIXSYNC_API_TOKEN",
        hide_env_values = true
    )]
    pub(crate) api_token: Option<String>,
    /// A file holding the bearer token (its first line), so the token need not appear in `ps` or
    /// the shell's history.
    #[arg(long = "api-token-file", global = true, env = "MIXSYNC_API_TOKEN_FILE")]
    pub(crate) api_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) tls: ClientTls,
}

/// TLS to the control plane (for `https://` servers).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ClientTls {
    /// PEM file of the CA that signed control's certificate (default: the system's CAs).
    #[arg(long = "ca-cert", global = true, env = "MIXSYNC_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM file of this client's certificate, for a control plane that requires one (mutual TLS).
    #[arg(
        long = "client-cert",
        global = true,
        env = "MIXSYNC_CLIENT_CERT",
        requires = "client_key"
    )]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(
        long = "client-key",
        global = true,
        env = "MIXSYNC_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub(crate) client_key: Option<PathBuf>,
}

impl ClientTls {
    fn is_set(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// The TLS settings: the given CA or the system's, and the client identity.
    fn config(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))
        };
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_cert {
            Some(path) => config.ca_certificate(Certificate::from_pem(read("--ca-cert", path)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(Identity::from_pem(
                read("--client-cert", cert)?,
                read("--client-key", key)?,
            ));
        }
        Ok(config)
    }
}

impl ServerArgs {
    /// The bearer token: `--api-token` / `MIXSYNC_API_TOKEN`, or the first line of
    /// `--api-token-file` / `MIXSYNC_API_TOKEN_FILE`.
    pub(crate) fn token(&self) -> anyhow::Result<Option<String>> {
        let token = self
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match (token, &self.api_token_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "both an API token and an API token file are set: keep one of --api-token \
                 (MIXSYNC_API_TOKEN) and --api-token-file (MIXSYNC_API_TOKEN_FILE)"
            ),
            (Some(token), None) => Ok(Some(token.to_owned())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the API token file {}", path.display())
                })?;
                let token = text.lines().next().unwrap_or_default().trim();
                anyhow::ensure!(
                    !token.is_empty(),
                    "the API token file {} is empty",
                    path.display()
                );
                Ok(Some(token.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Connects to the control plane: plain for `http://` servers, TLS for `https://` ones.
pub(crate) async fn connect(
    server: &str,
    token: Option<&str>,
    tls: &ClientTls,
) -> anyhow::Result<Control> {
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("`{server}` is not a valid server address"))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let https = server.starts_with("https://");
    if https {
        endpoint = endpoint.tls_config(tls.config()?)?;
    } else if tls.is_set() {
        // Never a silent downgrade: certificates given for a plain server are a mistake.
        anyhow::bail!(
            "--ca-cert, --client-cert and --client-key are for TLS: give the server as \
             https://… (MIXSYNC_SERVER), or leave them out for {server}"
        );
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| connect_error(server, https, &e))?;
    let _ = TRANSPORT.set((https, tls.client_cert.is_some()));
    let bearer = match token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .context("the API token has characters that cannot go in a header")?,
        ),
        None => None,
    };
    Ok(
        ControlClient::with_interceptor(channel, Bearer(bearer))
            .max_decoding_message_size(64 << 20),
    )
}

/// Why the control plane cannot be reached, in words: TLS problems name what to change.
fn connect_error(server: &str, https: bool, e: &tonic::transport::Error) -> anyhow::Error {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let hint = if chain.contains("UnknownIssuer") {
        "the server's certificate is not signed by a trusted CA: give the CA with --ca-cert \
         (MIXSYNC_CA_CERT)"
            .to_owned()
    } else if chain.contains("NotValidForName") {
        "the server's certificate is not valid for this host name: connect by a name the \
         certificate lists"
            .to_owned()
    } else if chain.contains("CertificateRequired") || chain.contains("certificate required") {
        "the server requires a client certificate: give --client-cert and --client-key".to_owned()
    } else if https && (chain.contains("InvalidContentType") || chain.contains("corrupt message")) {
        "the server does not speak TLS: use http:// for it".to_owned()
    } else {
        "is `mixsync serve control` running?".to_owned()
    };
    anyhow::anyhow!("cannot reach the control plane at {server} ({hint}): {chain}")
}

/// What a TLS alert from the server means for the user (with TLS 1.3 the server judges the
/// client certificate after the handshake, so it shows up on the first call, not on connect).
fn tls_refusal(status: &tonic::Status) -> Option<&'static str> {
    let mut chain = String::new();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        chain.push_str(&format!("{cause} {cause:?} "));
        source = cause.source();
    }
    if chain.contains("CertificateRequired") {
        Some(
            "the control plane requires a client certificate (mutual TLS): give --client-cert \
             and --client-key (MIXSYNC_CLIENT_CERT, MIXSYNC_CLIENT_KEY)",
        )
    } else if chain.contains("UnknownCA")
        || chain.contains("BadCertificate")
        || chain.contains("CertificateUnknown")
        || chain.contains("DecryptError")
    {
        Some(
            "the control plane refused this client certificate: it is not signed by a CA the \
             server trusts (MIXSYNC_GRPC_TLS_CLIENT_CA)",
        )
    } else {
        None
    }
}

/// How this process connected: over TLS, and with a client certificate. Set by [`connect`], read
/// by [`status_error`] to explain a connection the server closes after the handshake.
static TRANSPORT: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();

/// Turns a gRPC error into a one-line message for people.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    if let Some(refusal) = tls_refusal(&status) {
        return anyhow::anyhow!("{refusal}");
    }
    // Which of the two the first call meets when a mutual-TLS server drops a client without a
    // certificate is a race (the alert, or only the closed connection): say what is likely.
    let transport_failure = matches!(
        status.code(),
        tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled
    ) && (status.message().contains("transport error")
        || status.message().contains("canceled")
        || status.message().contains("connection"));
    match TRANSPORT.get() {
        Some((true, false)) if transport_failure => {
            return anyhow::anyhow!(
                "the control plane closed the connection after the TLS handshake ({}): if it \
                 requires a client certificate (mutual TLS), give --client-cert and --client-key \
                 (MIXSYNC_CLIENT_CERT, MIXSYNC_CLIENT_KEY)",
                status.message()
            );
        }
        Some((true, true)) if transport_failure => {
            return anyhow::anyhow!(
                "the control plane closed the connection after the TLS handshake ({}): it may \
                 have refused this client certificate (one not signed by a CA in its \
                 MIXSYNC_GRPC_TLS_CLIENT_CA)",
                status.message()
            );
        }
        _ => {}
    }
    let code = match status.code() {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unavailable => "control plane unavailable",
        tonic::Code::Unimplemented => "not implemented",
        _ => "error",
    };
    anyhow::anyhow!("{code}: {}", status.message())
}
