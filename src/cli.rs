//! Command line: `ailogs serve`, `ailogs demo`, and the operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ailogs",
    version,
    about = "Streaming log pipeline with materialized views for AI applications"
)]
pub struct Cli {
    /// TOML config file (also AILOGS_CONFIG). Environment variables AILOGS_* override it.
    #[arg(long, global = true, env = "AILOGS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ingest endpoints, pipeline and API.
    Serve(ServeArgs),
    /// Serve, and feed it realistic traffic from an AI application with incidents.
    Demo(DemoArgs),
    /// Write the demo's simulated AI application's logs to files, for a shipper to tail.
    Simulate(SimulateArgs),
    /// Apply the Postgres migrations and load the shipped model prices.
    Migrate,
    /// A deployment's one-shot: `migrate`, then `kafka create-topics`.
    Init {
        /// Override every topic's replication factor (1 for a single broker).
        #[arg(long)]
        replication_factor: Option<i32>,
    },
    /// Run a pipeline consumer: ai-logs.raw -> Postgres, exactly once (needs Kafka and Postgres).
    Consume,
    /// Kafka administration.
    #[command(subcommand)]
    Kafka(KafkaCommand),
    /// Billing reports from the Postgres usage tables.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// API keys: kept in Postgres (with AILOGS_DATABASE_URL), or printed for the config file.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Recent API and MCP calls, from the audit log (Postgres `ai_query_history`).
    Audit(AuditArgs),
    /// Serve the MCP tools over stdio, as a bridge to a running ailogs (for desktop agents
    /// and IDEs). The API key comes from AILOGS_API_KEY.
    Mcp(McpArgs),
}

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// The running ailogs to answer from.
    #[arg(long, env = "AILOGS_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Sent as a bearer token with every call; unset for an open API.
    #[arg(long, env = "AILOGS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a new random key. With a database it is stored there (as its SHA-256) and every
    /// server picks it up within `auth.reload_s`; without one (or with --config-entry) the
    /// `[[auth.api_keys]]` entry to add to the config file is printed. The key is shown once.
    New {
        /// Who holds the key (shown in logs and the audit log instead of the key).
        #[arg(long)]
        name: String,
        /// admin (everything), reader (queries) or ingest (pushes only).
        #[arg(long, default_value = "reader", value_parser = ["admin", "reader", "ingest"])]
        role: String,
        /// A workspace the key may read; repeat for several. Left out: every workspace.
        #[arg(long = "workspace")]
        workspaces: Vec<String>,
        /// Query requests per minute for this key (overrides `rate_limits.query_per_minute`).
        #[arg(long)]
        query_per_minute: Option<u32>,
        /// Print a config-file entry instead of storing the key in Postgres.
        #[arg(long)]
        config_entry: bool,
    },
    /// The keys stored in Postgres (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a stored key by id, or every active key with this name.
    Revoke { id_or_name: String },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many calls, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Only this key holder's calls.
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KafkaCommand {
    /// Create the topics of kafka/topics.toml that do not exist yet.
    CreateTopics {
        /// Override every topic's replication factor (1 for a single broker).
        #[arg(long)]
        replication_factor: Option<i32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Usage and cost per workspace and model for one month, reconciled with ai_operations.
    Report {
        /// The month, YYYY-MM (UTC).
        #[arg(long)]
        month: String,
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
        format: ReportFormat,
    },
    /// Recompute costs in [from, to) with the current model_prices (after a price change).
    Reprice {
        /// Start: YYYY-MM, YYYY-MM-DD or RFC3339 (UTC).
        #[arg(long)]
        from: String,
        /// End (exclusive), same forms.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (overrides AILOGS_LISTEN and the config file).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Write logs as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Each service writes `<dir>/<service>/app.log`.
    #[arg(long, default_value = "/var/log/ai-apps")]
    pub dir: PathBuf,
    /// User requests per second to simulate (each writes 1-5 lines).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// A file larger than this is rotated to `app.log.1`.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_file_bytes: u64,
    /// Random seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    pub duration_s: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// User requests per second to simulate (each writes 1-5 lines).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Minutes of past traffic to load at start-up, so queries have answers at once.
    #[arg(long, default_value_t = 15)]
    pub backfill_minutes: u32,
    /// Random seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after this many seconds (default: run until ctrl-c).
    #[arg(long)]
    pub duration_s: Option<u64>,
}
