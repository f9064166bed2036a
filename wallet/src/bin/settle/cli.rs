//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "settle",
    version,
    about = "Settle's wallet and client: keys, balances, payments, assets, PSTs, DvP offers, multisig",
    after_help = "Passphrase: SETTLE_PASSPHRASE, else asked on the terminal.\n\
                  Tests only: SETTLE_INSECURE_FAST_KDF=1 makes new wallet files with cheap \
                  key-stretching parameters (refused on main networks)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The wallet's directory (holds wallet.settle). Default: ~/.settle/wallet.
    #[arg(long, global = true, env = "SETTLE_DATADIR", value_name = "DIR")]
    pub datadir: Option<PathBuf>,
    /// The node's JSON-RPC address.
    #[arg(
        long,
        global = true,
        env = "SETTLE_RPC_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:7390"
    )]
    pub rpc_url: String,
    /// The node's cookie file (default: <node-datadir>/.cookie, else ~/.settle/dev/.cookie).
    #[arg(long, global = true, env = "SETTLE_RPC_COOKIE", value_name = "FILE")]
    pub rpc_cookie: Option<PathBuf>,
    /// The node's data directory: its cookie, and on a dev chain its issuer keys.
    #[arg(long, global = true, env = "SETTLE_NODE_DATADIR", value_name = "DIR")]
    pub node_datadir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Sign without asking: a co-signing step (pst sign, offer take, lend accept and
    /// cosign) shows what it does to this wallet and asks first; without a terminal and
    /// without --yes it refuses.
    #[arg(long, global = true)]
    pub yes: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, restore or describe the wallet.
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Hand out and list receiving addresses.
    #[command(subcommand)]
    Address(AddressCmd),
    /// What the wallet holds, per asset.
    Balance,
    /// Pay AMOUNT of ASSET (ticker or asset id) to ADDRESS.
    Send(SendArgs),
    /// Issue, reissue, burn and look up assets.
    #[command(subcommand)]
    Asset(AssetCmd),
    /// Transactions that touched the wallet.
    History(HistoryArgs),
    /// Partially signed transactions.
    #[command(subcommand)]
    Pst(PstCmd),
    /// Delivery-versus-payment offers.
    #[command(subcommand)]
    Offer(OfferCmd),
    /// m-of-n co-signed addresses.
    #[command(subcommand)]
    Multisig(MultisigCmd),
    /// Securities lending: propose, accept, co-sign, return, claim, margin, positions.
    #[command(subcommand)]
    Lend(crate::commands::lend::LendCmd),
}

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Create a new wallet for the node's chain; shows the mnemonic once.
    Create {
        /// Words in the new mnemonic (12, 15, 18, 21 or 24).
        #[arg(long, default_value_t = 24)]
        words: usize,
    },
    /// Restore a wallet from its mnemonic (read from standard input, or asked for) and
    /// find its coins on the chain.
    Restore,
    /// Describe the wallet (no node needed).
    Info,
}

#[derive(Subcommand, Debug)]
pub enum AddressCmd {
    /// Hand out a new receiving address.
    New {
        /// A label to remember it by.
        #[arg(long)]
        label: Option<String>,
    },
    /// The receiving addresses handed out so far.
    List,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Amount in the asset's precision, e.g. 1000.00 or 1,000.00.
    #[arg(allow_hyphen_values = true)]
    pub amount: String,
    /// Ticker or asset id.
    pub asset: String,
    /// The recipient's address.
    pub address: String,
    /// Who receives it (written into the PST and history).
    #[arg(long)]
    pub label: Option<String>,
    /// Wait until the transaction is in a block.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Show at most this many entries (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueClass {
    Cash,
    Security,
}

