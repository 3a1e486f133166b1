#' simpert: simulated perturbation screens with known truth
#'
#' The package drives the `simpert` command line (a Python program) and exchanges data
#' with it through files: counts as MatrixMarket, tables as CSV, metadata as JSON. It
#' therefore needs no Python bridge; see [simpert_cli()] for how the command line is
#' found.
#'
#' Main functions:
#' * [simulate_screen()]: a simulated screen as a `SummarizedExperiment`, with the true
#'   effects in `rowData` and `metadata`;
#' * [run_de()]: DESeq2-style differential expression (native engine, PyDESeq2 or R
#'   DESeq2) as a `data.frame`;
#' * [score_metrics()]: predictions of known quality scored with the field's metrics;
#' * [calibrate_metric()]: does a metric written as an R function reward what it should?
#' * [scenarios()]: the named simulation settings.
#'
#' @keywords internal
"_PACKAGE"
