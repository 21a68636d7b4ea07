//! Stage 3's files: `best_config.json` (the recorded bytes) and `analysis_plots/`.

use std::path::Path;

use anyhow::Context;

use super::{create_dir, mean_std, value_range};
use crate::files::write_atomic;
use crate::layout;
use crate::store::{ExtendedConfig, FoldRecord, Store};

/// The file and JSON pointer that name the selection an analysis belongs to.
pub const OWNER: (&str, &str) = (layout::BEST_CONFIG, "/selection/selection_id");

/// Writes a selection's files into `dir`.
pub fn analysis(store: &Store, selection_id: &str, dir: &Path) -> anyhow::Result<()> {
    let s = store
        .selection(Some(selection_id))?
        .with_context(|| format!("no selection {selection_id} in {}", store.path().display()))?;
    create_dir(dir)?;
    write_atomic(&dir.join(layout::BEST_CONFIG), s.best_config_json.as_bytes())?;
    let plots = dir.join(layout::ANALYSIS_PLOTS);
    create_dir(&plots)?;
    let configs = store.extended_configs(&s.extended_run_id)?;
    let folds = store.cv_folds(&s.extended_run_id)?;
    fold_scores_png(&configs, &folds, s.config_rank, &plots.join(layout::FOLD_SCORES_PNG))?;
    tuning_vs_cv_png(&configs, &folds, s.config_rank, &plots.join(layout::TUNING_VS_CV_PNG))
}

/// Each configuration's fold accuracies (dots) and mean (bar); the selected one in orange.
fn fold_scores_png(
    configs: &[ExtendedConfig],
    folds: &[FoldRecord],
    selected: usize,
    path: &Path,
) -> anyhow::Result<()> {
    use crate::plot::*;
    let mut canvas = Canvas::new(800, 450);
    let frame = Frame {
        x: (0.5, configs.len() as f64 + 0.5),
        y: value_range(folds.iter().filter_map(|f| f.val_accuracy)),
        margin: 30,
    };
    canvas.axes(&frame, 5);
    for c in configs {
        let colour = if c.config_rank == selected { ORANGE } else { BLUE };
        let accs: Vec<f64> =
            folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
        let x = c.config_rank as f64;
        for a in &accs {
            canvas.dot(canvas.at(&frame, x, *a), 4, colour);
        }
        if let (Some(mean), _) = mean_std(&accs) {
            canvas.line(canvas.at(&frame, x - 0.25, mean), canvas.at(&frame, x + 0.25, mean), BLACK);
        }
    }
    write_atomic(path, &canvas.png())
}

/// Tuning value (x) against cross-validated mean (y) per configuration, with the line y = x.
fn tuning_vs_cv_png(
    configs: &[ExtendedConfig],
    folds: &[FoldRecord],
    selected: usize,
    path: &Path,
) -> anyhow::Result<()> {
    use crate::plot::*;
    let points: Vec<(usize, f64, f64)> = configs
        .iter()
        .filter_map(|c| {
            let accs: Vec<f64> =
                folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
            mean_std(&accs).0.map(|m| (c.config_rank, c.tuning_value, m))
        })
        .collect();
    let range = value_range(points.iter().flat_map(|p| [p.1, p.2]));
    let frame = Frame { x: range, y: range, margin: 30 };
    let mut canvas = Canvas::new(500, 500);
    canvas.axes(&frame, 5);
    canvas.line(canvas.at(&frame, range.0, range.0), canvas.at(&frame, range.1, range.1), GREY);
    for (rank, x, y) in points {
        canvas.dot(canvas.at(&frame, x, y), 5, if rank == selected { ORANGE } else { BLUE });
    }
    write_atomic(path, &canvas.png())
}