#[derive(Subcommand, Debug)]
pub enum AssetCmd {
    /// Issue a new asset (cash with a currency, or a security with an ISIN).
    Issue(IssueArgs),
    /// Issue more of a reissuable asset.
    Reissue {
        /// Ticker or asset id.
        asset: String,
        /// Amount in the asset's precision.
        amount: String,
        /// Pay the new units here (default: a new address of this wallet).
        #[arg(long)]
        to: Option<String>,
        /// The issuer's secret key file (64 hex characters). Default on a dev chain: the
        /// node's dev issuer key for the asset's class (needs --node-datadir).
        #[arg(long, value_name = "FILE")]
        issuer_key: Option<PathBuf>,
        #[arg(long)]
        wait: bool,
    },
    /// Destroy AMOUNT of ASSET held by this wallet (it leaves the supply).
    Burn {
        amount: String,
        asset: String,
        #[arg(long)]
        wait: bool,
    },
    /// An asset's contract and supply.
    Info { asset: String },
    /// Every asset on the chain.
    List,
    /// Pin an asset (by its 64-hex id) as trusted: amounts of it are then marked trusted.
    Trust { asset: String },
    /// Remove an asset from the trusted ones.
    Untrust { asset: String },
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[arg(long, value_enum)]
    pub class: IssueClass,
    /// Asset name, e.g. "Euro central bank money".
    #[arg(long)]
    pub name: String,
    /// Ticker, e.g. EUR.
    #[arg(long)]
    pub ticker: String,
    /// Decimal places (default: 2 for cash, 0 for securities).
    #[arg(long)]
    pub precision: Option<u8>,
    /// Amount to issue, in the asset's precision.
    #[arg(long)]
    pub amount: String,
    /// ISO 4217 currency (cash).
    #[arg(long)]
    pub currency: Option<String>,
    /// ISIN (securities).
    #[arg(long)]
    pub isin: Option<String>,
    /// Allow the issuer to issue more later.
    #[arg(long)]
    pub reissuable: bool,
    /// Pay the issued units here (default: a new address of this wallet).
    #[arg(long)]
    pub to: Option<String>,
    /// The issuer's secret key file (64 hex characters). Default on a dev chain: the node's
    /// dev issuer key for the class (needs --node-datadir).
    #[arg(long, value_name = "FILE")]
    pub issuer_key: Option<PathBuf>,
    #[arg(long)]
    pub wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum PstCmd {
    /// Show every field of a PST (no node needed).
    Decode { file: PathBuf },
    /// Say what each party gives and gets, who signed what, and what is missing.
    Analyze { file: PathBuf },
    /// Sign the inputs that spend this wallet's coins (never another input that merely
    /// names one of its keys), after showing what the transaction does to the wallet.
    Sign {
        file: PathBuf,
        /// ALL (default), NONE, SINGLE, each optionally |ANYONECANPAY. Any type but ALL
        /// needs the inputs it applies to named with --input.
        #[arg(long, default_value = "ALL")]
        sighash: String,
        /// Apply --sighash to this input only (repeatable); the wallet's other inputs are
        /// signed ALL.
        #[arg(long = "input", value_name = "INDEX")]
        inputs: Vec<usize>,
        /// Permit NONE or NONE|ANYONECANPAY: the signature then covers no output, and
        /// whoever holds the PST can send the coin anywhere.
        #[arg(long)]
        unsafe_allow_sighash_none: bool,
        /// Write the result here (default: over FILE).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge what several PSTs of the same transaction know.
    Combine {
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Build every input's witness from the signatures collected.
    Finalize {
        file: PathBuf,
        /// Write the result here (default: over FILE).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Finalize if needed, check, and send the transaction to the node.
    Broadcast {
        file: PathBuf,
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OfferCmd {
    /// Offer one of your coins for another asset, e.g. --give "1000.00 EUR" --want "10 BOND".
    Create {
        /// What you give: "AMOUNT ASSET".
        #[arg(long)]
        give: String,
        /// What you want in return: "AMOUNT ASSET".
        #[arg(long)]
        want: String,
        /// The offer lapses after this many blocks.
        #[arg(long, value_name = "BLOCKS")]
        expires_in: Option<u32>,
        /// Where to write the offer.
        #[arg(long)]
        out: PathBuf,
    },
    /// State an offer's price, both legs, and whether it can still be taken.
    Show { file: PathBuf },
    /// Take an offer: add your side, sign, broadcast.
    Take {
        file: PathBuf,
        /// Do not broadcast; write the completed PST to --out instead.
        #[arg(long, requires = "out")]
        no_broadcast: bool,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        wait: bool,
    },
    /// Spend your offered coin back to yourself, so the offer can no longer be taken.
    Cancel {
        file: PathBuf,
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MultisigCmd {
    /// Hand out a public key (with its origin) to give to co-signers.
    Key,
    /// Make an m-of-n address from public keys; prints a descriptor co-signers import.
    Create {
        /// Signatures needed.
        #[arg(long)]
        threshold: usize,
        /// A participant's key: 64 hex, optionally preceded by its origin [fp/path].
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// A name to refer to it by.
        #[arg(long, default_value = "multisig")]
        name: String,
    },
    /// Import a descriptor a co-signer created.
    Import {
        descriptor: String,
        #[arg(long, default_value = "multisig")]
        name: String,
    },
    /// The multisigs this wallet watches.
    List,
    /// Start a payment from a multisig: writes a PST signed with this wallet's key.
    Spend {
        /// The multisig's name.
        name: String,
        amount: String,
        asset: String,
        address: String,
        #[arg(long)]
        out: PathBuf,
    },
}
