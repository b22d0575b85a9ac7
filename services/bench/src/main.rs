//! `gochat-bench`: load for a running gochat, figures for docs/benchmarks.md.

mod chat;
mod client;
mod group;
mod idle;
mod report;

use std::time::Duration;

use clap::{Parser, Subcommand};

/// A load tool for gochat.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A gateway's base URL; give two to send through the first and receive through the last.
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// The server's pid, to report its resident memory (`/proc/PID/status`).
    #[arg(long)]
    pid: Option<u32>,
    /// Requests (registrations, logins, connections) in flight during setup.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// N users with M idle connections each: the server's memory per connection.
    Idle {
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        conns: usize,
        /// How long the connections stay open after the last one is up.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        hold: Duration,
    },
    /// N pairs of users in single chats, senders together at R messages/s.
    Chat {
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Messages per second, all senders together.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        duration: Duration,
    },
    /// One group of N online members; its owner sends K messages at R/s.
    Group {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 20)]
        messages: usize,
        #[arg(long, default_value_t = 2)]
        rate: u32,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    println!(
        "command: gochat-bench {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let setup = client::Setup::new(&args.urls, args.setup_concurrency);
    let outcome = match args.scenario {
        Scenario::Idle { users, conns, hold } => {
            idle::run(&setup, args.pid, users, conns, hold).await
        }
        Scenario::Chat {
            pairs,
            rate,
            duration,
        } => chat::run(&setup, args.pid, pairs, rate, duration).await,
        Scenario::Group {
            members,
            messages,
            rate,
        } => group::run(&setup, args.pid, members, messages, rate).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gochat-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
