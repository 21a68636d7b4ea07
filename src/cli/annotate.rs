//! `hptune tag` and `hptune note`: what a person says of a study, run, selection or backtest.

use anyhow::bail;

use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// A study, training run (trial, fold, final model), extended run, selection or backtest id.
    pub id: String,
    /// Tags to set; a key set again gets the new value. None: list the id's tags.
    #[arg(value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Remove this tag (repeatable).
    #[arg(long, value_name = "KEY")]
    pub remove: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct NoteArgs {
    /// A study, training run (trial, fold, final model), extended run, selection or backtest id.
    pub id: String,
    /// The note (Markdown shows in optuna-dashboard for a study or trial). None: list the id's notes.
    pub text: Option<String>,
}

pub fn tag(args: TagArgs, store: &Store) -> anyhow::Result<()> {
    let mut set = Vec::new();
    for t in &args.tags {
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => set.push((k.trim().to_string(), v.to_string())),
            _ => bail!("'{t}' is not KEY=VALUE (e.g. `hptune tag {} market=us`)", args.id),
        }
    }
    if set.is_empty() && args.remove.is_empty() {
        store.run_kind(&args.id)?;
    } else {
        store.tag(&args.id, &set, &args.remove)?;
    }
    let tags = store.tags(&args.id)?;
    if tags.is_empty() {
        println!("{}: no tags", args.id);
    }
    for (k, v) in tags {
        println!("{}: {k}={v}", args.id);
    }
    Ok(())
}

pub fn note(args: NoteArgs, store: &Store) -> anyhow::Result<()> {
    match &args.text {
        Some(text) if text.trim().is_empty() => bail!("the note for {} is empty: give its text", args.id),
        Some(text) => {
            let n = store.add_note(&args.id, text)?;
            println!("{}: note {n} recorded", args.id);
        }
        None => {
            store.run_kind(&args.id)?;
            let notes = store.notes(&args.id)?;
            if notes.is_empty() {
                println!("{}: no notes", args.id);
            }
            for n in notes {
                println!("{} note {} ({} UTC): {}", args.id, n.number, n.written_at.format("%Y-%m-%d %H:%M"), n.text);
            }
        }
    }
    Ok(())
}
