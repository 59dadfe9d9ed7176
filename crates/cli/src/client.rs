//! The gRPC connection every client command uses: server address and bearer token.

use std::path::PathBuf;

use anyhow::Context;
use mixsync_proto::v1::control_client::ControlClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

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

/// Connects to the control plane.
pub(crate) async fn connect(server: &str, token: Option<&str>) -> anyhow::Result<Control> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("`{server}` is not a valid server address"))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the control plane at {server} (is `mixsync serve control` running?)")
    })?;
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

/// Turns a gRPC error into a one-line message for people.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
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
