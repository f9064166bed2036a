//! `settled`: the Settle node daemon.
//!
//! ```text
//! settled --dev                      initialise a dev chain if needed, then run
//! settled init --dev --datadir D     write a dev chain spec and fresh keys
//! settled run --datadir D            run the node
//! settled verify --datadir D         check the database against its blocks
//! settled testnet --validators 4 --full-nodes 1 --dir D
//!                                    write a local loopback network's spec, keys, configs
//! settled membership propose|sign|show|submit --datadir D
//!                                    change validators or permitted nodes by transaction
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use settle_node::config::Config;
use settle_node::daemon::{Shutdown, serve};
use settle_node::datadir::{self, DataDir};
use settle_node::membership_cli::{self, MembershipCommand};
use settle_node::mempool_file;
use settle_node::node::{Node, now_ms};
use settle_node::store::{ChainStore, StoreOptions};
use settle_node::verify::verify_chain;

#[derive(Parser, Debug)]
#[command(name = "settled", version, about = "Settle node daemon")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Data directory (default: ~/.settle, or ~/.settle/dev with --dev).
    #[arg(long, global = true, value_name = "DIR")]
    datadir: Option<PathBuf>,
    /// Development chain: one local validator, keys in the data directory.
    #[arg(long, global = true)]
    dev: bool,
    /// JSON-RPC port on 127.0.0.1 (overrides settled.toml).
    #[arg(long, global = true, value_name = "PORT")]
    rpc_port: Option<u16>,
    /// Peer-to-peer port (overrides settled.toml).
    #[arg(long, global = true, value_name = "PORT")]
    p2p_port: Option<u16>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a chain spec and fresh validator and issuer keys into the data directory.
    Init,
    /// Run the node (the default).
    Run,
    /// Recompute the UTXO-set commitment and check every block and coin in the database.
    Verify,
    /// Write the chain spec, keys and configurations of a local network on loopback.
    Testnet(TestnetArgs),
    /// Change the validator set or the permitted nodes by a transaction the validators
    /// sign (propose, sign, show, submit).
    #[command(subcommand)]
    Membership(MembershipCommand),
}

#[derive(Args, Debug)]
struct TestnetArgs {
    /// Number of validators (power 1 each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    validators: u16,
    /// Number of full nodes (followers that never sign).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=63))]
    full_nodes: u16,
    /// Directory to write into (must be empty or absent): node0, node1, ... and keys/.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// First port: node i uses base+2i for RPC and base+2i+1 for p2p.
    #[arg(long, default_value_t = 17400, value_name = "PORT")]
    base_port: u16,
    /// Settings appended to every node's settled.toml (TOML starting with a [section]).
    #[arg(long, value_name = "TOML")]
    extra_config: Option<String>,
}

fn default_datadir(dev: bool) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let base = home.join(".settle");
    if dev { base.join("dev") } else { base }
}

/// Logs to stderr. When stderr is a terminal, catching up shows a progress bar, and
/// every log line is written with the bar lifted ([`BarSafeStderr`]) so neither
/// tears the other; otherwise the plain log lines are all there is.
fn init_logging(filter: &str) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = if terminal {
        let bars = indicatif::MultiProgress::new();
        settle_consensus::node::enable_sync_progress_bar(bars.clone());
        BoxMakeWriter::new(move || BarSafeStderr(bars.clone()))
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(terminal)
        .with_writer(writer)
        .with_filter(filter)
        .with_filter(EngineNoise);
    // Sees only the engine's ERROR lines, so nothing else is built for it.
    let demoted =
        DemotedEngineErrors::default().with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            *meta.level() == tracing::Level::ERROR && is_engine_target(meta.target())
        }));
    tracing_subscriber::registry()
        .with(layer)
        .with(demoted)
        .init();
}

/// How often one kind of expected engine error is shown (as a WARN line).
const ENGINE_NOISE_INTERVAL_MS: u64 = 30_000;

