#' Calibrate a metric written as an R function
#'
#' Does the metric reward what it should? The function is written to a temporary R
#' file and calibrated by `simpert calibrate --metric file.R:function`: on each scenario
#' and replicate a screen is simulated, predictors of known quality are built (oracle,
#' technical duplicate, a ladder between the mean baseline and the truth, the mean and
#' control baselines, systematic-only, target-only, shuffled) and scored with the
#' function; the summary says how well it separates good predictions from bad ones.
#'
#' The function is called (inside R, through rpy2) as
#' `fun(pred, real, pred_control, real_control)`: `pred` and `real` are numeric
#' matrices perturbations x genes (log-normalised profiles, with dimnames),
#' `pred_control` and `real_control` named numeric vectors over genes (the control
#' profiles). It must return one number per row of `pred`. Only its source text
#' travels, so it must not refer to variables defined outside it (packages can be
#' used with `pkg::fun`).
#'
#' @param fun An R function `function(pred, real, pred_control, real_control)`, or
#'   the name of a registered metric (to compare with, e.g. `"mae"`).
#' @param name Name of the metric in the tables (default the registered name when `fun`
#'   is one).
#' @param higher_is_better `TRUE` when larger values mean better predictions.
#' @param best The value a perfect prediction attains (`NULL` if unknown; the dynamic
#'   range fraction then needs it and is `NA`).
#' @param scenarios Scenario names or TOML paths (see [scenarios()]).
#' @param n_replicates Simulated screens per scenario.
#' @param seed A non-negative integer seed: the same seed gives the same tables.
#' @param predictors Predictor names; `NULL` for the standard panel.
#' @param params Named list of simulator parameters overriding every scenario's (e.g.
#'   `list(n_genes = 200)` for a quick run).
#' @param executor `"serial"`, `"joblib"` or `"dask"`.
#' @param jobs Number of workers (`NULL`: every CPU).
#' @param card If `TRUE`, also draw the calibration card (a PNG file).
#' @return A list with `table` (a `data.frame`: scenario, replicate, predictor,
#'   perturbation, metric, value), `summary` (metric, scenario, statistic, mean, se, n,
#'   B), `errors` (scenarios on which the function raised), `verdict` (one line) and
#'   `card` (path of the PNG in a temporary directory, or `NULL`).
#' @examples
#' \dontrun{
#' mae <- function(pred, real, pred_control, real_control) rowMeans(abs(pred - real))
#' res <- calibrate_metric(mae, "my_mae", higher_is_better = FALSE, best = 0,
#'                         scenarios = "sparse_strong", n_replicates = 2)
#' res$summary
#' }
#' @export
calibrate_metric <- function(fun, name = "r_metric", higher_is_better = TRUE, best = NULL,
                             scenarios = "sparse_strong", n_replicates = 3L, seed = 0L,
                             predictors = NULL, params = list(), executor = "serial",
                             jobs = NULL, card = TRUE) {
  registered <- is.character(fun) && length(fun) == 1L && !is.na(fun)
  if (!is.function(fun) && !registered) {
    stop("parameter 'fun' must be an R function or a registered metric name; got ",
         class(fun)[[1L]], call. = FALSE)
  }
  if (registered && missing(name)) name <- fun
  check_scalar(name, "name", "character")
  check_scalar(higher_is_better, "higher_is_better", "logical")
  check_scalar(card, "card", "logical")
  executor <- match.arg(executor, c("serial", "joblib", "dask"))
  if (!is.character(scenarios) || length(scenarios) == 0L) {
    stop("parameter 'scenarios' must be a non-empty character vector", call. = FALSE)
  }
  if (!is.numeric(n_replicates) || length(n_replicates) != 1L || n_replicates < 1) {
    stop("parameter 'n_replicates' must be a positive integer; got ", format(n_replicates),
         call. = FALSE)
  }
  tmp <- tempfile("simpert-cal-")
  dir.create(tmp)
  on.exit(unlink(file.path(tmp, "metric.R")), add = TRUE)
  if (registered) {
    fn_id <- fun
    metric_arg <- fun
  } else {
    fn_id <- make.names(name)
    src <- paste0("`", fn_id, "` <- ", paste(deparse(fun), collapse = "\n"), "\n")
    rfile <- file.path(tmp, "metric.R")
    writeLines(src, rfile)
    metric_arg <- paste0(rfile, ":", fn_id)
  }
  out <- file.path(tmp, "out")
  args <- c("calibrate", "--metric", metric_arg,
            as.vector(rbind("--scenario", scenarios)), "-o", out,
            "--replicates", as.integer(n_replicates), "--seed", as.integer(seed),
            "--executor", executor,
            if (!is.null(jobs)) c("--jobs", as.integer(jobs)),
            if (!higher_is_better) "--lower-is-better",
            if (!is.null(best)) c("--best", format(best, digits = 17)),
            if (!card) "--no-card",
            if (!is.null(predictors)) as.vector(rbind("--predictor", predictors)),
            set_args(params))
  run_cli(args)
  read <- function(f) utils::read.csv(file.path(out, f), stringsAsFactors = FALSE, check.names = FALSE)
  rename <- function(df) {
    if ("metric" %in% names(df) && nrow(df)) df$metric[df$metric == fn_id] <- name
    df
  }
  info <- jsonlite::fromJSON(file.path(out, "summary.json"), simplifyVector = TRUE)
  card_file <- list.files(out, pattern = "^card_.*\\.png$", full.names = TRUE)
  verdict <- unlist(info$verdicts)
  if (length(verdict)) verdict <- sub(paste0("^", fn_id, ":"), paste0(name, ":"), verdict)
  list(
    table = rename(read("table.csv")),
    summary = rename(read("summary.csv")),
    errors = rename(read("errors.csv")),
    verdict = unname(verdict),
    card = if (length(card_file)) card_file[[1L]] else NULL
  )
}
