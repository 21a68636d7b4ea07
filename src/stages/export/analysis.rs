//! Stage 3's files: `best_config.json` (the recorded bytes) and `analysis_plots/`.

use std::path::Path;

use anyhow::Context;

use super::{create_dir, mean_std};
use crate::files::write_atomic;
use crate::layout;
use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLACK, BLUE, GREY, ORANGE};
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
    write_atomic(&plots.join(layout::FOLD_SCORES_PNG), &fold_scores_chart(&configs, &folds, s.config_rank).png()?)?;
    write_atomic(&plots.join(layout::TUNING_VS_CV_PNG), &tuning_vs_cv_chart(&configs, &folds, s.config_rank).png()?)
}

/// Each configuration's fold accuracies (dots) and their mean (crosses); the selected one in orange.
pub(crate) fn fold_scores_chart(configs: &[ExtendedConfig], folds: &[FoldRecord], selected: usize) -> Chart {
    let pct = |f: &FoldRecord| f.val_accuracy.map(|a| (f.config_rank as f64, 100.0 * a));
    let others: Vec<_> = folds.iter().filter(|f| f.config_rank != selected).filter_map(pct).collect();
    let chosen: Vec<_> = folds.iter().filter(|f| f.config_rank == selected).filter_map(pct).collect();
    let means: Vec<(f64, f64)> = configs
        .iter()
        .filter_map(|c| {
            let accs: Vec<f64> =
                folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
            mean_std(&accs).0.map(|m| (c.config_rank as f64, 100.0 * m))
        })
        .collect();
    let panel = Panel {
        title: format!("Cross-validation folds ({} configurations)", configs.len()),
        x_label: "configuration (rank in tuning)".into(),
        y_label: "fold validation accuracy (%)".into(),
        x_ticks: XTicks::Integers,
        series: vec![
            Series::new("folds", BLUE, Mark::Dots, others),
            Series::new(format!("folds of the selected configuration ({selected})"), ORANGE, Mark::Dots, chosen),
            Series::new("mean over folds", BLACK, Mark::Crosses, means),
        ],
    };
    Chart::new(vec![panel], 1, (800, 450))
}

/// Tuning value (x) against cross-validated mean (y) per configuration, with the line y = x.
pub(crate) fn tuning_vs_cv_chart(configs: &[ExtendedConfig], folds: &[FoldRecord], selected: usize) -> Chart {
    let points: Vec<(usize, f64, f64)> = configs
        .iter()
        .filter_map(|c| {
            let accs: Vec<f64> =
                folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
            mean_std(&accs).0.map(|m| (c.config_rank, 100.0 * c.tuning_value, 100.0 * m))
        })
        .collect();
    let (lo, hi) = points
        .iter()
        .flat_map(|p| [p.1, p.2])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let diagonal = if lo.is_finite() { vec![(lo, lo), (hi, hi)] } else { Vec::new() };
    let pick = |sel: bool| points.iter().filter(|p| (p.0 == selected) == sel).map(|p| (p.1, p.2)).collect();
    let panel = Panel {
        title: "Tuning against cross-validation".into(),
        x_label: "tuning validation accuracy (%)".into(),
        y_label: "cross-validated mean accuracy (%)".into(),
        x_ticks: XTicks::Numbers,
        series: vec![
            Series::new("y = x (as good as in tuning)", GREY, Mark::Line, diagonal),
            Series::new("configurations", BLUE, Mark::Dots, pick(false)),
            Series::new("selected", ORANGE, Mark::Dots, pick(true)),
        ],
    };
    Chart::new(vec![panel], 1, (560, 520))
}