/// Engine ERROR lines that report expected conditions, and what they mean. An ERROR
/// line must always mean an operator has to act: a peer that is down shows in
/// `getpeerinfo` and `getconsensusinfo`, and actors and channels close when the node
/// stops. These are shown at WARN instead, at most once per interval per kind, with
/// the count of those left out.
const EXPECTED_ENGINE_ERRORS: &[(&str, &str)] = &[
    (
        "Failed to negotiate transport protocol",
        "a peer could not be dialled (it is down or unreachable); dialling continues",
    ),
    (
        "Error dialing peer",
        "a peer could not be dialled (it is down or unreachable); dialling continues",
    ),
    (
        // Malachite gives up on a peer after a few dial attempts and tries again later.
        "Failed to dial peer",
        "a peer could not be dialled (it is down or unreachable); dialling continues",
    ),
    (
        "Actor has died",
        "a consensus engine actor stopped (the node is stopping)",
    ),
    (
        "channel closed",
        "a consensus engine channel closed (a peer went away or the node is stopping)",
    ),
];

/// Whether `target` is the consensus engine's (Malachite and the actor runtime).
fn is_engine_target(target: &str) -> bool {
    target.starts_with("arc_malachitebft") || target.starts_with("ractor")
}

/// Which expected engine error `message` is, if any. "Failed to negotiate" is checked
/// before "Error dialing peer", which usually wraps it.
fn expected_engine_error(message: &str) -> Option<usize> {
    EXPECTED_ENGINE_ERRORS
        .iter()
        .position(|(needle, _)| message.contains(needle))
}

/// The `message` field of an event.
fn event_message(event: &tracing::Event<'_>) -> String {
    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    let mut m = Message(String::new());
    event.record(&mut m);
    m.0
}

/// Drops the engine's "NoPeersSubscribedToTopic" errors (a lone dev validator has no
/// peer to publish to) and the expected errors of [`EXPECTED_ENGINE_ERRORS`], which
/// [`DemotedEngineErrors`] shows at WARN instead.
struct EngineNoise;

impl<S> tracing_subscriber::layer::Filter<S> for EngineNoise {
    fn enabled(
        &self,
        _meta: &tracing::Metadata<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        let meta = event.metadata();
        if *meta.level() != tracing::Level::ERROR || !is_engine_target(meta.target()) {
            return true;
        }
        let message = event_message(event);
        !message.contains("NoPeersSubscribedToTopic") && expected_engine_error(&message).is_none()
    }
}

/// Lets one line per kind through per interval; counts the rest.
#[derive(Default)]
struct RateLimiter {
    /// Per kind: when a line was last let through, and how many were held back since.
    last: std::sync::Mutex<std::collections::HashMap<usize, (std::time::Instant, u64)>>,
}

