//! The arguments of the governance and audit commands: `policy`, `exception`, `model`,
//! `controls`, and the period every audit command takes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::SignerArgs;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Checks a policy file: every error with its line and column (exit 2), else exit 0.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Appends a `policy` record with the document and its digest. The version must be above
    /// the published version of the same name.
    Publish {
        /// The policy file (TOML).
        file: PathBuf,
        /// The human or bot publishing it.
        #[arg(long, default_value = "ledger-cli")]
        actor: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Prints the policy in force (the latest published), or says that gates use the built-in
    /// default.
    Show,
    /// Imports a CODEOWNERS file for a repository as a `codeowners` record, which the
    /// `codeowners` rule reads.
    Codeowners {
        /// The CODEOWNERS file.
        file: PathBuf,
        /// The repository it belongs to, `owner/name`.
        #[arg(long)]
        repo: String,
        /// The human or bot importing it.
        #[arg(long, default_value = "ledger-cli")]
        actor: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExceptionCommand {
    /// Appends an exception: gates waive a failing RULE for SCOPE until --not-after.
    Grant {
        /// The rule waived (docs/POLICY.md), or `all`.
        #[arg(long)]
        rule: String,
        /// What it covers: a change, a commit or a deployment subject.
        #[arg(long)]
        scope: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who approves it (must not be the change's author).
        #[arg(long)]
        approver: String,
        /// When it ends (RFC 3339 or YYYY-MM-DD); after it gates ignore the exception.
        #[arg(long)]
        not_after: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Lists exceptions, expired ones marked "review due".
    List {
        /// Only expired exceptions.
        #[arg(long)]
        expired: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Appends a `model` record approving an AI tool's model for risk tiers. A later approval
    /// of the same tool and model replaces it.
    Approve {
        /// The tool, e.g. `codex`, `claude`, `copilot`.
        #[arg(long)]
        tool: String,
        /// The model as sessions record it, e.g. `gpt-5-codex`.
        #[arg(long)]
        model: String,
        /// Tiers approved, comma-separated: `T0,T1`.
        #[arg(long, value_delimiter = ',', required = true)]
        tiers: Vec<String>,
        /// When the approval ends (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        not_after: Option<String>,
        /// The human or bot approving.
        #[arg(long, default_value = "ledger-cli")]
        actor: String,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Lists model approvals (the latest per tool and model).
    List,
}

/// The population an audit command works on.
#[derive(Args, Debug, Clone)]
pub struct PeriodArgs {
    /// `START..END`: dates (the end day included) or RFC 3339 times.
    #[arg(long)]
    pub period: String,
    /// The environment deployed to.
    #[arg(long, default_value = "production")]
    pub environment: String,
    /// Only deployments of this repository (`owner/name`).
    #[arg(long)]
    pub repo: Option<String>,
}

/// How a sample is drawn.
#[derive(Args, Debug, Clone)]
pub struct DrawArgs {
    /// How many deployments to draw.
    #[arg(long, default_value_t = 25)]
    pub n: usize,
    /// The seed: the same seed over the same population draws the same sample.
    #[arg(long)]
    pub seed: String,
}

#[derive(Subcommand, Debug)]
pub enum ControlsCommand {
    /// Evaluates every control for every deployment of the population: `authorized`,
    /// `tested`, `linked`, `emergency_reviewed`, `ai_human_approved`, and with --policy
    /// `policy_gate`. Exit 0 when every control passes, 1 when any fails.
    Test {
        #[command(flatten)]
        scope: PeriodArgs,
        /// A policy file: adds `policy_gate` (the deploy gate of each deployment).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// How soon after the deployment an emergency change must be reviewed, e.g. `48h`, `2d`.
        #[arg(long, default_value = "48h")]
        within: String,
    },
}

/// The window and split of a metrics command.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Start of the window (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub since: String,
    /// End of the window (a date includes that day).
    #[arg(long)]
    pub until: String,
    /// Split the figures by `tier`, `repo` or `service`.
    #[arg(long)]
    pub by: Option<String>,
    /// The environment counted as production.
    #[arg(long, default_value = "production")]
    pub environment: String,
    /// The policy that classifies tiers for `--by tier` (default: the one in force).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// The auditor's workpaper of a period: the population summary, the control totals, how
    /// the sample was drawn, the sample table with every control per item, and each item's
    /// chain.
    Workpaper {
        #[command(flatten)]
        scope: PeriodArgs,
        #[command(flatten)]
        draw: DrawArgs,
        /// A policy file: adds the `policy_gate` control.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// How soon after the deployment an emergency change must be reviewed.
        #[arg(long, default_value = "48h")]
        within: String,
        /// Where to write the page.
        #[arg(long)]
        html: PathBuf,
    },
    /// The metrics of a window as charts, per tier unless --by says otherwise.
    Metrics {
        #[command(flatten)]
        window: MetricsArgs,
        /// Where to write the page.
        #[arg(long)]
        html: PathBuf,
    },
    /// One subject's chain (session → change → reviews → checks → merge → deployments →
    /// incidents) as a timeline with entry ids. SUBJECT is anything `why` accepts.
    Change {
        subject: String,
        /// Where to write the page.
        #[arg(long)]
        html: PathBuf,
    },
}
