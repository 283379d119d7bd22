use std::collections::HashMap;

use ailogs::app::{Application, shutdown_signal};
use ailogs::cli::{Cli, Command, ServeArgs};
use ailogs::config::{Config, LogFormat};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut config = Config::load(cli.config.as_deref(), &env)?;
    let serve_args = match &cli.command {
        Command::Serve(args) => args,
        Command::Demo(args) => &args.serve,
    };
    apply_flags(&mut config, serve_args);
    ailogs::telemetry::init(&config);
    match cli.command {
        Command::Serve(_) => {
            let app = Application::build(config).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Demo(args) => ailogs::demo::run(config, args).await,
    }
}

fn apply_flags(config: &mut Config, args: &ServeArgs) {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.log_json {
        config.log_format = LogFormat::Json;
    }
}