impl RateLimiter {
    /// `Some(held back since the last one)` when a line of `kind` may be shown at `now`.
    fn allow(&self, kind: usize, now: std::time::Instant) -> Option<u64> {
        let interval = std::time::Duration::from_millis(ENGINE_NOISE_INTERVAL_MS);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get_mut(&kind) {
            Some((at, held)) if now.duration_since(*at) < interval => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let shown = *held;
                *at = now;
                *held = 0;
                Some(shown)
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Shows the engine's expected errors at WARN, rate-limited (see [`EngineNoise`]).
#[derive(Default)]
struct DemotedEngineErrors(RateLimiter);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for DemotedEngineErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _cx: tracing_subscriber::layer::Context<'_, S>) {
        let message = event_message(event);
        let Some(kind) = expected_engine_error(&message) else {
            return;
        };
        if let Some(held_back) = self.0.allow(kind, std::time::Instant::now()) {
            let detail: String = message.chars().take(300).collect();
            tracing::warn!(
                target: "settled::engine",
                held_back,
                detail = %detail,
                "{}",
                EXPECTED_ENGINE_ERRORS[kind].1
            );
        }
    }
}

/// Stderr with the progress bars hidden while a log line is written. The formatter
/// hands over each event in one `write_all`, so a line is never split by a redraw.
struct BarSafeStderr(indicatif::MultiProgress);

impl std::io::Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.suspend(|| std::io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

type Fallible = Result<(), Box<dyn std::error::Error>>;

fn init(common: &Common, dir: &DataDir) -> Fallible {
    if !common.dev {
        return Err("only dev chains can be initialised here: pass --dev".into());
    }
    let _lock = dir.lock()?;
    let made = datadir::init_dev(dir, now_ms())?;
    let chain_id = made.spec.chain_id()?;
    println!("initialised a dev chain in {}", dir.root().display());
    println!("  chain id:        {chain_id}");
    println!(
        "  validator key:   {} ({})",
        made.validator,
        dir.validator_key().display()
    );
    println!(
        "  cash issuer:     {} ({})",
        made.issuer_cash,
        dir.issuer_cash_key().display()
    );
    println!(
        "  security issuer: {} ({})",
        made.issuer_security,
        dir.issuer_security_key().display()
    );
    Ok(())
}

fn testnet(args: &TestnetArgs) -> Fallible {
    let made = datadir::init_testnet(
        &args.dir,
        usize::from(args.validators),
        usize::from(args.full_nodes),
        args.base_port,
        now_ms(),
        args.extra_config.as_deref().unwrap_or(""),
    )?;
    println!(
        "wrote a testnet of {} nodes in {} (chain id {})",
        made.nodes.len(),
        args.dir.display(),
        made.spec.chain_id()?
    );
    for node in &made.nodes {
        println!(
            "  {} {:9} rpc 127.0.0.1:{}  p2p {}",
            node.name,
            if node.validator {
                "validator"
            } else {
                "full node"
            },
            node.rpc_port,
            node.multiaddr
        );
    }
    println!("  issuer keys in {}", made.keys_dir.display());
    println!(
        "run each node with: settled --datadir {}/node<i>",
        args.dir.display()
    );
    Ok(())
}

fn load_config(common: &Common, dir: &DataDir) -> Result<Config, Box<dyn std::error::Error>> {
    let mut config = Config::load(&dir.config())?;
    if let Some(p) = common.rpc_port {
        config.rpc_port = p;
    }
    if let Some(p) = common.p2p_port {
        config.p2p_port = p;
    }
    Ok(config)
}

fn run(common: &Common, dir: &DataDir) -> Fallible {
    // The clock test hook, refused before anything starts if it does not parse.
    let offset_ms = settle_node::node::clock_offset_ms()?;
    let lock = dir.lock()?;
    if !dir.is_initialised() && common.dev {
        let made = datadir::init_dev(dir, now_ms())?;
        eprintln!(
            "initialised a dev chain in {} (chain id {})",
            dir.root().display(),
            made.spec.chain_id()?
        );
    }
    let config = load_config(common, dir)?;
    init_logging(&config.log);
    mempool_file::clean_temporary_files(dir.root());
    if offset_ms != 0 {
        tracing::warn!(
            offset_ms,
            "test hook {} shifts this node's clock",
            settle_node::node::CLOCK_OFFSET_ENV
        );
    }
    let (spec, spec_toml) = dir.read_chain_spec()?;
    if common.dev && spec.network != settle_chain::Network::Dev {
        return Err(format!(
            "--dev given, but {} holds a {} chain",
            dir.root().display(),
            spec.network
        )
        .into());
    }
    let validator = if dir.validator_key().exists() {
        let key = datadir::read_key(&dir.validator_key())?;
        if spec
            .validators
            .get(&key.x_only_public_key().0.serialize())
            .is_none()
        {
            // A membership change may add it later; until then the node only follows.
            tracing::info!(
                "keys/validator.key is not in the genesis validator set; this node signs \
                 only at heights where a membership change made it a validator"
            );
        }
        Some(key)
    } else {
        None
    };
    let node = Node::open(&dir.chainstate(), spec, &spec_toml, config, validator)?;
    let tip = node.tip()?;
    tracing::info!(
        chain = %node.spec.name,
        chain_id = %node.chain_id,
        height = tip.height,
        tip = %tip.hash,
        datadir = %dir.root().display(),
        "chainstate opened"
    );
    let node = Arc::new(node);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shutdown = Shutdown::new();
    let served = runtime.block_on(serve(Arc::clone(&node), dir, shutdown));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    // Only a mempool that holds something is written: after a start that failed before
    // the saved one was read back, that file must survive.
    if !node.mempool().is_empty() {
        // A failure is logged there, naming every transaction dropped.
        if let Ok((count, path)) = mempool_file::save_for_restart(&node, dir.root()) {
            tracing::info!(count, path = %path.display(), "mempool saved for the next start");
        }
    }
    let halted = node.storage_halt();
    if halted.is_none()
        && let Err(e) = node.store.flush()
    {
        tracing::error!(error = %e, "flushing the database at shutdown failed (no connected block is lost)");
    }
    drop(node);
    drop(lock);
    served?;
    if let Some(h) = halted {
        return Err(format!("stopped while the disk was full: {}", h.describe()).into());
    }
    tracing::info!("settled stopped");
    Ok(())
}

fn verify(dir: &DataDir) -> Result<bool, Box<dyn std::error::Error>> {
    let _lock = dir.lock()?;
    let (spec, _) = dir.read_chain_spec()?;
    let store = ChainStore::open(&dir.chainstate(), StoreOptions::default())?;
    let report = verify_chain(&store, &spec)?;
    match &report.problem {
        None => {
            println!(
                "ok: {} blocks (up to height {}) and {} coins verified; utxo commitment {}",
                report.blocks_checked, report.height, report.coins_checked, report.utxo_commitment
            );
            Ok(true)
        }
        Some(problem) => {
            println!("verification FAILED: {problem}");
            Ok(false)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = DataDir::new(
        cli.common
            .datadir
            .clone()
            .unwrap_or_else(|| default_datadir(cli.common.dev)),
    );
    let result = match cli.command {
        Some(Command::Init) => init(&cli.common, &dir).map(|()| true),
        Some(Command::Verify) => verify(&dir),
        Some(Command::Testnet(ref args)) => testnet(args).map(|()| true),
        Some(Command::Membership(ref command)) => load_config(&cli.common, &dir)
            .and_then(|config| membership_cli::run(command, &dir, config.rpc_port))
            .map(|()| true),
        Some(Command::Run) | None => run(&cli.common, &dir).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("settled: error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_engine_errors_are_recognised_and_others_are_not() {
        let negotiate = "Error dialing peer: Failed to negotiate transport protocol(s): [(/ip4/127.0.0.1/tcp/17401: : Connection refused (os error 111))]";
        assert_eq!(expected_engine_error(negotiate), Some(0));
        assert_eq!(
            expected_engine_error("Error dialing peer: Dial timeout"),
            Some(1)
        );
        assert_eq!(
            expected_engine_error(
                "Failed to dial peer None at [/ip4/127.0.0.1/tcp/17407/p2p/16Uiu2HAm2A] after 5 trials"
            ),
            Some(2)
        );
        assert_eq!(
            expected_engine_error("Actor has died, stopping network: ..."),
            Some(3)
        );
        assert_eq!(
            expected_engine_error("send failed: channel closed"),
            Some(4)
        );
        // Anything else stays an ERROR.
        assert_eq!(
            expected_engine_error("could not connect the decided block"),
            None
        );
        assert!(is_engine_target("arc_malachitebft_network"));
        assert!(is_engine_target("ractor::actor"));
        assert!(!is_engine_target("settled"));
    }

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_held_back() {
        let limiter = RateLimiter::default();
        let t0 = std::time::Instant::now();
        let step = std::time::Duration::from_millis(ENGINE_NOISE_INTERVAL_MS / 10);
        assert_eq!(limiter.allow(0, t0), Some(0));
        assert_eq!(limiter.allow(1, t0), Some(0), "kinds are limited apart");
        for i in 1..10 {
            assert_eq!(limiter.allow(0, t0 + step * i), None);
        }
        assert_eq!(limiter.allow(0, t0 + step * 10), Some(9));
        assert_eq!(limiter.allow(0, t0 + step * 11), None);
    }
}
