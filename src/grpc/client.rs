//! `ticket-authz check` and `list`: a command-line client for a running
//! service, printing JSON, so it can be tried without grpcurl.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::core::Action;
use crate::grpc::convert::{action_code, reason_of, resource_kind_code};
use crate::grpc::pb;
use crate::grpc::pb::ticket_authz_client::TicketAuthzClient;
use crate::model::ResourceKind;

/// Where the service is and how to reach it. Every flag is global, so that
/// `list --server URL tickets …` and `list tickets --server URL …` both
/// work: users put connection flags after the subcommand as often as
/// before it.
#[derive(Debug, Args)]
pub struct Connection {
    /// The service's address (`https://` for TLS).
    #[arg(
        long,
        global = true,
        env = "TICKET_AUTHZ_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    #[command(flatten)]
    pub credentials: Credentials,
}

/// How a client proves itself and whom it trusts.
#[derive(Debug, Default, Args)]
pub struct Credentials {
    /// File holding the bearer token to send.
    #[arg(long, global = true, env = "TICKET_AUTHZ_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for `https://` servers.
    #[arg(long, global = true, env = "TICKET_AUTHZ_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), for mutual TLS.
    #[arg(
        long,
        global = true,
        env = "TICKET_AUTHZ_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM), for mutual TLS.
    #[arg(
        long,
        global = true,
        env = "TICKET_AUTHZ_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[arg(long)]
    pub user: String,
    /// view, comment, edit, close, delete, reassign, create, manage_access,
    /// company_view, company_edit, company_manage, has_flag, or an action
    /// of the service-desk sections (project_view … user_manage).
    #[arg(long)]
    pub action: String,
    #[arg(long, default_value = "")]
    pub ticket: String,
    #[arg(long, default_value = "")]
    pub organisation: String,
    #[arg(long, default_value = "")]
    pub group: String,
    #[arg(long, default_value = "")]
    pub company: String,
    #[arg(long, default_value = "")]
    pub flag: String,
    /// The project, task, wiki page, … or target user of a section action.
    #[arg(long, default_value = "")]
    pub resource: String,
    #[arg(long, default_value_t = 0)]
    pub min_revision: u64,
    /// Ask for the explanation steps.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub what: ListWhat,
}

#[derive(Debug, Subcommand)]
pub enum ListWhat {
    /// The tickets a user may view.
    Tickets {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        organisation: String,
        #[arg(long, default_value = "")]
        group: String,
        /// Only these statuses (repeatable).
        #[arg(long = "status")]
        statuses: Vec<String>,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
    },
    /// The users who may view a ticket.
    Viewers {
        #[arg(long)]
        ticket: String,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
    },
    /// The resources of one service-desk section a user may view.
    Resources {
        /// project, task, wiki_page, inventory_item, invoice, lead,
        /// agenda_event or download.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
    },
}

/// A client of the service with the bearer token, when given, on every call.
pub type Client =
    TicketAuthzClient<tonic::service::interceptor::InterceptedService<Channel, TokenInterceptor>>;

/// Adds the bearer token, when there is one, to every call.
#[derive(Clone)]
pub struct TokenInterceptor(Option<MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for TokenInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TokenInterceptor(<redacted>)"
        } else {
            "TokenInterceptor(None)"
        })
    }
}

impl tonic::service::Interceptor for TokenInterceptor {
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

impl TokenInterceptor {
    /// Sends `authorization: <token>` (the whole header value) when given.
    pub fn new(token: Option<http::HeaderValue>) -> Self {
        Self(token.and_then(|t| t.to_str().ok()?.parse().ok()))
    }
}

/// Connects to `server` (`http://` or `https://`) with `c`'s credentials.
pub async fn connect(server: &str, c: &Credentials) -> Result<Client, String> {
    let (channel, token) = channel(server, c).await?;
    Ok(TicketAuthzClient::with_interceptor(
        channel,
        TokenInterceptor::new(token),
    ))
}

/// An HTTP/2 channel to `server` with `c`'s TLS material, and the
/// `authorization` value of its token file, for any client on the port.
pub async fn channel(
    server: &str,
    c: &Credentials,
) -> Result<(Channel, Option<http::HeaderValue>), String> {
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| format!("--server: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &c.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| format!("--ca-cert: {}: {e}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(cert), Some(key)) = (&c.client_cert, &c.client_key) {
            let cert = std::fs::read(cert)
                .map_err(|e| format!("--client-cert: {}: {e}", cert.display()))?;
            let key =
                std::fs::read(key).map_err(|e| format!("--client-key: {}: {e}", key.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("--server: {e}"))?;
    }
    let token = match &c.token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--token-file: {}: {e}", path.display()))?;
            Some(
                format!("Bearer {}", text.trim())
                    .parse()
                    .map_err(|_| "--token-file: the token is not valid header text".to_owned())?,
            )
        }
    };
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    Ok((channel, token))
}

