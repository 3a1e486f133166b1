#' simpert: simulated perturbation screens with known truth
#'
#' The package drives the `simpert` command line (a Python program) and exchanges data
#' with it through files: counts as MatrixMarket, tables as CSV, metadata as JSON. One
#' `simpert serve` process is kept alive for the session (see [simpert_worker()]), so
#' repeated calls do not pay Python's start-up; see [simpert_cli()] for how the command
#' line is found.
#'
#' Main functions:
#' * [simulate_screen()]: a simulated screen as a `SingleCellExperiment` (cells) or a
#'   DESeq2-ready `SummarizedExperiment` (pseudobulk), the true effects in `rowData`;
#' * [run_de()]: DESeq2-style differential expression (simpert's engine, PyDESeq2, or
#'   R's DESeq2 in this session) as `results()`-like tables;
#' * [score_metrics()]: predictions of known quality scored with the field's metrics
#'   ([metrics()] lists them);
#' * [calibrate_metric()]: does a metric written as an R function reward what it should?
#' * [estimate_params()]: simulation parameters fitted to your own screen;
#' * [evaluate_predictions()]: your model's predictions scored against an observed screen;
#' * [scenarios()], [scenario_params()]: the named simulation settings.
#'
#' @keywords internal
"_PACKAGE"

utils::globalVariables(c(".user", ".log"))
