//! `hptune pull`: a study server's studies copied into this database, so that `extend`,
//! `analyze`, `train`, `backtest`, `export` and every view work on them as on a local study.
//! Idempotent: a pull adds the trials finished since the last one and nothing twice.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::states::TrialState;
use crate::store::server::Server;
use crate::store::{Store, StudyRecord};

#[derive(Debug, Clone)]
pub struct Request {
    pub storage: String,
    /// One study; every study hptune created on the server when None.
    pub study: Option<String>,
    /// The tuning folder: checkpoints are written under it and the study's files exported.
    pub out_dir: PathBuf,
}

/// What a pull did to one study.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub study: String,
    /// Trials added by this pull.
    pub added: usize,
    /// Finished trials on the server (all of them are now here).
    pub finished: usize,
    /// Trials still running on the server (pulled once they finish).
    pub running: usize,
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Vec<Pulled>> {
    let server = Server::connect(&req.storage, crate::workers::STALE_HEARTBEAT_S)?;
    let names = match &req.study {
        Some(name) => vec![name.clone()],
        None => server.studies()?,
    };
    if names.is_empty() {
        bail!("{} holds no hptune study: run `hptune tune --storage URL` first", server.name());
    }
    names.iter().map(|name| pull_study(store, &server, name, &req.out_dir)).collect()
}

fn pull_study(store: &Store, server: &Server, name: &str, out_dir: &Path) -> anyhow::Result<Pulled> {
    let study = server.study(name)?.with_context(|| format!("{} has no study {name}", server.name()))?;
    ensure_dataset(store, server, &study)?;
    // A folder another process writes into (a running study) is refused; another study's export
    // in it is kept aside, and while this process writes into it no other moves it (as `tune`).
    if crate::files::claimed(out_dir) {
        bail!(
            "{} is in use by a running process (a study writing its outputs there): pull into another folder with \
             --out DIR, or wait until it finishes",
            out_dir.display()
        );
    }
    if let Some(moved) = super::set_aside_unless_owned(store, out_dir, super::export::TUNING_OWNER, name)? {
        eprintln!("kept another study's {} as {}", out_dir.display(), moved.display());
    }
    let _claim = crate::files::claim(out_dir)?;
    store.import_study(&study, &server.name())?;
    let here: std::collections::HashSet<usize> = store.trials(name)?.into_iter().map(|t| t.number).collect();
    let trials = server.trials(&study)?;
    let finished: Vec<_> = trials.iter().filter(|t| t.state != TrialState::Running).collect();
    let mut added = 0;
    for t in finished.iter().filter(|t| !here.contains(&t.number)) {
        let mut details = server.trial_details(name, t.number)?;
        // Checkpoints come home: written under this tuning folder and recorded at their path here.
        for c in &mut details.checkpoints {
            let dir = crate::layout::trial_checkpoint_dir(out_dir, name, t.number);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let path = std::fs::canonicalize(&dir)?.join(crate::checkpoint::FILE);
            crate::files::write_atomic(&path, &c.bytes)?;
            c.record.path = path.to_string_lossy().into_owned();
        }
        if store.import_trial(name, t, &details)? {
            added += 1;
        }
    }
    super::export::tuning(store, name, out_dir)?;
    Ok(Pulled { study: name.to_string(), added, finished: finished.len(), running: trials.len() - finished.len() })
}

/// Makes sure this database holds the study's dataset, importing the server's copy when it does
/// not (a fresh machine); returns its name here.
pub(crate) fn ensure_dataset(store: &Store, server: &Server, study: &StudyRecord) -> anyhow::Result<String> {
    if let Some(d) = store.dataset_by_id(&study.dataset_id)? {
        return Ok(d.name);
    }
    let (name, source, long_csv) = server.dataset(&study.dataset_id)?.with_context(|| {
        format!("the study's dataset {} is neither in {} nor on the server", study.dataset_id, store.path().display())
    })?;
    let panel = crate::data::read_long_csv(long_csv.as_bytes(), Path::new(&name))
        .map_err(|e| anyhow::anyhow!("the server's copy of dataset {name}: {e}"))?;
    store.import_panel(&name, &format!("{source} (from {})", server.name()), &panel)?;
    let here = store.dataset(&name)?;
    if here.dataset_id != study.dataset_id {
        bail!(
            "the server's copy of dataset {name} hashes to {}, not {}: it is corrupt",
            here.dataset_id,
            study.dataset_id
        );
    }
    eprintln!("imported dataset {name} from {}", server.name());
    Ok(name)
}