/// `INVALID_ARGUMENT: …`, as gRPC documents its codes.
fn status_text(status: &tonic::Status) -> String {
    let mut name = String::new();
    for (i, c) in format!("{:?}", status.code()).chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    format!("{name}: {}", status.message())
}

fn reason_name(code: i32) -> serde_json::Value {
    reason_of(code).map_or(serde_json::Value::Null, |r| json!(r.name()))
}

async fn check(args: CheckArgs) -> Result<serde_json::Value, String> {
    let action = Action::parse(&args.action)
        .ok_or_else(|| format!("--action: unknown action `{}`", args.action))?;
    let mut client = connect(&args.connection.server, &args.connection.credentials).await?;
    let response = client
        .check_access(pb::CheckAccessRequest {
            user_id: args.user,
            action: action_code(action),
            ticket_id: args.ticket,
            organisation_id: args.organisation,
            group_id: args.group,
            company_id: args.company,
            flag: args.flag,
            min_revision: args.min_revision,
            explain: args.explain,
            ticket: None,
            resource_id: args.resource,
        })
        .await
        .map_err(|s| status_text(&s))?
        .into_inner();
    Ok(json!({
        "allowed": response.allowed,
        "reason": reason_name(response.reason),
        "warning": reason_name(response.warning),
        "revision": response.revision,
        "explanation": response.explanation,
    }))
}

async fn list(args: ListArgs) -> Result<serde_json::Value, String> {
    let mut client = connect(&args.connection.server, &args.connection.credentials).await?;
    let status = |s: tonic::Status| status_text(&s);
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut revision = 0;
    loop {
        let (page, next, rev) = match &args.what {
            ListWhat::Tickets {
                user,
                organisation,
                group,
                statuses,
                page_size,
            } => {
                let r = client
                    .list_visible_tickets(pb::ListVisibleTicketsRequest {
                        user_id: user.clone(),
                        page_size: *page_size,
                        page_token: token.clone(),
                        organisation_id: organisation.clone(),
                        group_id: group.clone(),
                        statuses: statuses.clone(),
                        min_revision: revision,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                (r.ticket_ids, r.next_page_token, r.revision)
            }
            ListWhat::Viewers { ticket, page_size } => {
                let r = client
                    .list_ticket_viewers(pb::ListTicketViewersRequest {
                        ticket_id: ticket.clone(),
                        page_size: *page_size,
                        page_token: token.clone(),
                        min_revision: revision,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                (r.user_ids, r.next_page_token, r.revision)
            }
            ListWhat::Resources {
                kind,
                user,
                page_size,
            } => {
                let kind = ResourceKind::parse(kind).ok_or_else(|| {
                    format!(
                        "--kind: unknown kind `{kind}`, expected one of {}",
                        ResourceKind::NAMES.join(", ")
                    )
                })?;
                let r = client
                    .list_visible_resources(pb::ListVisibleResourcesRequest {
                        user_id: user.clone(),
                        kind: resource_kind_code(kind),
                        page_size: *page_size,
                        page_token: token.clone(),
                        min_revision: revision,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                (r.resource_ids, r.next_page_token, r.revision)
            }
        };
        ids.extend(page);
        // Later pages are asked at least at the first page's revision.
        revision = revision.max(rev);
        if next.is_empty() {
            return Ok(json!({ "ids": ids, "revision": revision }));
        }
        token = next;
    }
}

fn run(
    name: &str,
    work: impl std::future::Future<Output = Result<serde_json::Value, String>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ticket-authz {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ticket-authz {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn main_check(args: CheckArgs) -> ExitCode {
    run("check", check(args))
}

pub fn main_list(args: ListArgs) -> ExitCode {
    run("list", list(args))
}
